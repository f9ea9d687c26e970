//! The gradient-free route to the same objective: CMA-ES (Hansen's covariance-matrix adaptation, from
//! the `cmaes` crate) over the same log-gains, every candidate scored by the exact engine. It is the
//! baseline the surrogate gradient has to beat: it needs no surrogate and no gradient, only many exact
//! runs, and the exact column is cheap to run.

use super::optimize::{ExactCheck, OptimizeConfig, exact_run};
use crate::error::{Result, SurgeError};
use crate::spec::NetworkSpec;
use cmaes::{CMAESOptions, DVector, objective_function::ParallelObjectiveFunction};
use serde::Serialize;
use std::sync::Mutex;
use std::time::Instant;

/// Settings of the search; the objective, window and bounds are the optimisation experiment's.
#[derive(Debug, Clone, Serialize)]
pub struct CmaesConfig {
    /// Exact-engine evaluations in all (the budget).
    pub evaluations: usize,
    /// Initial step size in log-gain units.
    pub sigma0: f64,
    /// Candidates per generation [default: CMA-ES's 4 + 3 ln(n)].
    pub population: Option<usize>,
    pub seed: u64,
}

/// One generation of the search.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub generation: usize,
    /// Exact-engine evaluations so far.
    pub evaluations: usize,
    pub wall_s: f64,
    /// Best and median loss of this generation's candidates (each scored on its own noise seed).
    pub best_loss: f64,
    pub median_loss: f64,
    /// Band fraction of this generation's best candidate and the median over its candidates.
    pub best_band_fraction: f64,
    pub median_band_fraction: f64,
    /// The search's current mean (its estimate of the optimum), clamped to the bounds.
    pub mean_log_gains: Vec<f32>,
}

/// The optimiser's loss evaluated on an exact run: `-score + rate_weight * outside^2 + l2 |g|^2`, the
/// same terms as the surrogate objective (`objective::loss`), on the exact engine's spectrum.
pub fn exact_loss(cfg: &OptimizeConfig, check: &ExactCheck, log_gains: &[f32]) -> f64 {
    let o = &cfg.objective;
    let psd = crate::signal::Psd {
        freqs_hz: check.freqs_hz.clone(),
        power: check.power.clone(),
    };
    let score = if o.kind == "log_band_power" {
        (psd.band_power(o.band_hz.0, o.band_hz.1) + 1e-12).ln()
    } else {
        check.band_fraction
    };
    let (rate_pen, l2) = super::objective::penalties(o, &check.rates_hz, log_gains);
    let peak = super::objective::peak_penalty(o, &check.freqs_hz, &check.power);
    -score + o.rate_weight * rate_pen + o.l2 * l2 + o.peak_weight * peak
}

struct Scored {
    loss: f64,
    band_fraction: f64,
}

struct ExactObjective<'a> {
    spec: &'a NetworkSpec,
    cfg: &'a OptimizeConfig,
    seed: u64,
    log: &'a Mutex<Vec<Scored>>,
    error: &'a Mutex<Option<SurgeError>>,
}

/// A seed from the candidate itself, so candidates evaluated in parallel get the same noise whatever
/// the order the threads take them in (the search stays reproducible) and different candidates
/// different noise (splitmix64 over the bits).
fn candidate_seed(base: u64, x: &DVector<f64>) -> u64 {
    let mut h = base ^ 0x9E37_79B9_7F4A_7C15;
    for v in x.iter() {
        h ^= v.to_bits();
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h = z ^ (z >> 31);
    }
    h
}

/// The candidate clamped to +-`max`, and its squared distance outside.
fn clamp(x: &DVector<f64>, max: f32) -> (Vec<f32>, f64) {
    let m = max as f64;
    let outside: f64 = x.iter().map(|v| (v.abs() - m).max(0.0).powi(2)).sum();
    (x.iter().map(|v| v.clamp(-m, m) as f32).collect(), outside)
}

impl ParallelObjectiveFunction for ExactObjective<'_> {
    fn evaluate_parallel(&self, x: &DVector<f64>) -> f64 {
        let (gains, outside) = clamp(x, self.cfg.optimizer.max_abs_log_gain);
        let opt = &self.cfg.optimizer;
        let seed = candidate_seed(self.seed, x);
        match exact_run(
            self.spec,
            self.cfg,
            &gains,
            seed,
            opt.warmup_ms + opt.window_ms,
            opt.warmup_ms,
        ) {
            Ok(check) => {
                // Out-of-bounds candidates are scored at the bound plus a pull back inside.
                let loss = exact_loss(self.cfg, &check, &gains) + outside;
                self.log.lock().expect("no panics while held").push(Scored {
                    loss,
                    band_fraction: check.band_fraction,
                });
                loss
            }
            Err(e) => {
                self.error
                    .lock()
                    .expect("no panics while held")
                    .get_or_insert(e);
                f64::INFINITY
            }
        }
    }
}

/// Runs CMA-ES from the network as written (log-gains 0) until `budget.evaluations` exact runs are
/// spent; returns the final mean (clamped to the bounds) and the generations.
pub fn cmaes_exact(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    budget: &CmaesConfig,
    on_generation: &mut dyn FnMut(&Generation),
) -> Result<(Vec<f32>, Vec<Generation>)> {
    let n = spec.connections.len();
    if n == 0 {
        return Err(SurgeError::spec(
            "network.connections",
            "no connection groups",
            "give the network connections whose gains can be searched",
        ));
    }
    if !(budget.sigma0 > 0.0 && budget.sigma0.is_finite()) {
        return Err(SurgeError::spec(
            "--sigma0",
            budget.sigma0.to_string(),
            "use a positive initial step in log-gain units, e.g. 0.5",
        ));
    }
    let (log, error) = (Mutex::new(Vec::new()), Mutex::new(None));
    let objective = ExactObjective {
        spec,
        cfg,
        seed: budget.seed,
        log: &log,
        error: &error,
    };
    let max = cfg.optimizer.max_abs_log_gain;
    let mut options = CMAESOptions::new(vec![0.0; n], budget.sigma0)
        .seed(budget.seed)
        .max_function_evals(budget.evaluations)
        // A noisy objective: never stop early on flat or repeated values, only on the budget.
        .tol_fun(0.0)
        .tol_fun_rel(0.0)
        .tol_fun_hist(0.0)
        .tol_x(0.0)
        .tol_stagnation(usize::MAX);
    if let Some(p) = budget.population {
        options = options.population_size(p);
    }
    let mut state = options.build(objective).map_err(|e| {
        SurgeError::spec(
            "--population",
            format!("CMA-ES refused its options ({e:?})"),
            "give --population 2 or more (or leave it out for CMA-ES's default)",
        )
    })?;
    let t0 = Instant::now();
    let mut generations = Vec::new();
    loop {
        let stop = state.next_parallel();
        if let Some(e) = error.lock().expect("no panics while held").take() {
            return Err(e);
        }
        let mut scored = std::mem::take(&mut *log.lock().expect("no panics while held"));
        if !scored.is_empty() {
            scored.sort_by(|a, b| a.loss.total_cmp(&b.loss));
            let mut fractions: Vec<f64> = scored.iter().map(|s| s.band_fraction).collect();
            fractions.sort_by(f64::total_cmp);
            let g = Generation {
                generation: generations.len() + 1,
                evaluations: state.function_evals(),
                wall_s: t0.elapsed().as_secs_f64(),
                best_loss: scored[0].loss,
                median_loss: scored[scored.len() / 2].loss,
                best_band_fraction: scored[0].band_fraction,
                median_band_fraction: fractions[fractions.len() / 2],
                mean_log_gains: clamp(state.mean(), max).0,
            };
            on_generation(&g);
            generations.push(g);
        }
        if stop.is_some() {
            break;
        }
    }
    Ok((clamp(state.mean(), max).0, generations))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_seeds_depend_on_the_candidate_only() {
        let a = DVector::from_vec(vec![0.1, -0.2, 0.3]);
        let b = DVector::from_vec(vec![0.1, -0.2, 0.30000001]);
        assert_eq!(candidate_seed(7, &a), candidate_seed(7, &a.clone()));
        assert_ne!(candidate_seed(7, &a), candidate_seed(7, &b));
        assert_ne!(candidate_seed(7, &a), candidate_seed(8, &a));
    }
}
