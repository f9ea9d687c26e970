//! Recursive least squares (FORCE; Sussillo & Abbott 2009, Kim & Chow 2018) on the recurrent input of
//! each trained neuron. Part 1 of the Kim & Chow tutorial: a rate network whose units' recurrent inputs
//! learn phase-shifted sines after a stimulus.
//!
//! Per trained neuron `i` with plastic input vector `r`: error `e = w_i . r - f_i(t)`; `k = P r`;
//! `c = 1 / (1 + r . k)`; `P <- P - c k k^T`; `w_i <- w_i - e c k`; `P` starts as `I / alpha`.

use super::structured::dot;
use crate::seed::{rng_for, stream};
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// One RLS learner: the inverse correlation matrix of its inputs and the weights it trains.
#[derive(Debug, Clone)]
pub struct RlsLearner {
    n: usize,
    /// Row-major `n x n`.
    p: Vec<f64>,
    k: Vec<f64>,
}

impl RlsLearner {
    /// `P = I / alpha` over `n` inputs; inputs listed in `excluded` are never plastic.
    pub fn new(n: usize, alpha: f64, excluded: &[usize]) -> Self {
        let mut p = vec![0.0; n * n];
        for i in 0..n {
            if !excluded.contains(&i) {
                p[i * n + i] = 1.0 / alpha;
            }
        }
        RlsLearner {
            n,
            p,
            k: vec![0.0; n],
        }
    }

    /// Updates `P` with the input `r` and returns the gain `c = 1 / (1 + r . P r)`; `self.k` holds `P r`.
    fn absorb(&mut self, r: &[f64]) -> f64 {
        absorb_wide(self.n, &mut self.p, &mut self.k, r)
    }

    /// Moves `w` against error `e` along the last gain.
    fn correct(&self, w: &mut [f64], r: &[f64], target: f64, c: f64) -> f64 {
        let e = dot(w, r) - target;
        for (wj, &kj) in w.iter_mut().zip(&self.k) {
            *wj -= e * c * kj;
        }
        e
    }

    /// One RLS step: moves `w` so that `w . r` approaches `target`; returns the error before the step.
    pub fn update(&mut self, w: &mut [f64], r: &[f64], target: f64) -> f64 {
        let c = self.absorb(r);
        self.correct(w, r, target, c)
    }

    /// One RLS step for several readouts that share the input `r` and hence `P` (textbook FORCE):
    /// `P` is updated once and every `w[i]` moves with its own error. Returns the errors before the step.
    pub fn update_shared(&mut self, ws: &mut [Vec<f64>], r: &[f64], targets: &[f64]) -> Vec<f64> {
        self.update_shared_with_gain(ws, r, targets).1
    }

    /// [`Self::update_shared`] that also returns the gain `c = 1 / (1 + r . P r)`, which leaves (0, 1]
    /// when `P` has lost positive definiteness.
    pub fn update_shared_with_gain(
        &mut self,
        ws: &mut [Vec<f64>],
        r: &[f64],
        targets: &[f64],
    ) -> (f64, Vec<f64>) {
        let c = self.absorb(r);
        let errors = ws
            .iter_mut()
            .zip(targets)
            .map(|(w, &f)| self.correct(w, r, f, c))
            .collect();
        (c, errors)
    }
}

#[inline(always)]
fn absorb_impl(n: usize, p: &mut [f64], k: &mut [f64], r: &[f64]) -> f64 {
    for (ki, row) in k.iter_mut().zip(p.chunks_exact(n)) {
        *ki = dot(row, r);
    }
    let c = 1.0 / (1.0 + dot(r, k));
    for (row, &ki) in p.chunks_exact_mut(n).zip(k.iter()) {
        if ki == 0.0 {
            continue;
        }
        let cki = c * ki;
        for (pij, &kj) in row.iter_mut().zip(k.iter()) {
            *pij -= cki * kj;
        }
    }
    c
}

avx2_dispatch! {
    /// [`absorb_impl`] compiled for AVX2 where the CPU has it: with the many-lane dot product of
    /// [`dot`] it is what makes a textbook FORCE loop fast.
    fn absorb_wide(n: usize, p: &mut [f64], k: &mut [f64], r: &[f64]) -> f64 = absorb_impl;
}

/// Part 1: rate network `tau dr/dt = -r + relu(W r + I_ext)`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateRnnConfig {
    pub n: usize,
    pub tau_ms: f64,
    pub dt_ms: f64,
    /// Random stimulus pulse: start and length (ms).
    pub stim_start_ms: f64,
    pub stim_ms: f64,
    /// Training window after the stimulus (ms).
    pub train_ms: f64,
    /// Target: `sin(2 pi (t / period + phi_i)) + 1`.
    pub period_ms: f64,
    pub update_every_ms: f64,
    pub loops: usize,
    pub alpha: f64,
    pub seed: u64,
}

impl Default for RateRnnConfig {
    fn default() -> Self {
        RateRnnConfig {
            n: 100,
            tau_ms: 5.0,
            dt_ms: 0.1,
            stim_start_ms: 100.0,
            stim_ms: 10.0,
            train_ms: 500.0,
            period_ms: 100.0,
            update_every_ms: 5.0,
            loops: 50,
            alpha: 1.0,
            seed: 1,
        }
    }
}

/// Outcome of training: test-trial Pearson correlation per neuron between its recurrent input and target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RateRnnResult {
    pub test_r: Vec<f64>,
    pub mean_test_r: f64,
    /// Mean correlation of the untrained network (the same test before any learning).
    pub mean_r_before: f64,
}

struct RateRnn<'a> {
    cfg: &'a RateRnnConfig,
    w: Vec<Vec<f64>>,
    stim: Vec<f64>,
    phase: Vec<f64>,
}

impl RateRnn<'_> {
    fn target(&self, i: usize, t_ms: f64) -> f64 {
        let s = t_ms - self.cfg.stim_start_ms - self.cfg.stim_ms;
        (2.0 * std::f64::consts::PI * (s / self.cfg.period_ms + self.phase[i])).sin() + 1.0
    }

    /// Runs one trial; with `learners`, trains during the window. Returns per-neuron (input, target) traces of the window.
    fn trial(&mut self, mut learners: Option<&mut [RlsLearner]>) -> Vec<(Vec<f64>, Vec<f64>)> {
        let c = self.cfg;
        let n = c.n;
        let dt = c.dt_ms;
        let steps = ((c.stim_start_ms + c.stim_ms + c.train_ms) / dt).round() as usize;
        let win_start = ((c.stim_start_ms + c.stim_ms) / dt).round() as usize;
        let every = (c.update_every_ms / dt).round().max(1.0) as usize;
        let mut r = vec![0.0; n];
        let mut x = vec![0.0; n];
        let mut traces = vec![(Vec::new(), Vec::new()); n];
        for step in 0..steps {
            let t = step as f64 * dt;
            for (xi, wi) in x.iter_mut().zip(&self.w) {
                *xi = wi.iter().zip(&r).map(|(a, b)| a * b).sum();
            }
            let stim_on = t >= c.stim_start_ms && t < c.stim_start_ms + c.stim_ms;
            if step >= win_start {
                for (i, tr) in traces.iter_mut().enumerate() {
                    tr.0.push(x[i]);
                    tr.1.push(self.target(i, t));
                }
                if let Some(ls) = learners.as_deref_mut()
                    && (step - win_start).is_multiple_of(every)
                {
                    for (i, l) in ls.iter_mut().enumerate() {
                        let f = self.target(i, t);
                        l.update(&mut self.w[i], &r, f);
                    }
                }
            }
            for i in 0..n {
                let drive = x[i] + if stim_on { self.stim[i] } else { 0.0 };
                r[i] += dt / c.tau_ms * (-r[i] + drive.max(0.0));
            }
        }
        traces
    }
}

pub use crate::signal::pearson;

/// Trains the rate network of Part 1 and tests it with learning off. `progress(loop, loops)`.
pub fn train_rate_rnn(cfg: &RateRnnConfig, progress: &mut dyn FnMut(u64, u64)) -> RateRnnResult {
    let n = cfg.n;
    let mut rng = rng_for(cfg.seed, &[stream::CONNECTOME, 0]);
    let normal = Normal::new(0.0, (1.0 / n as f64).sqrt()).expect("positive sd");
    let w: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { 0.0 } else { normal.sample(&mut rng) })
                .collect()
        })
        .collect();
    let stim: Vec<f64> = (0..n).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
    let phase: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
    let mut net = RateRnn {
        cfg,
        w,
        stim,
        phase,
    };
    let score = |traces: &[(Vec<f64>, Vec<f64>)]| -> Vec<f64> {
        traces.iter().map(|(x, f)| pearson(x, f)).collect()
    };
    let before = score(&net.trial(None));
    let mut learners: Vec<RlsLearner> = (0..n)
        .map(|i| RlsLearner::new(n, cfg.alpha, &[i]))
        .collect();
    for l in 0..cfg.loops {
        net.trial(Some(&mut learners));
        progress(l as u64 + 1, cfg.loops as u64);
    }
    let test_r = score(&net.trial(None));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    RateRnnResult {
        mean_test_r: mean(&test_r),
        mean_r_before: mean(&before),
        test_r,
    }
}

/// Part 2: a generic LIF network (`tau_m dv/dt = -v + mu_i + x_i + noise`, threshold 1, reset 0) whose
/// recurrent input `x_i = sum_j W_ij s_j` (spikes filtered with `tau_s`) learns
/// `0.5 sin(2 pi (t / period + phi_i)) + m_i`, `m_i` being neuron i's mean recurrent input before training.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpikingRlsConfig {
    pub n: usize,
    pub tau_m_ms: f64,
    pub tau_s_ms: f64,
    pub dt_ms: f64,
    /// Constant drive drawn uniformly from this range per neuron.
    pub mu_range: (f64, f64),
    /// White-noise strength (threshold units; free-membrane std sigma / sqrt 2).
    pub sigma: f64,
    /// Standard deviation of the initial all-to-all weights times sqrt(n).
    pub init_gain: f64,
    /// Cue before the training window: a fixed random input of this amplitude for `pre_ms`.
    pub pre_ms: f64,
    pub cue_amplitude: f64,
    pub train_ms: f64,
    pub period_ms: f64,
    pub amplitude: f64,
    pub update_every_ms: f64,
    pub loops: usize,
    pub alpha: f64,
    /// Bin of the test correlation (ms).
    pub bin_ms: f64,
    pub seed: u64,
}

impl Default for SpikingRlsConfig {
    fn default() -> Self {
        SpikingRlsConfig {
            n: 100,
            tau_m_ms: 10.0,
            tau_s_ms: 200.0,
            dt_ms: 0.1,
            mu_range: (0.7, 1.1),
            sigma: 0.2,
            init_gain: 10.0,
            pre_ms: 200.0,
            cue_amplitude: 0.5,
            train_ms: 2000.0,
            period_ms: 2000.0,
            amplitude: 0.5,
            update_every_ms: 20.0,
            loops: 20,
            alpha: 0.05,
            bin_ms: 20.0,
            seed: 2,
        }
    }
}

/// Outcome of Part 2.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpikingRlsResult {
    /// Mean test-trial Pearson r over neurons (binned recurrent input vs target).
    pub mean_test_r: f64,
    pub test_r: Vec<f64>,
    pub mean_r_before: f64,
    /// Mean training-trial r after each loop.
    pub train_r: Vec<f64>,
    /// Mean rate (Hz) before and after training.
    pub rate_before_hz: f64,
    pub rate_after_hz: f64,
}

struct SpikingNet<'a> {
    cfg: &'a SpikingRlsConfig,
    w: Vec<Vec<f64>>,
    mu: Vec<f64>,
    cue: Vec<f64>,
    phase: Vec<f64>,
    mean_x: Vec<f64>,
}

struct TrialOut {
    /// Per neuron, binned recurrent input and binned target over the window.
    x_bins: Vec<Vec<f64>>,
    f_bins: Vec<Vec<f64>>,
    spikes: usize,
}

/// One step of a Part 2 neuron (threshold 1, reset 0, no refractory period): exact relaxation
/// towards `v_inf` by the factor `p_vv = e^{-dt / tau_m}`, plus the step's noise increment.
/// Returns whether the neuron fired.
#[inline(always)]
fn membrane_step(v: &mut f64, v_inf: f64, p_vv: f64, noise: f64) -> bool {
    *v = v_inf + (*v - v_inf) * p_vv + noise;
    if *v >= 1.0 {
        *v = 0.0;
        true
    } else {
        false
    }
}

impl SpikingNet<'_> {
    fn target(&self, i: usize, t_window_ms: f64) -> f64 {
        self.mean_x[i]
            + self.cfg.amplitude
                * (2.0 * std::f64::consts::PI * (t_window_ms / self.cfg.period_ms + self.phase[i]))
                    .sin()
    }

    fn trial(&mut self, trial_seed: u64, mut learner: Option<&mut RlsLearner>) -> TrialOut {
        let c = self.cfg;
        let n = c.n;
        let dt = c.dt_ms;
        let mut rng = rng_for(c.seed, &[stream::DRIVE_NOISE, trial_seed]);
        let normal = Normal::new(0.0, 1.0).expect("unit normal");
        let p_vv = (-dt / c.tau_m_ms).exp();
        let p_ss = (-dt / c.tau_s_ms).exp();
        let q = c.sigma * ((1.0 - p_vv * p_vv) / 2.0).sqrt();
        let mut v: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let mut s = vec![0.0; n];
        let mut x = vec![0.0; n];
        let pre = (c.pre_ms / dt).round() as usize;
        let steps = pre + (c.train_ms / dt).round() as usize;
        let every = (c.update_every_ms / dt).round().max(1.0) as usize;
        let per_bin = (c.bin_ms / dt).round().max(1.0) as usize;
        let nbins = (steps - pre) / per_bin;
        let mut x_bins = vec![vec![0.0; nbins]; n];
        let mut f_bins = vec![vec![0.0; nbins]; n];
        let mut spikes = 0usize;
        let mut fired = Vec::new();
        let mut targets = vec![0.0; n];
        for step in 0..steps {
            let in_window = step >= pre;
            let tw = (step as f64 - pre as f64) * dt;
            if in_window
                && (step - pre).is_multiple_of(every)
                && let Some(l) = learner.as_deref_mut()
            {
                {
                    for (i, f) in targets.iter_mut().enumerate() {
                        *f = self.target(i, tw);
                    }
                    l.update_shared(&mut self.w, &s, &targets);
                    // Weights changed: recompute the recurrent input from the filtered spikes.
                    for (xi, wi) in x.iter_mut().zip(&self.w) {
                        *xi = wi.iter().zip(&s).map(|(a, b)| a * b).sum();
                    }
                }
            }
            fired.clear();
            for i in 0..n {
                let cue = if in_window { 0.0 } else { self.cue[i] };
                let v_inf = self.mu[i] + x[i] + cue;
                if membrane_step(&mut v[i], v_inf, p_vv, q * normal.sample(&mut rng)) {
                    fired.push(i);
                }
            }
            spikes += fired.len();
            // s and x decay; each spike adds 1 / tau_s to s_j (s in spikes per ms) and W_:j / tau_s to x.
            for (sj, xj) in s.iter_mut().zip(x.iter_mut()) {
                *sj *= p_ss;
                *xj *= p_ss;
            }
            for &j in &fired {
                s[j] += 1.0 / c.tau_s_ms;
                for (xi, wi) in x.iter_mut().zip(&self.w) {
                    *xi += wi[j] / c.tau_s_ms;
                }
            }
            if in_window {
                let b = (step - pre) / per_bin;
                if b < nbins {
                    for i in 0..n {
                        x_bins[i][b] += x[i] / per_bin as f64;
                        f_bins[i][b] += self.target(i, tw) / per_bin as f64;
                    }
                }
            }
        }
        TrialOut {
            x_bins,
            f_bins,
            spikes,
        }
    }
}

/// Trains Part 2 with RLS and tests with learning off on fresh noise. `progress(loop, loops)`.
pub fn train_spiking(
    cfg: &SpikingRlsConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> SpikingRlsResult {
    let n = cfg.n;
    let mut rng = rng_for(cfg.seed, &[stream::CONNECTOME, 0]);
    let normal = Normal::new(0.0, cfg.init_gain / (n as f64).sqrt()).expect("positive sd");
    let w = (0..n)
        .map(|_| (0..n).map(|_| normal.sample(&mut rng)).collect())
        .collect();
    let mu = (0..n)
        .map(|_| cfg.mu_range.0 + (cfg.mu_range.1 - cfg.mu_range.0) * rng.random::<f64>())
        .collect();
    let cue = (0..n)
        .map(|_| cfg.cue_amplitude * (2.0 * rng.random::<f64>() - 1.0))
        .collect();
    let phase = (0..n).map(|_| rng.random::<f64>()).collect();
    let mut net = SpikingNet {
        cfg,
        w,
        mu,
        cue,
        phase,
        mean_x: vec![0.0; n],
    };
    let score = |o: &TrialOut| -> Vec<f64> {
        o.x_bins
            .iter()
            .zip(&o.f_bins)
            .map(|(x, f)| pearson(x, f))
            .collect()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // The untrained network sets each neuron's mean drive, the offset of its target.
    let before = net.trial(u64::MAX, None);
    net.mean_x = before.x_bins.iter().map(|b| mean(b)).collect();
    let before_r = score(&before);
    let mut learner = RlsLearner::new(n, cfg.alpha, &[]);
    let mut train_r = Vec::with_capacity(cfg.loops);
    for l in 0..cfg.loops {
        let out = net.trial(l as u64, Some(&mut learner));
        train_r.push(mean(&score(&out)));
        progress(l as u64 + 1, cfg.loops as u64);
    }
    let test = net.trial(u64::MAX - 1, None);
    let test_r = score(&test);
    SpikingRlsResult {
        mean_test_r: mean(&test_r),
        test_r,
        mean_r_before: mean(&before_r),
        train_r,
        rate_before_hz: before.spikes as f64 / n as f64 / ((cfg.pre_ms + cfg.train_ms) / 1000.0),
        rate_after_hz: test.spikes as f64 / n as f64 / ((cfg.pre_ms + cfg.train_ms) / 1000.0),
    }
}

/// The textbook FORCE network (Sussillo & Abbott 2009): `tau dx/dt = -x + g J tanh(x) + u z`, readout
/// `z = w . tanh(x)` fed back through `u`, `w` trained by RLS with one shared `P` every `update_every` steps.
#[derive(Debug, Clone)]
pub struct ForceConfig {
    pub n: usize,
    pub tau_ms: f64,
    pub dt_ms: f64,
    pub g: f64,
    /// Sparseness of J (connection probability).
    pub p: f64,
    pub update_every: usize,
    pub alpha: f64,
    /// Target: sum of sines with these periods (ms), amplitudes 1, 1/2, 1/6, 1/3 (as in Sussillo & Abbott).
    pub periods_ms: Vec<f64>,
    pub seed: u64,
}

impl Default for ForceConfig {
    fn default() -> Self {
        ForceConfig {
            n: 500,
            tau_ms: 10.0,
            dt_ms: 1.0,
            g: 1.5,
            p: 0.1,
            update_every: 2,
            alpha: 1.0,
            periods_ms: vec![600.0, 300.0, 200.0, 150.0],
            seed: 4,
        }
    }
}

/// A FORCE network being trained; keeps its state across calls so training can run loop after loop.
pub struct Force {
    cfg: ForceConfig,
    /// Sparse recurrent weights: row i's presynaptic indices and weights.
    j_idx: Vec<Vec<u32>>,
    j_w: Vec<Vec<f64>>,
    u: Vec<f64>,
    w: Vec<f64>,
    x: Vec<f64>,
    r: Vec<f64>,
    learner: RlsLearner,
    t_ms: f64,
}

impl Force {
    pub fn new(cfg: ForceConfig) -> Self {
        let n = cfg.n;
        let mut rng = rng_for(cfg.seed, &[stream::CONNECTOME, 1]);
        let normal = Normal::new(0.0, 1.0 / (cfg.p * n as f64).sqrt()).expect("positive sd");
        let (mut j_idx, mut j_w) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (mut idx, mut w) = (Vec::new(), Vec::new());
            for col in 0..n {
                if rng.random::<f64>() < cfg.p {
                    idx.push(col as u32);
                    w.push(cfg.g * normal.sample(&mut rng));
                }
            }
            j_idx.push(idx);
            j_w.push(w);
        }
        let u = (0..n).map(|_| 2.0 * rng.random::<f64>() - 1.0).collect();
        let x: Vec<f64> = (0..n).map(|_| 0.5 * normal.sample(&mut rng)).collect();
        let r = x.iter().map(|v| v.tanh()).collect();
        let learner = RlsLearner::new(n, cfg.alpha, &[]);
        Force {
            j_idx,
            j_w,
            u,
            w: vec![0.0; n],
            x,
            r,
            learner,
            t_ms: 0.0,
            cfg,
        }
    }

    pub fn target(&self, t_ms: f64) -> f64 {
        let amps = [1.0, 0.5, 1.0 / 6.0, 1.0 / 3.0];
        self.cfg
            .periods_ms
            .iter()
            .zip(amps.iter().cycle())
            .map(|(p, a)| a * (std::f64::consts::TAU * t_ms / p).sin())
            .sum::<f64>()
            / 1.5
    }

    /// Runs `duration_ms`, training if `learn`; returns (readout, target) per step.
    pub fn run(&mut self, duration_ms: f64, learn: bool) -> (Vec<f64>, Vec<f64>) {
        let n = self.cfg.n;
        let steps = (duration_ms / self.cfg.dt_ms).round() as usize;
        let k = self.cfg.dt_ms / self.cfg.tau_ms;
        let (mut zs, mut fs) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
        let mut drive = vec![0.0; n];
        for step in 0..steps {
            let z: f64 = self.w.iter().zip(&self.r).map(|(a, b)| a * b).sum();
            let f = self.target(self.t_ms);
            if learn && step % self.cfg.update_every == 0 {
                self.learner.update(&mut self.w, &self.r, f);
            }
            for (i, d) in drive.iter_mut().enumerate() {
                let rec: f64 = self.j_idx[i]
                    .iter()
                    .zip(&self.j_w[i])
                    .map(|(&c, w)| w * self.r[c as usize])
                    .sum();
                *d = rec + self.u[i] * z;
            }
            for ((x, r), d) in self.x.iter_mut().zip(self.r.iter_mut()).zip(&drive) {
                *x += k * (-*x + d);
                *r = x.tanh();
            }
            zs.push(z);
            fs.push(f);
            self.t_ms += self.cfg.dt_ms;
        }
        (zs, fs)
    }
}

/// What Parts 1 and 2 share for loading: a loop count the command line may override, and field
/// checks.
trait PartConfig: serde::de::DeserializeOwned {
    fn loops_mut(&mut self) -> &mut usize;
    /// Each check: the field, whether it holds, what it must be.
    fn checks(&self) -> Vec<(&'static str, bool, &'static str)>;
}

/// Reads a Part 1 or Part 2 experiment (`None`: the published defaults), overrides `loops`, and
/// refuses the first field that fails its check, by name.
fn load_part<C: PartConfig>(
    path: Option<&std::path::Path>,
    loops: Option<usize>,
) -> crate::Result<C> {
    use crate::SurgeError;
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| SurgeError::io("cannot read", p, e))?,
            p.display().to_string(),
        ),
        None => (String::new(), "the defaults".to_string()),
    };
    let mut c: C = toml::from_str(&text).map_err(|e| SurgeError::Toml {
        path: origin.clone(),
        message: e.to_string(),
    })?;
    if let Some(l) = loops {
        *c.loops_mut() = l;
    }
    if let Some((field, _, must)) = c.checks().into_iter().find(|(_, ok, _)| !ok) {
        return Err(SurgeError::spec(
            field,
            format!("out of range in {origin} (or --loops)"),
            format!("give {must}"),
        ));
    }
    Ok(c)
}

impl PartConfig for RateRnnConfig {
    fn loops_mut(&mut self) -> &mut usize {
        &mut self.loops
    }
    fn checks(&self) -> Vec<(&'static str, bool, &'static str)> {
        vec![
            ("n", self.n >= 2, "n >= 2"),
            ("loops", self.loops >= 1, "loops >= 1"),
            ("dt_ms", self.dt_ms > 0.0, "dt_ms > 0"),
            ("tau_ms", self.tau_ms > 0.0, "tau_ms > 0"),
        ]
    }
}

impl PartConfig for SpikingRlsConfig {
    fn loops_mut(&mut self) -> &mut usize {
        &mut self.loops
    }
    fn checks(&self) -> Vec<(&'static str, bool, &'static str)> {
        vec![
            ("n", self.n >= 2, "n >= 2"),
            ("loops", self.loops >= 1, "loops >= 1"),
            ("dt_ms", self.dt_ms > 0.0, "dt_ms > 0"),
            ("bin_ms", self.bin_ms >= self.dt_ms, "bin_ms >= dt_ms"),
        ]
    }
}

impl RateRnnConfig {
    /// The experiment at `path` (or the defaults) with `loops` overridden, validated.
    pub fn load(path: Option<&std::path::Path>, loops: Option<usize>) -> crate::Result<Self> {
        load_part(path, loops)
    }
}

impl SpikingRlsConfig {
    /// The experiment at `path` (or the defaults) with `loops` overridden, validated.
    pub fn load(path: Option<&std::path::Path>, loops: Option<usize>) -> crate::Result<Self> {
        load_part(path, loops)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn part2_membrane_fires_at_the_analytic_lif_period() {
        let (tau_m, dt, mu): (f64, f64, f64) = (10.0, 1e-3, 1.5);
        let p_vv = (-dt / tau_m).exp();
        let mut v = 0.0;
        let spikes: Vec<f64> = (0..200_000)
            .filter(|_| super::membrane_step(&mut v, mu, p_vv, 0.0))
            .map(|n| (n + 1) as f64 * dt)
            .collect();
        let period = (spikes[spikes.len() - 1] - spikes[0]) / (spikes.len() - 1) as f64;
        let want = crate::exact::models::lif_current::lif_period_ms(tau_m, 0.0, mu, 0.0, 1.0);
        assert!((period - want).abs() < 2.0 * dt, "{period} vs {want} ms");
    }

    #[test]
    fn absorb_avx2_and_baseline_builds_agree_bit_for_bit() {
        let n = 37;
        let p0: Vec<f64> = (0..n * n)
            .map(|i| {
                if i % (n + 1) == 0 {
                    2.0
                } else {
                    ((i * 7919) % 97) as f64 * 1e-3
                }
            })
            .collect();
        let r: Vec<f64> = (0..n)
            .map(|i| ((i * 31) % 17) as f64 / 17.0 - 0.4)
            .collect();
        let run = |f: fn(usize, &mut [f64], &mut [f64], &[f64]) -> f64| {
            let (mut p, mut k) = (p0.clone(), vec![0.0; n]);
            let c = f(n, &mut p, &mut k, &r);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (c.to_bits(), bits(&p), bits(&k))
        };
        assert_eq!(
            run(super::absorb_wide),
            run(super::absorb_impl),
            "avx2: {}",
            crate::simd::has_avx2()
        );
    }
}
