//! Part 3 of the Kim & Chow tutorial (Kim et al. 2023): a balanced E-I network of current-based LIF
//! neurons (Brunel-like, K inputs per population, weights J / sqrt K) in which a subset of excitatory
//! neurons is trained by RLS so that its total synaptic input follows recorded ALM activity (the drive
//! `u = f^-1(rate)` that would make an LIF neuron fire at the recorded rate), in two trial types cued by
//! a stimulus. Plastic inputs are slow (tau 150 ms): a few from other trained E neurons, a few from I
//! neurons, and (optionally) shared feedforward Poisson inputs; a prior on `P` penalises changes of each
//! neuron's summed E and summed I plastic weight so the network stays balanced. The shared inputs make
//! the structured RLS of [`super::structured`] exact and cheap.

use super::structured::{self, Item, NeuronBlock, SharedBlock};
use crate::error::{Result, SurgeError};
use crate::seed::{rng_for, stream};
use crate::signal::pearson;
use rand::Rng;
use rand::seq::index::sample;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// One population's membrane and synapse update for a step, compiled a second time for AVX2 and chosen
/// at run time (the release build targets baseline x86-64). No FMA, so both versions round alike.
mod membrane {
    pub(super) struct Pop<'a> {
        pub xe: &'a mut [f64],
        pub xi: &'a mut [f64],
        pub xp: &'a mut [f64],
        pub ce: &'a mut [u16],
        pub ci: &'a mut [u16],
        pub acc: &'a mut [f64],
        pub mu: &'a [f64],
        pub st: &'a [f64],
        pub v: &'a mut [f64],
        pub su: &'a mut [f64],
    }

    #[derive(Clone, Copy)]
    pub(super) struct Consts {
        pub p_s: f64,
        pub p_p: f64,
        pub p_v: f64,
        pub inv_tp: f64,
        pub w_e: f64,
        pub w_i: f64,
    }

    #[inline(always)]
    fn pass_impl(p: &mut Pop, c: Consts) {
        let len = p.v.len();
        let (xe, xi, xp) = (&mut p.xe[..len], &mut p.xi[..len], &mut p.xp[..len]);
        let (ce, ci, acc) = (&mut p.ce[..len], &mut p.ci[..len], &mut p.acc[..len]);
        let (mu, st, su, v) = (&p.mu[..len], &p.st[..len], &mut p.su[..len], &mut *p.v);
        for k in 0..len {
            let e_c = xe[k] * c.p_s + ce[k] as f64 * c.w_e;
            let i_c = xi[k] * c.p_s + ci[k] as f64 * c.w_i;
            let p_c = xp[k] * c.p_p + acc[k] * c.inv_tp;
            xe[k] = e_c;
            xi[k] = i_c;
            xp[k] = p_c;
            ce[k] = 0;
            ci[k] = 0;
            acc[k] = 0.0;
            let syn = mu[k] + e_c + i_c + p_c;
            su[k] += syn;
            let u = syn + st[k];
            v[k] = u + (v[k] - u) * c.p_v;
        }
    }

    avx2_dispatch! {
        pub(super) fn pass(p: &mut Pop, c: Consts) = pass_impl;
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn pass_avx2_and_baseline_builds_agree_bit_for_bit() {
            let n = 29;
            let f = |k: usize, a: f64| {
                (0..n)
                    .map(|i| ((i * k) % 13) as f64 * a - 0.3)
                    .collect::<Vec<f64>>()
            };
            let run = |pass: fn(&mut Pop, Consts)| {
                let (mut xe, mut xi, mut xp, mut acc, mut v, mut su) = (
                    f(3, 0.1),
                    f(5, 0.07),
                    f(7, 0.02),
                    f(11, 0.05),
                    f(2, 0.08),
                    vec![0.0; n],
                );
                let (mut ce, mut ci): (Vec<u16>, Vec<u16>) = (
                    (0..n as u16).map(|i| i % 4).collect(),
                    (0..n as u16).map(|i| i % 3).collect(),
                );
                let (mu, st) = (f(4, 0.09), f(6, 0.01));
                let c = Consts {
                    p_s: 0.9,
                    p_p: 0.95,
                    p_v: 0.8,
                    inv_tp: 0.05,
                    w_e: 0.3,
                    w_i: -0.6,
                };
                pass(
                    &mut Pop {
                        xe: &mut xe,
                        xi: &mut xi,
                        xp: &mut xp,
                        ce: &mut ce,
                        ci: &mut ci,
                        acc: &mut acc,
                        mu: &mu,
                        st: &st,
                        v: &mut v,
                        su: &mut su,
                    },
                    c,
                );
                [xe, xi, xp, acc, v, su].map(|x| x.iter().map(|y| y.to_bits()).collect::<Vec<_>>())
            };
            assert_eq!(
                run(pass),
                run(pass_impl),
                "avx2: {}",
                crate::simd::has_avx2()
            );
        }
    }
}

/// Last step's spikes on their way to one population's counters.
struct Incoming<'a> {
    fired: &'a [u32],
    out_off: &'a [u32],
    out_tgt: &'a [u16],
    split: &'a [u32],
    n_e: usize,
}

impl Incoming<'_> {
    /// One population's share of a step (cells from `lo`): counts its incoming spikes, moves its
    /// membranes, and lists its threshold crossings in `fired`.
    fn lane(&self, lo: usize, mut p: membrane::Pop, c: membrane::Consts, fired: &mut Vec<u32>) {
        for &src in self.fired {
            let src = src as usize;
            let all = &self.out_tgt[self.out_off[src] as usize..self.out_off[src + 1] as usize];
            let (to_e, to_i) = all.split_at(self.split[src] as usize);
            let tg = if lo == 0 { to_e } else { to_i };
            let counter = if src < self.n_e {
                &mut *p.ce
            } else {
                &mut *p.ci
            };
            for &q in tg {
                counter[q as usize - lo] += 1;
            }
        }
        membrane::pass(&mut p, c);
        fired.clear();
        for (k, vk) in p.v.iter_mut().enumerate() {
            if *vk >= 1.0 {
                *vk = 0.0;
                fired.push((lo + k) as u32);
            }
        }
    }
}

#[cfg(test)]
mod membrane_period {
    use super::{Incoming, membrane};

    #[test]
    fn part3_membrane_fires_at_the_analytic_lif_period() {
        let (tau_m, dt, mu, n): (f64, f64, f64, usize) = (15.0, 1e-3, 1.3, 3);
        let c = membrane::Consts {
            p_s: 0.0,
            p_p: 0.0,
            p_v: (-dt / tau_m).exp(),
            inv_tp: 0.0,
            w_e: 0.0,
            w_i: 0.0,
        };
        let none = Incoming {
            fired: &[],
            out_off: &[0],
            out_tgt: &[],
            split: &[0],
            n_e: 0,
        };
        let (mut xe, mut xi, mut xp, mut acc, mut v, mut su) = (
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
            vec![0.0; n],
        );
        let (mut ce, mut ci) = (vec![0u16; n], vec![0u16; n]);
        let (mu_v, st) = (vec![mu; n], vec![0.0; n]);
        let mut fired = Vec::new();
        let mut spikes = Vec::new();
        for step in 0..100_000 {
            let pop = membrane::Pop {
                xe: &mut xe,
                xi: &mut xi,
                xp: &mut xp,
                ce: &mut ce,
                ci: &mut ci,
                acc: &mut acc,
                mu: &mu_v,
                st: &st,
                v: &mut v,
                su: &mut su,
            };
            none.lane(0, pop, c, &mut fired);
            if fired.contains(&0) {
                spikes.push((step + 1) as f64 * dt);
            }
        }
        let period = (spikes[spikes.len() - 1] - spikes[0]) / (spikes.len() - 1) as f64;
        let want = crate::exact::models::lif_current::lif_period_ms(tau_m, 0.0, mu, 0.0, 1.0);
        assert!((period - want).abs() < 2.0 * dt, "{period} vs {want} ms");
    }
}

/// Names of the two trial types, in the order of the target file.
pub const TRIAL_TYPES: [&str; 2] = ["lickright", "lickleft"];

/// Seed sub-streams of this module (under the usual domains).
const STIM: u64 = 31;
const FFWD_RATES: u64 = 32;
const PLASTIC: u64 = 33;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalancedConfig {
    /// HDF5 file with `utarg_<type>` and `rate_hz_<type>` (neurons x bins); relative paths are
    /// resolved against the working directory, then the experiment file's folder.
    pub targets: String,
    /// Train only the first this many target neurons (0: all).
    pub max_trained: usize,
    pub n_e: usize,
    pub n_i: usize,
    /// Mean number of static inputs from each population.
    pub k: usize,
    pub tau_m_ms: f64,
    pub tau_syn_ms: f64,
    pub tau_plastic_ms: f64,
    pub dt_ms: f64,
    /// `je = ji = 2 g tau_m / sqrt K`.
    pub g: f64,
    /// External drive `mu_I = jx sqrt K`, `mu_E = e_drive_factor mu_I`.
    pub jx: f64,
    pub e_drive_factor: f64,
    /// Plastic inputs per trained neuron from trained E neurons and from I neurons.
    pub plastic_e: usize,
    pub plastic_i: usize,
    /// Shared feedforward Poisson inputs (a separate set per trial type); 0 switches them off.
    pub ffwd: usize,
    pub ffwd_rate_hz: f64,
    pub ffwd_rate_sd_hz: f64,
    pub ffwd_timescale_ms: f64,
    /// Cue: per-neuron constant input, uniform in +-stim_amplitude, different per trial type.
    pub stim_on_ms: f64,
    pub stim_off_ms: f64,
    pub stim_amplitude: f64,
    /// Training window after the cue.
    pub train_ms: f64,
    pub update_every_ms: f64,
    pub loops: usize,
    /// Prior precisions: L2 on the recurrent plastic weights, on their E and I sums, on the feedforward weights.
    pub lambda: f64,
    pub lambda_sum: f64,
    pub lambda_ffwd: f64,
    /// Keep the per-neuron cross block of P in f32 (halves the memory traffic that bounds the speed;
    /// the positive-definite blocks stay f64).
    pub g_f32: bool,
    /// Shift each neuron's target so that its mean equals the neuron's untrained mean input. The target
    /// file's `u = f^-1(rate)` assumes white-noise input of a fixed strength, which the balanced network
    /// does not supply exactly; without the shift RLS would move every neuron's mean input and with it
    /// the rates. The correlation with the target is unchanged by the shift.
    pub recenter_targets: bool,
    /// Save a resumable state every this many loops (0: never).
    pub checkpoint_every: usize,
    pub seed: u64,
}

impl Default for BalancedConfig {
    fn default() -> Self {
        BalancedConfig {
            targets: "data/alm/alm_pyramidal_rates.h5".into(),
            max_trained: 0,
            n_e: 2500,
            n_i: 2500,
            k: 500,
            tau_m_ms: 10.0,
            tau_syn_ms: 3.0,
            tau_plastic_ms: 150.0,
            dt_ms: 0.1,
            g: 1.0,
            jx: 0.12,
            e_drive_factor: 1.5,
            plastic_e: 20,
            plastic_i: 20,
            ffwd: 300,
            ffwd_rate_hz: 10.0,
            ffwd_rate_sd_hz: 5.0,
            ffwd_timescale_ms: 200.0,
            stim_on_ms: 800.0,
            stim_off_ms: 1000.0,
            stim_amplitude: 0.5,
            train_ms: 2000.0,
            update_every_ms: 20.0,
            loops: 200,
            lambda: 0.04,
            lambda_sum: 8.0,
            lambda_ffwd: 0.3,
            g_f32: true,
            recenter_targets: true,
            checkpoint_every: 10,
            seed: 3,
        }
    }
}

impl BalancedConfig {
    pub fn validate(&self) -> Result<()> {
        let pos = |name: &str, v: f64| -> Result<()> {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(SurgeError::spec(
                    name,
                    format!("must be a positive number, got {v}"),
                    "set a positive value",
                ))
            }
        };
        pos("tau_m_ms", self.tau_m_ms)?;
        pos("tau_syn_ms", self.tau_syn_ms)?;
        pos("tau_plastic_ms", self.tau_plastic_ms)?;
        pos("dt_ms", self.dt_ms)?;
        pos("update_every_ms", self.update_every_ms)?;
        pos("train_ms", self.train_ms)?;
        pos("lambda", self.lambda)?;
        pos("lambda_ffwd", self.lambda_ffwd)?;
        pos("ffwd_timescale_ms", self.ffwd_timescale_ms)?;
        if self.lambda_sum < 0.0 {
            return Err(SurgeError::spec(
                "lambda_sum",
                "must not be negative",
                "use 0 to switch the balance prior off",
            ));
        }
        if self.n_e < 2 || self.n_i < 1 {
            return Err(SurgeError::spec(
                "n_e / n_i",
                "the network needs at least 2 E and 1 I neurons",
                "set n_e >= 2 and n_i >= 1",
            ));
        }
        if self.k == 0 || self.k > self.n_e.min(self.n_i) {
            return Err(SurgeError::spec(
                "k",
                format!(
                    "must be between 1 and min(n_e, n_i) = {}",
                    self.n_e.min(self.n_i)
                ),
                "lower k or enlarge the network",
            ));
        }
        if self.plastic_i > self.n_i {
            return Err(SurgeError::spec(
                "plastic_i",
                "exceeds the number of I neurons",
                "lower plastic_i",
            ));
        }
        if self.stim_off_ms < self.stim_on_ms || self.stim_on_ms < 0.0 {
            return Err(SurgeError::spec(
                "stim_on_ms / stim_off_ms",
                "the cue must start at or after 0 and end after it starts",
                "set 0 <= stim_on_ms <= stim_off_ms",
            ));
        }
        if self.loops == 0 {
            return Err(SurgeError::spec("loops", "must be at least 1", "set loops"));
        }
        if self.ffwd > u16::MAX as usize {
            return Err(SurgeError::spec(
                "ffwd",
                format!("at most {} feedforward inputs are supported", u16::MAX),
                "lower ffwd",
            ));
        }
        Ok(())
    }

    fn sqrt_k(&self) -> f64 {
        (self.k as f64).sqrt()
    }
    fn je(&self) -> f64 {
        2.0 * self.g * self.tau_m_ms / self.sqrt_k()
    }
    fn n(&self) -> usize {
        self.n_e + self.n_i
    }
    fn steps(&self) -> usize {
        ((self.stim_off_ms + self.train_ms) / self.dt_ms).round() as usize
    }
    fn window_start(&self) -> usize {
        (self.stim_off_ms / self.dt_ms).round() as usize
    }
    fn every(&self) -> usize {
        (self.update_every_ms / self.dt_ms).round().max(1.0) as usize
    }
    /// RLS updates per trial, one per target bin after the first.
    pub fn updates(&self) -> usize {
        (self.steps() - self.window_start()) / self.every()
    }
}

/// Target drives per trial type: `utarg[type][neuron * bins + bin]`, one value every `bin_ms`
/// starting at the end of the cue; and the recorded rates they came from.
#[derive(Debug, Clone)]
pub struct Targets {
    pub n: usize,
    pub bins: usize,
    pub bin_ms: f64,
    pub utarg: [Vec<f64>; 2],
    pub rate_hz: [Vec<f64>; 2],
}

impl Targets {
    fn u(&self, tt: usize, i: usize, b: usize) -> f64 {
        self.utarg[tt][i * self.bins + b]
    }
    fn mean_rate(&self, i: usize) -> f64 {
        let r = |tt: usize| {
            self.rate_hz[tt][i * self.bins..(i + 1) * self.bins]
                .iter()
                .sum::<f64>()
        };
        (r(0) + r(1)) / (2 * self.bins) as f64
    }
}

/// The static network and the plastic part being trained.
pub struct BalancedNet {
    pub cfg: BalancedConfig,
    /// Static outgoing targets per neuron (CSR); the weight depends only on the two populations.
    out_off: Vec<u32>,
    out_tgt: Vec<u16>,
    mu: Vec<f64>,
    stim: [Vec<f64>; 2],
    /// Feedforward rates (Hz) per trial type, `[ms * ffwd + j]` over the training window.
    ffwd_rate: [Vec<f32>; 2],
    /// Model neuron of each trained neuron, and its row in the target file.
    pub trained: Vec<u32>,
    pub target_row: Vec<u32>,
    /// Plastic presynaptic neurons per trained neuron (`plastic_e` E then `plastic_i` I).
    pub plastic_pre: Vec<u32>,
    /// Outgoing plastic synapses per presynaptic neuron (CSR of flat indices into `w_plastic`).
    pl_off: Vec<u32>,
    pl_idx: Vec<u32>,
    pub w_plastic: Vec<f64>,
    /// Feedforward weights per trial type, `[trained * ffwd + j]`.
    pub w_ffwd: [Vec<f64>; 2],
    /// Untrained E rates (Hz) the matching used.
    pub untrained_rate_hz: Vec<f64>,
    /// Added to each trained neuron's target (see `recenter_targets`).
    pub target_offset: Vec<f64>,
}

/// What a trial leaves: binned total input of each trained neuron over the window, spike counts per
/// neuron and bin, and (if asked) spike times.
pub struct TrialOut {
    /// `[trained * bins + bin]`.
    pub input: Vec<f64>,
    /// `[neuron * bins + bin]`.
    pub counts: Vec<u16>,
    pub bins: usize,
    pub spikes: Vec<(f32, u32)>,
    /// Mean total synaptic input of every neuron over the window.
    pub mean_input: Vec<f64>,
    /// Smallest RLS gain seen (1 when no learning).
    pub c_min: f64,
}

impl TrialOut {
    pub fn rate_hz(&self, cells: std::ops::Range<usize>, bin_ms: f64) -> f64 {
        let n = cells.len();
        let total: u64 = cells
            .flat_map(|c| self.counts[c * self.bins..(c + 1) * self.bins].iter())
            .map(|&x| x as u64)
            .sum();
        total as f64 / n as f64 / (self.bins as f64 * bin_ms / 1000.0)
    }
}

/// The RLS state: the shared feedforward block and one private block per trained neuron.
pub struct Learner {
    pub shared: SharedBlock,
    pub blocks: Vec<NeuronBlock>,
}

impl BalancedNet {
    /// Builds the static network, runs it untrained, matches every target neuron to the E neuron with the
    /// closest untrained rate, and wires the plastic inputs.
    pub fn build(
        cfg: &BalancedConfig,
        targets: &Targets,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        cfg.validate()?;
        let expect_bins = cfg.updates() + 1;
        if targets.bins < expect_bins {
            return Err(SurgeError::spec(
                "targets",
                format!(
                    "the target file has {} bins but train_ms / update_every_ms needs {expect_bins}",
                    targets.bins
                ),
                "shorten train_ms or use targets that cover the window",
            ));
        }
        if (targets.bin_ms - cfg.update_every_ms).abs() > 1e-9 {
            return Err(SurgeError::spec(
                "update_every_ms",
                format!(
                    "is {} ms but the targets come every {} ms",
                    cfg.update_every_ms, targets.bin_ms
                ),
                "set update_every_ms to the bin width of the target file",
            ));
        }
        let n_tr = if cfg.max_trained == 0 {
            targets.n
        } else {
            cfg.max_trained.min(targets.n)
        };
        if n_tr > cfg.n_e {
            return Err(SurgeError::spec(
                "n_e",
                format!("{n_tr} target neurons but only {} E neurons", cfg.n_e),
                "set max_trained <= n_e or enlarge n_e",
            ));
        }
        if cfg.plastic_e >= n_tr.max(1) {
            return Err(SurgeError::spec(
                "plastic_e",
                format!(
                    "needs more than {} trained neurons, there are {n_tr}",
                    cfg.plastic_e
                ),
                "lower plastic_e or train more neurons",
            ));
        }
        let (n, n_e) = (cfg.n(), cfg.n_e);
        // Static connections: each pair independently with probability K / N_pop, drawn per post cell.
        let mut incoming: Vec<Vec<u32>> = (0..n)
            .into_par_iter()
            .map(|post| {
                let mut rng = rng_for(cfg.seed, &[stream::CONNECTOME, post as u64]);
                let mut pre = Vec::with_capacity(2 * cfg.k + 64);
                for (lo, size) in [(0, cfg.n_e), (cfg.n_e, cfg.n_i)] {
                    let p = cfg.k as f64 / size as f64;
                    for j in lo..lo + size {
                        if j != post && rng.random::<f64>() < p {
                            pre.push(j as u32);
                        }
                    }
                }
                pre
            })
            .collect();
        let mut out_count = vec![0u32; n + 1];
        for pres in &incoming {
            for &j in pres {
                out_count[j as usize + 1] += 1;
            }
        }
        for j in 0..n {
            out_count[j + 1] += out_count[j];
        }
        let out_off = out_count.clone();
        let mut fill = out_count;
        let mut out_tgt = vec![0u16; out_off[n] as usize];
        for (post, pres) in incoming.iter_mut().enumerate() {
            for &j in pres.iter() {
                out_tgt[fill[j as usize] as usize] = post as u16;
                fill[j as usize] += 1;
            }
            *pres = Vec::new();
        }
        let mu_i = cfg.jx * cfg.sqrt_k();
        let mu: Vec<f64> = (0..n)
            .map(|c| {
                if c < n_e {
                    cfg.e_drive_factor * mu_i
                } else {
                    mu_i
                }
            })
            .collect();
        let stim = [0, 1].map(|tt| {
            let mut rng = rng_for(cfg.seed, &[stream::DRIVE_TARGETS, STIM, tt]);
            (0..n)
                .map(|_| cfg.stim_amplitude * (2.0 * rng.random::<f64>() - 1.0))
                .collect()
        });
        let win_ms = cfg.train_ms.ceil() as usize + 1;
        let ffwd_rate = [0u64, 1].map(|tt| {
            let mut out = vec![0f32; win_ms * cfg.ffwd];
            let a = (-1.0 / cfg.ffwd_timescale_ms).exp();
            let q = (1.0 - a * a).sqrt();
            let normal = Normal::new(0.0, 1.0).expect("unit normal");
            for j in 0..cfg.ffwd {
                let mut rng = rng_for(cfg.seed, &[stream::DRIVE_TARGETS, FFWD_RATES, tt, j as u64]);
                let mut x: f64 = normal.sample(&mut rng);
                for ms in 0..win_ms {
                    out[ms * cfg.ffwd + j] =
                        (cfg.ffwd_rate_hz + cfg.ffwd_rate_sd_hz * x).max(0.0) as f32;
                    x = a * x + q * normal.sample(&mut rng);
                }
            }
            out
        });
        let mut net = BalancedNet {
            cfg: cfg.clone(),
            out_off,
            out_tgt,
            mu,
            stim,
            ffwd_rate,
            trained: Vec::new(),
            target_row: Vec::new(),
            plastic_pre: Vec::new(),
            pl_off: vec![0; n + 1],
            pl_idx: Vec::new(),
            w_plastic: Vec::new(),
            w_ffwd: [Vec::new(), Vec::new()],
            untrained_rate_hz: Vec::new(),
            target_offset: Vec::new(),
        };
        progress("untrained run for matching");
        let bin_ms = cfg.update_every_ms;
        let untrained = net.trial(0, u64::MAX - 7, None, false)?;
        net.untrained_rate_hz = (0..n_e)
            .map(|c| untrained.rate_hz(c..c + 1, bin_ms))
            .collect();
        // Match: target neurons in order of their mean rate, each takes the free E neuron with the closest rate.
        let mut order: Vec<usize> = (0..n_tr).collect();
        order.sort_by(|&a, &b| targets.mean_rate(a).total_cmp(&targets.mean_rate(b)));
        let mut free: Vec<(f64, u32)> = (0..n_e)
            .map(|c| (net.untrained_rate_hz[c], c as u32))
            .collect();
        free.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut pairs = Vec::with_capacity(n_tr);
        for &row in &order {
            let want = targets.mean_rate(row);
            let pos = free.partition_point(|x| x.0 < want);
            let pick = match (pos.checked_sub(1), (pos < free.len()).then_some(pos)) {
                (Some(a), Some(b)) => {
                    if want - free[a].0 <= free[b].0 - want {
                        a
                    } else {
                        b
                    }
                }
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => unreachable!("n_tr <= n_e"),
            };
            pairs.push((free.remove(pick).1, row as u32));
        }
        pairs.sort();
        net.trained = pairs.iter().map(|p| p.0).collect();
        net.target_row = pairs.iter().map(|p| p.1).collect();
        net.target_offset = pairs
            .iter()
            .map(|&(c, row)| {
                if !cfg.recenter_targets {
                    return 0.0;
                }
                let row = row as usize;
                let m = (0..2)
                    .map(|tt| (0..expect_bins).map(|b| targets.u(tt, row, b)).sum::<f64>())
                    .sum::<f64>()
                    / (2 * expect_bins) as f64;
                untrained.mean_input[c as usize] - m
            })
            .collect();
        net.wire_plastic();
        Ok(net)
    }

    fn wire_plastic(&mut self) {
        let cfg = &self.cfg;
        let n_tr = self.trained.len();
        let l = cfg.plastic_e + cfg.plastic_i;
        let mut rng = rng_for(cfg.seed, &[stream::CONNECTOME, PLASTIC]);
        let mut pre = Vec::with_capacity(n_tr * l);
        for t in 0..n_tr {
            // Other trained E neurons: sample among n_tr - 1 and skip self.
            for x in sample(&mut rng, n_tr - 1, cfg.plastic_e).into_iter() {
                let other = if x >= t { x + 1 } else { x };
                pre.push(self.trained[other]);
            }
            for x in sample(&mut rng, cfg.n_i, cfg.plastic_i).into_iter() {
                pre.push((cfg.n_e + x) as u32);
            }
        }
        let n = cfg.n();
        let mut cnt = vec![0u32; n + 1];
        for &p in &pre {
            cnt[p as usize + 1] += 1;
        }
        for j in 0..n {
            cnt[j + 1] += cnt[j];
        }
        let mut fill = cnt.clone();
        let mut idx = vec![0u32; pre.len()];
        for (f, &p) in pre.iter().enumerate() {
            idx[fill[p as usize] as usize] = f as u32;
            fill[p as usize] += 1;
        }
        self.pl_off = cnt;
        self.pl_idx = idx;
        self.plastic_pre = pre;
        (self.w_plastic, self.w_ffwd) = self.initial_weights();
    }

    /// The plastic weights training starts from: recurrent E and I parts that cancel on average at the
    /// untrained rates (E 6.5 Hz, I 12 Hz), feedforward weights zero.
    pub fn initial_weights(&self) -> (Vec<f64>, [Vec<f64>; 2]) {
        let cfg = &self.cfg;
        let l = cfg.plastic_e + cfg.plastic_i;
        let n_tr = self.trained.len();
        let wp = cfg.je() * 4.0 / 6.0;
        let w = (0..n_tr * l)
            .map(|f| {
                if f % l < cfg.plastic_e {
                    wp
                } else {
                    -wp * 6.5 / 12.0
                }
            })
            .collect();
        (w, [vec![0.0; n_tr * cfg.ffwd], vec![0.0; n_tr * cfg.ffwd]])
    }

    /// A fresh learner with the balance prior: precision `lambda I + lambda_sum (1_E 1_E^T + 1_I 1_I^T)`
    /// on the recurrent plastic weights and `lambda_ffwd I` on the feedforward ones.
    pub fn learner(&self) -> Result<Learner> {
        let cfg = &self.cfg;
        let m = cfg.plastic_e + cfg.plastic_i;
        let mut prec = vec![0.0; m * m];
        for a in 0..m {
            for b in 0..m {
                let same = (a < cfg.plastic_e) == (b < cfg.plastic_e);
                prec[a * m + b] =
                    if same { cfg.lambda_sum } else { 0.0 } + if a == b { cfg.lambda } else { 0.0 };
            }
        }
        let block = NeuronBlock::new(m, cfg.ffwd, &prec, cfg.g_f32)
            .map_err(|e| SurgeError::spec("lambda", e, "use positive lambda and lambda_sum"))?;
        Ok(Learner {
            shared: SharedBlock::new(cfg.ffwd, cfg.lambda_ffwd),
            blocks: vec![block; self.trained.len()],
        })
    }

    /// Runs one trial of type `tt` with noise stream `noise`; with a learner and targets, RLS trains
    /// during the window. `record` keeps spike times.
    pub fn trial(
        &mut self,
        tt: usize,
        noise: u64,
        learn: Option<(&mut Learner, &Targets)>,
        record: bool,
    ) -> Result<TrialOut> {
        // On a pool thread, so that splitting each step between the populations costs a push onto
        // its own work queue rather than a hand-over from outside the pool.
        rayon::scope(|_| self.trial_on_pool(tt, noise, learn, record))
    }

    fn trial_on_pool(
        &mut self,
        tt: usize,
        noise: u64,
        mut learn: Option<(&mut Learner, &Targets)>,
        record: bool,
    ) -> Result<TrialOut> {
        let cfg = self.cfg.clone();
        let (n, n_e) = (cfg.n(), cfg.n_e);
        let n_tr = self.trained.len();
        let l = cfg.plastic_e + cfg.plastic_i;
        let nff = cfg.ffwd;
        let dt = cfg.dt_ms;
        let steps = cfg.steps();
        let win = cfg.window_start();
        let every = cfg.every();
        let bins = cfg.updates();
        let mut rng = rng_for(cfg.seed, &[stream::DRIVE_NOISE, noise, tt as u64]);
        let p_v = (-dt / cfg.tau_m_ms).exp();
        let p_s = (-dt / cfg.tau_syn_ms).exp();
        let p_p = (-dt / cfg.tau_plastic_ms).exp();
        let je = cfg.je();
        // Static weights by (pre, post) population, already divided by the synaptic time constant.
        let w_ee = 0.15 * je / cfg.tau_syn_ms;
        let w_ie = je / cfg.tau_syn_ms;
        let w_ei = -0.75 * je / cfg.tau_syn_ms;
        let w_ii = -je / cfg.tau_syn_ms;
        let mut v: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        // The feedforward spikes do not depend on the network, so they are drawn up front (the same draws
        // in the same order as drawing them step by step): RLS then knows each next update's shared
        // input and every neuron computes its next `G s` in the pass that updates `G`.
        let (ff_spikes, ff_off, s_at_update) = if nff > 0 {
            self.draw_feedforward(tt, &mut rng)
        } else {
            (Vec::new(), vec![0; steps + 1], Vec::new())
        };
        let (mut xe, mut xi, mut xp, mut r) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let (mut ce, mut ci) = (vec![0u16; n], vec![0u16; n]);
        let mut acc_p = vec![0.0; n];
        let mut sum_u = vec![0.0; n];
        let mut mean_input = vec![0.0; n];
        let zeros = vec![0.0; n];
        let mut fired: Vec<u32> = Vec::new();
        let mut fired_prev: Vec<u32> = Vec::new();
        let (mut fired_e, mut fired_i) = (Vec::<u32>::new(), Vec::<u32>::new());
        // Where each cell's (ascending) target list passes from E to I cells.
        let out_split: Vec<u32> = (0..n)
            .map(|c| {
                let tg = &self.out_tgt[self.out_off[c] as usize..self.out_off[c + 1] as usize];
                tg.partition_point(|&p| (p as usize) < n_e) as u32
            })
            .collect();
        let mut input = vec![0.0; n_tr * bins];
        let mut counts = vec![0u16; n * bins];
        let mut spikes = Vec::new();
        let mut c_min: f64 = 1.0;
        let mut r_buf = vec![0.0; n_tr * l];
        let mut err = vec![0.0; n_tr];
        let inv_tp = 1.0 / cfg.tau_plastic_ms;
        let per_bin = every;
        // Feedforward weight sums per spiking step until the next weight change (see below).
        let (mut ff_stale, mut ff_until, mut ff_next) = (true, 0usize, 0usize);
        let (mut ff_steps, mut ff_sums) = (Vec::<usize>::new(), Vec::<f64>::new());
        for step in 0..steps {
            let t_ms = (step + 1) as f64 * dt;
            let stim_on = t_ms > cfg.stim_on_ms && t_ms <= cfg.stim_off_ms;
            // RLS at the end of every target bin of the window.
            if step + 1 > win
                && (step + 1 - win).is_multiple_of(every)
                && let Some((learner, targets)) = learn.as_mut()
            {
                let k = (step + 1 - win) / every; // 1..=bins
                // The filtered feedforward input as this update sees it (replayed before the trial).
                let s = &s_at_update[(k - 1) * nff..k * nff];
                let (xe_, xi_, r_, s_) = (&xe, &xi, &r, s);
                let net = &*self;
                r_buf
                    .par_chunks_mut(l)
                    .zip(err.par_iter_mut())
                    .enumerate()
                    .for_each(|(t, (rb, e))| {
                        let c = net.trained[t] as usize;
                        for (x, &p) in rb.iter_mut().zip(&net.plastic_pre[t * l..(t + 1) * l]) {
                            *x = r_[p as usize];
                        }
                        let z = structured::dot(&net.w_plastic[t * l..(t + 1) * l], rb)
                            + structured::dot(&net.w_ffwd[tt][t * nff..(t + 1) * nff], s_);
                        *e = z + xe_[c] + xi_[c] + net.mu[c]
                            - targets.u(tt, net.target_row[t] as usize, k)
                            - net.target_offset[t];
                    });
                let w_s: Box<dyn Iterator<Item = &mut [f64]>> = if nff == 0 {
                    Box::new(std::iter::repeat_with(<&mut [f64]>::default).take(n_tr))
                } else {
                    Box::new(self.w_ffwd[tt].chunks_mut(nff))
                };
                let items: Vec<Item> = learner
                    .blocks
                    .iter_mut()
                    .zip(r_buf.chunks(l))
                    .zip(err.iter())
                    .zip(self.w_plastic.chunks_mut(l))
                    .zip(w_s)
                    .map(|((((block, r), &e), w_r), w_s)| Item {
                        block,
                        r,
                        e,
                        w_r,
                        w_s,
                    })
                    .collect();
                let next = (k < bins && nff > 0).then(|| &s_at_update[k * nff..(k + 1) * nff]);
                let c = structured::update_all(&mut learner.shared, s, next, items.into_par_iter());
                if !(c > 0.0 && c <= 1.0 + 1e-12) {
                    return Err(SurgeError::RlsUnstable { c, t_ms });
                }
                c_min = c_min.min(c);
                ff_stale = true;
            }
            // Currents take last step's spikes, then the membranes move; one pass per population.
            fired.clear();
            let in_win = step >= win;
            if step == win {
                sum_u.iter_mut().for_each(|x| *x = 0.0);
            }
            let stim_now: &[f64] = if stim_on { &self.stim[tt] } else { &zeros };
            // The E and I populations on two threads: each first adds last step's spikes to its own
            // cells' counters (integer counts, so the order is immaterial), then moves its membranes
            // and collects its crossings; E's list then I's, as one serial pass would.
            {
                let (xe_e, xe_i) = xe.split_at_mut(n_e);
                let (xi_e, xi_i) = xi.split_at_mut(n_e);
                let (xp_e, xp_i) = xp.split_at_mut(n_e);
                let (ce_e, ce_i) = ce.split_at_mut(n_e);
                let (ci_e, ci_i) = ci.split_at_mut(n_e);
                let (acc_e, acc_i) = acc_p.split_at_mut(n_e);
                let (v_e, v_i) = v.split_at_mut(n_e);
                let (su_e, su_i) = sum_u.split_at_mut(n_e);
                let (mu_e, mu_i) = self.mu.split_at(n_e);
                let (st_e, st_i) = stim_now.split_at(n_e);
                let consts = |w_e, w_i| membrane::Consts {
                    p_s,
                    p_p,
                    p_v,
                    inv_tp,
                    w_e,
                    w_i,
                };
                let spikes_in = Incoming {
                    fired: &fired_prev,
                    out_off: &self.out_off,
                    out_tgt: &self.out_tgt,
                    split: &out_split,
                    n_e,
                };
                let (fe, fi) = (&mut fired_e, &mut fired_i);
                rayon::join(
                    || {
                        let pop = membrane::Pop {
                            xe: xe_e,
                            xi: xi_e,
                            xp: xp_e,
                            ce: ce_e,
                            ci: ci_e,
                            acc: acc_e,
                            mu: mu_e,
                            st: st_e,
                            v: v_e,
                            su: su_e,
                        };
                        spikes_in.lane(0, pop, consts(w_ee, w_ei), fe)
                    },
                    || {
                        let pop = membrane::Pop {
                            xe: xe_i,
                            xi: xi_i,
                            xp: xp_i,
                            ce: ce_i,
                            ci: ci_i,
                            acc: acc_i,
                            mu: mu_i,
                            st: st_i,
                            v: v_i,
                            su: su_i,
                        };
                        spikes_in.lane(n_e, pop, consts(w_ie, w_ii), fi)
                    },
                );
            }
            fired.extend_from_slice(&fired_e);
            fired.extend_from_slice(&fired_i);
            for x in r.iter_mut() {
                *x *= p_p;
            }
            for &c in &fired_prev {
                r[c as usize] += inv_tp;
            }
            if in_win {
                let b = (step - win) / per_bin;
                if b < bins {
                    for &c in &fired {
                        let x = &mut counts[c as usize * bins + b];
                        *x = x.saturating_add(1);
                    }
                    if (step + 1 - win).is_multiple_of(per_bin) {
                        let scale = 1.0 / per_bin as f64;
                        for (t, &c) in self.trained.iter().enumerate() {
                            input[t * bins + b] = sum_u[c as usize] * scale;
                        }
                        for (m, &x) in mean_input.iter_mut().zip(&sum_u) {
                            *m += x * scale / bins as f64;
                        }
                        sum_u.iter_mut().for_each(|x| *x = 0.0);
                    }
                }
            }
            if (step + 1).is_multiple_of(per_bin) && !v.iter().all(|x| x.is_finite()) {
                return Err(SurgeError::Diverged {
                    what: "a membrane potential".into(),
                    value: f64::NAN,
                    t_ms,
                });
            }
            // Deliver spikes for the next step.
            // (The static synapses' counters are filled by the populations' threads at the next step.)
            for &c in &fired {
                let c = c as usize;
                for &f in &self.pl_idx[self.pl_off[c] as usize..self.pl_off[c + 1] as usize] {
                    let post = self.trained[f as usize / l] as usize;
                    acc_p[post] += self.w_plastic[f as usize];
                }
                if record {
                    spikes.push((t_ms as f32, c as u32));
                }
            }
            std::mem::swap(&mut fired, &mut fired_prev);
            // Feedforward Poisson inputs during the window (none drawn outside it, or without inputs).
            if ff_off[step + 1] > ff_off[step] {
                // The weights hold until the next RLS update: sum each neuron's weights of every
                // spiking step up to then in one pass over its row (the row stays in cache), rather
                // than touching 1824 distant rows at each spiking step.
                if ff_stale || step >= ff_until {
                    ff_until = (step + every).min(steps);
                    ff_steps.clear();
                    ff_steps.extend((step..ff_until).filter(|&q| ff_off[q + 1] > ff_off[q]));
                    let per_step =
                        |q: usize| &ff_spikes[ff_off[q] as usize..ff_off[q + 1] as usize];
                    let qs = &ff_steps;
                    // `ff_steps` holds this step at least, so rows are never empty.
                    ff_sums.resize(n_tr * qs.len(), 0.0);
                    ff_sums
                        .par_chunks_mut(qs.len())
                        .zip(self.w_ffwd[tt].par_chunks(nff))
                        .for_each(|(out, row)| {
                            for (o, &q) in out.iter_mut().zip(qs) {
                                *o = per_step(q).iter().map(|&j| row[j as usize]).sum::<f64>();
                            }
                        });
                    ff_next = 0;
                    ff_stale = false;
                }
                debug_assert_eq!(ff_steps[ff_next], step);
                let width = ff_steps.len();
                for (t, &c) in self.trained.iter().enumerate() {
                    acc_p[c as usize] += ff_sums[t * width + ff_next];
                }
                ff_next += 1;
            }
        }
        Ok(TrialOut {
            input,
            counts,
            bins,
            spikes,
            mean_input,
            c_min,
        })
    }

    /// The feedforward spikes of one trial, drawn from `rng` step by step over the window in the order
    /// the simulation consumes them: spike indices with offsets per step (spikes drawn at the end of
    /// step `t` arrive at step `t + 1`), and the filtered shared input `s` as each RLS update sees it
    /// (`updates x ffwd`).
    fn draw_feedforward(&self, tt: usize, rng: &mut impl Rng) -> (Vec<u16>, Vec<u32>, Vec<f64>) {
        let cfg = &self.cfg;
        let (nff, dt, steps, win, every) = (
            cfg.ffwd,
            cfg.dt_ms,
            cfg.steps(),
            cfg.window_start(),
            cfg.every(),
        );
        let mut spikes = Vec::new();
        let mut off = vec![0u32; steps + 1];
        for step in 0..steps {
            if step >= win {
                let ms = (((step - win) as f64) * dt) as usize;
                let rates = &self.ffwd_rate[tt][ms * nff..(ms + 1) * nff];
                for (j, &rate) in rates.iter().enumerate() {
                    if rng.random::<f64>() < rate as f64 * dt / 1000.0 {
                        spikes.push(j as u16);
                    }
                }
            }
            off[step + 1] = spikes.len() as u32;
        }
        // The plastic channel's filter (tau_plastic) over those spikes, sampled where RLS reads it;
        // the simulation needs `s` nowhere else.
        let p_p = (-dt / cfg.tau_plastic_ms).exp();
        let inv_tp = 1.0 / cfg.tau_plastic_ms;
        let mut s = vec![0.0; nff];
        let mut at_update = Vec::with_capacity(cfg.updates() * nff);
        for step in 0..steps {
            for x in s.iter_mut() {
                *x *= p_p;
            }
            if step > 0 {
                for &j in &spikes[off[step - 1] as usize..off[step] as usize] {
                    s[j as usize] += inv_tp;
                }
            }
            if step + 1 > win && (step + 1 - win).is_multiple_of(every) {
                at_update.extend_from_slice(&s);
            }
        }
        (spikes, off, at_update)
    }

    /// Mean target over each window bin (the average of the targets at its two ends).
    pub fn binned_targets(&self, targets: &Targets, tt: usize) -> Vec<f64> {
        let bins = self.cfg.updates();
        let mut out = Vec::with_capacity(self.trained.len() * bins);
        for (&row, &off) in self.target_row.iter().zip(&self.target_offset) {
            for b in 0..bins {
                out.push(
                    0.5 * (targets.u(tt, row as usize, b) + targets.u(tt, row as usize, b + 1))
                        + off,
                );
            }
        }
        out
    }

    /// Pearson r per trained neuron between the binned input of a trial and the binned target.
    pub fn correlations(&self, out: &TrialOut, targets: &Targets, tt: usize) -> Vec<f64> {
        self.correlations_smoothed(out, targets, tt, 0)
    }

    /// The score of perfect learning: the untrained run's input plus each target's deviation from its
    /// mean, correlated with the target as [`Self::correlations_smoothed`] does. The plastic input is slow
    /// and can only add to the network's own fast fluctuations (balanced E and I synapses of 3 ms), so
    /// these fluctuations, not the learning rule, cap what any training can score in short bins.
    pub fn ceiling_correlations(
        &self,
        untrained: &TrialOut,
        targets: &Targets,
        tt: usize,
        half: usize,
    ) -> Vec<f64> {
        let tg = self.binned_targets(targets, tt);
        let b = untrained.bins;
        let mut input = untrained.input.clone();
        for (x, y) in input.chunks_mut(b).zip(tg.chunks(b)) {
            let m = mean(y);
            for (xi, yi) in x.iter_mut().zip(y) {
                *xi += yi - m;
            }
        }
        let oracle = TrialOut {
            input,
            counts: Vec::new(),
            bins: b,
            spikes: Vec::new(),
            mean_input: Vec::new(),
            c_min: 1.0,
        };
        self.correlations_smoothed(&oracle, targets, tt, half)
    }

    /// As [`Self::correlations`] after a centred moving average of `2 half + 1` bins on the input (the
    /// edges, where the window does not fit, are left out). The tutorial's published figure uses a
    /// 100 ms average (`half = 2` at 20 ms bins).
    pub fn correlations_smoothed(
        &self,
        out: &TrialOut,
        targets: &Targets,
        tt: usize,
        half: usize,
    ) -> Vec<f64> {
        let tg = self.binned_targets(targets, tt);
        let b = out.bins;
        let w = 2 * half + 1;
        (0..self.trained.len())
            .map(|t| {
                let x = &out.input[t * b..(t + 1) * b];
                let y = &tg[t * b + half..(t + 1) * b - half];
                let xs: Vec<f64> = x
                    .windows(w)
                    .map(|v| v.iter().sum::<f64>() / w as f64)
                    .collect();
                pearson(&xs, y)
            })
            .collect()
    }
}

/// Mean of the finite values.
pub fn mean(v: &[f64]) -> f64 {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    f.iter().sum::<f64>() / f.len().max(1) as f64
}

/// First principal component's time course of `data` (`[cell * bins + bin]`, `cells` rows), from the
/// `bins x bins` Gram matrix of the centred rows by power iteration; unit norm.
pub fn pc1_time_course(data: &[f64], cells: usize, bins: usize) -> Vec<f64> {
    let mut gram = vec![0.0; bins * bins];
    for c in 0..cells {
        let row = &data[c * bins..(c + 1) * bins];
        let m = row.iter().sum::<f64>() / bins as f64;
        let x: Vec<f64> = row.iter().map(|v| v - m).collect();
        for a in 0..bins {
            for b in 0..bins {
                gram[a * bins + b] += x[a] * x[b];
            }
        }
    }
    let mut v: Vec<f64> = (0..bins).map(|i| 1.0 + (i as f64 * 0.37).sin()).collect();
    for _ in 0..500 {
        let mut w: Vec<f64> = (0..bins)
            .map(|a| structured::dot(&gram[a * bins..(a + 1) * bins], &v))
            .collect();
        let norm = structured::dot(&w, &w).sqrt();
        if norm == 0.0 {
            return vec![0.0; bins];
        }
        w.iter_mut().for_each(|x| *x /= norm);
        v = w;
    }
    v
}

/// Noise streams of the test trials (training loops use their loop index).
const TEST_NOISE: u64 = u64::MAX - 1;

/// A training run in progress: the network, its learner, the targets and what has been done.
pub struct Trainer {
    pub net: BalancedNet,
    pub learner: Learner,
    pub targets: Targets,
    pub loops_done: usize,
    /// Mean training-trial correlation per loop, per trial type.
    pub train_r: Vec<[f64; 2]>,
}

impl Trainer {
    pub fn new(
        cfg: &BalancedConfig,
        targets: Targets,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Self> {
        let net = BalancedNet::build(cfg, &targets, progress)?;
        let learner = net.learner()?;
        Ok(Trainer {
            net,
            learner,
            targets,
            loops_done: 0,
            train_r: Vec::new(),
        })
    }

    /// One training loop: both trial types, learning on; returns their mean correlations.
    pub fn train_loop(&mut self) -> Result<[f64; 2]> {
        let l = self.loops_done as u64;
        let mut rs = [0.0; 2];
        for (tt, r) in rs.iter_mut().enumerate() {
            let out = self
                .net
                .trial(tt, l, Some((&mut self.learner, &self.targets)), false)?;
            *r = mean(&self.net.correlations(&out, &self.targets, tt));
        }
        if self.net.w_plastic.iter().any(|w| !w.is_finite()) {
            return Err(SurgeError::NotFinite {
                what: format!("a plastic weight in loop {}", self.loops_done + 1),
                fix: "raise the prior precisions (lambda, lambda_sum, lambda_ffwd) and continue from the last saved state with --resume".into(),
            });
        }
        self.loops_done += 1;
        self.train_r.push(rs);
        Ok(rs)
    }

    /// Both trial types with learning off and fresh noise, spikes recorded.
    pub fn test(&mut self) -> Result<[TrialOut; 2]> {
        Ok([
            self.net.trial(0, TEST_NOISE, None, true)?,
            self.net.trial(1, TEST_NOISE, None, true)?,
        ])
    }
}
