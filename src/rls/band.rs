//! The exact, non-surrogate route to an oscillation target: FORCE (Sussillo & Abbott 2009) on the
//! exact network. A set of trained cells receives a learned current `z_i = w_i . r`, where `r` are the
//! exponentially filtered spike trains of a presynaptic set; during training, recursive least squares
//! moves every `w_i` so that `z_i` follows an in-phase sinusoid at the target frequency, so the trained
//! cells are driven at that rhythm and the rhythm shows in the population signal (by default the
//! target itself is injected while learning: teacher forcing, see `teacher_forcing`). After training the
//! weights are frozen and the network runs on its own (the learned current is still `w . r`, from its
//! own spikes): whether the rhythm survives is what the held-out check measures.
//!
//! All trained cells read the same `r`, so one inverse correlation matrix `P` serves them all
//! ([`RlsLearner::update_shared`], the textbook FORCE step).

use super::force::RlsLearner;
use crate::error::{Result, SurgeError};
use crate::exact::network::StepHook;
use crate::spec::{Connectome, NetworkSpec};
use serde::{Deserialize, Serialize};

/// The `[rls]` table of an optimisation experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BandRlsConfig {
    /// Populations that receive the learned current.
    pub trained: Vec<String>,
    /// Populations whose filtered spikes are the plastic inputs.
    pub presynaptic: Vec<String>,
    /// Target frequency (Hz).
    pub freq_hz: f64,
    /// Trained cell `i` of `n` follows `sin(2 pi f t + 2 pi phase_spread i / n)`: phases spread over this
    /// fraction of a cycle. Identical phases give the readout a one-dimensional basis (every entrained
    /// cell lags the same way, so no combination of them leads); half a cycle keeps 64% of the
    /// population's oscillation and gives the readout both quadratures.
    pub phase_spread: f64,
    /// Target amplitude (pA for conductance-based cells, mV for current-based ones).
    pub amplitude: f64,
    /// Filter of the presynaptic spike trains (ms).
    pub tau_r_ms: f64,
    pub update_every_ms: f64,
    /// `P(0) = I / alpha`.
    pub alpha: f64,
    /// Training trials, each a new noise seed, and their length.
    pub loops: usize,
    pub train_ms: f64,
    pub seed: u64,
    /// During training, inject the target itself and learn to reproduce it (teacher forcing, as in
    /// echo-state networks and full-FORCE): the cells are entrained, so the filtered spikes carry the
    /// rhythm the readout has to rebuild. Off: inject the readout (classic FORCE).
    pub teacher_forcing: bool,
}

impl Default for BandRlsConfig {
    fn default() -> Self {
        BandRlsConfig {
            trained: vec!["L5_pyr".into()],
            presynaptic: vec!["L2_pyr".into(), "L5_pyr".into()],
            freq_hz: 20.0,
            phase_spread: 0.5,
            amplitude: 100.0,
            tau_r_ms: 20.0,
            update_every_ms: 2.0,
            alpha: 10.0,
            loops: 10,
            train_ms: 1000.0,
            seed: 500,
            teacher_forcing: true,
        }
    }
}

impl BandRlsConfig {
    pub fn validate(&self, spec: &NetworkSpec) -> Result<()> {
        for (field, pops) in [
            ("rls.trained", &self.trained),
            ("rls.presynaptic", &self.presynaptic),
        ] {
            if pops.is_empty() {
                return Err(SurgeError::spec(
                    field,
                    "empty",
                    "name at least one population of the network",
                ));
            }
            for p in pops {
                if spec.population_index(p).is_none() {
                    return Err(SurgeError::spec(
                        field,
                        format!("no population `{p}` in the network"),
                        "use the population names of the network file",
                    ));
                }
            }
        }
        for (field, v) in [
            ("rls.freq_hz", self.freq_hz),
            ("rls.amplitude", self.amplitude),
            ("rls.tau_r_ms", self.tau_r_ms),
            ("rls.update_every_ms", self.update_every_ms),
            ("rls.alpha", self.alpha),
            ("rls.train_ms", self.train_ms),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(SurgeError::spec(
                    field,
                    v.to_string(),
                    "use a positive, finite value",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.phase_spread) {
            return Err(SurgeError::spec(
                "rls.phase_spread",
                self.phase_spread.to_string(),
                "give the spread of the targets' phases as a fraction of a cycle, from 0 (in phase) to 1",
            ));
        }
        if self.loops == 0 {
            return Err(SurgeError::spec(
                "rls.loops",
                "0",
                "train at least one loop",
            ));
        }
        Ok(())
    }
}

/// The learner and the current it feeds back: one weight row per trained cell over the presynaptic
/// set, and the learner holding their shared `P`.
pub struct BandForce {
    cfg: BandRlsConfig,
    /// Global cell -> presynaptic index (`u32::MAX` when not presynaptic).
    pre_of: Vec<u32>,
    /// Global index of each trained cell.
    trained: Vec<usize>,
    pub w: Vec<Vec<f64>>,
    learner: RlsLearner,
    r: Vec<f64>,
    decay: f64,
    every: usize,
    /// Learning on (training trials) or off (held-out checks).
    pub learning: bool,
    /// Sum of squared errors and count since the last reset (training fit).
    pub se: f64,
    pub n_err: usize,
    z: Vec<f64>,
    targets: Vec<f64>,
}

fn cells_of(spec: &NetworkSpec, conn: &Connectome, pops: &[String]) -> Vec<usize> {
    pops.iter()
        .flat_map(|p| {
            let i = spec.population_index(p).expect("validated");
            conn.pop_offsets[i]..conn.pop_offsets[i + 1]
        })
        .collect()
}

impl BandForce {
    pub fn new(cfg: &BandRlsConfig, spec: &NetworkSpec, conn: &Connectome) -> Result<Self> {
        cfg.validate(spec)?;
        let pre = cells_of(spec, conn, &cfg.presynaptic);
        let trained = cells_of(spec, conn, &cfg.trained);
        let mut pre_of = vec![u32::MAX; conn.n_cells];
        for (j, &c) in pre.iter().enumerate() {
            pre_of[c] = j as u32;
        }
        let n_pre = pre.len();
        let dt = spec.simulation.dt_ms;
        Ok(BandForce {
            cfg: cfg.clone(),
            pre_of,
            w: vec![vec![0.0; n_pre]; trained.len()],
            trained,
            learner: RlsLearner::new(n_pre, cfg.alpha, &[]),
            r: vec![0.0; n_pre],
            decay: (-dt / cfg.tau_r_ms).exp(),
            every: (cfg.update_every_ms / dt).round().max(1.0) as usize,
            learning: true,
            se: 0.0,
            n_err: 0,
            z: Vec::new(),
            targets: Vec::new(),
        })
    }

    /// Starts a new trial: the filtered spike trains start from rest.
    pub fn reset_trial(&mut self) {
        self.r.iter_mut().for_each(|x| *x = 0.0);
        self.se = 0.0;
        self.n_err = 0;
    }

    /// Training fit of the trial so far: RMS error of `z` against the target.
    pub fn rms_error(&self) -> f64 {
        (self.se / self.n_err.max(1) as f64).sqrt()
    }

    fn target(&self, t_ms: f64, i: usize) -> f64 {
        let tau = 2.0 * std::f64::consts::PI;
        let phase = tau * self.cfg.phase_spread * i as f64 / self.trained.len().max(1) as f64;
        self.cfg.amplitude * (tau * self.cfg.freq_hz * t_ms / 1000.0 + phase).sin()
    }

    /// One RLS step with the current `r` on every trained cell's readout (all share `P`).
    fn rls_step(&mut self, t_ms: f64) -> Result<()> {
        self.targets = (0..self.trained.len())
            .map(|i| self.target(t_ms, i))
            .collect();
        let (c, errors) = self
            .learner
            .update_shared_with_gain(&mut self.w, &self.r, &self.targets);
        if !(c > 0.0 && c <= 1.0) {
            return Err(SurgeError::Diverged {
                what: "the RLS gain 1/(1 + r.P r) (P lost positive definiteness)".into(),
                value: c,
                t_ms,
            });
        }
        for e in errors {
            self.se += e * e;
            self.n_err += 1;
        }
        Ok(())
    }
}

/// The hook cannot return an error, so a diverging update is kept and reported after the run.
pub struct BandForceHook<'a> {
    pub force: &'a mut BandForce,
    pub error: Option<SurgeError>,
}

impl StepHook for BandForceHook<'_> {
    fn after_step(&mut self, n: usize, t_end_ms: f64, spiked: &[u32], current: &mut [f64]) {
        let f = &mut *self.force;
        for x in f.r.iter_mut() {
            *x *= f.decay;
        }
        for &c in spiked {
            let j = f.pre_of[c as usize];
            if j != u32::MAX {
                f.r[j as usize] += 1.0;
            }
        }
        f.z.clear();
        f.z.extend(f.w.iter().map(|w| super::structured::dot(w, &f.r)));
        if f.learning && (n + 1).is_multiple_of(f.every) && self.error.is_none() {
            if let Err(e) = f.rls_step(t_end_ms) {
                self.error = Some(e);
            }
            // The readout after the update drives the next step.
            for (z, w) in f.z.iter_mut().zip(&f.w) {
                *z = super::structured::dot(w, &f.r);
            }
        }
        if f.learning && f.cfg.teacher_forcing {
            for (i, &c) in f.trained.iter().enumerate() {
                current[c] = f.target(t_end_ms, i);
            }
        } else {
            for (&c, &z) in f.trained.iter().zip(&f.z) {
                current[c] = z;
            }
        }
    }
}

/// Trains on one network instance `conn` (the weights belong to its cells) for `cfg.loops` trials of
/// `cfg.train_ms`, each with new drive noise (seed `cfg.seed + loop`); returns the RMS error of the
/// readout against the target per loop.
pub fn train(
    force: &mut BandForce,
    spec: &NetworkSpec,
    conn: &Connectome,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Vec<f64>> {
    let mut errors = Vec::new();
    force.learning = true;
    for l in 0..force.cfg.loops {
        let mut s = spec.clone();
        s.simulation.seed = Some(force.cfg.seed + l as u64);
        s.simulation.duration_ms = force.cfg.train_ms;
        s.recording.voltages.clear();
        s.recording.signals.clear();
        force.reset_trial();
        let mut hook = BandForceHook {
            force: &mut *force,
            error: None,
        };
        crate::exact::network::simulate_with_hook(
            &s,
            conn,
            None,
            crate::exact::network::Sampling::default(),
            Some(&mut hook),
            &mut |_, _| {},
        )?;
        if let Some(e) = hook.error {
            return Err(e);
        }
        let rms = force.rms_error();
        errors.push(rms);
        progress(l + 1, rms);
    }
    force.learning = false;
    Ok(errors)
}
