//! Routes to one target judged the same way: the surrogate gradient, CMA-ES on the exact engine and
//! RLS (FORCE) on the exact network, each re-run by the exact engine on held-out instances.

use crate::error::{Result, SurgeError};
use crate::exact::StepHook;
use crate::netopt::optimize::{self, ExactCheck, OptimizeConfig, exact_run_with_hook};
use crate::rls::band::{self, BandForce, BandForceHook};
use crate::spec::{Connectome, NetworkSpec};
use std::path::Path;

/// One route's result as the exact engine judges it on the held-out instances.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MethodResult {
    pub method: String,
    /// Exact-engine runs the search itself used (the held-out re-check not counted).
    pub exact_evaluations: usize,
    pub search_wall_s: f64,
    pub log_gains: Vec<f32>,
    pub heldout: Vec<Heldout>,
    pub mean_band_fraction: f64,
    pub seeds_passing_bar: usize,
}

/// One held-out instance's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Heldout {
    pub seed: u64,
    pub band_fraction: f64,
    pub peak_hz: Option<f64>,
    pub rates_hz: Vec<f64>,
}

pub fn heldout(checks: &[ExactCheck]) -> Vec<Heldout> {
    checks
        .iter()
        .map(|c| Heldout {
            seed: c.seed,
            band_fraction: c.band_fraction,
            peak_hz: c.peak_hz,
            rates_hz: c.rates_hz.clone(),
        })
        .collect()
}

pub fn mean_fraction(checks: &[ExactCheck]) -> f64 {
    checks.iter().map(|c| c.band_fraction).sum::<f64>() / checks.len().max(1) as f64
}

/// Judges a route: per instance, [`optimize::passes_bar`] against `before`.
pub fn judge(
    cfg: &OptimizeConfig,
    method: &str,
    exact_evaluations: usize,
    search_wall_s: f64,
    log_gains: Vec<f32>,
    before: &[ExactCheck],
    after: &[ExactCheck],
) -> MethodResult {
    MethodResult {
        method: method.into(),
        exact_evaluations,
        search_wall_s,
        seeds_passing_bar: after
            .iter()
            .zip(before)
            .filter(|(a, b)| optimize::passes_bar(cfg, b, a))
            .count(),
        mean_band_fraction: mean_fraction(after),
        heldout: heldout(after),
        log_gains,
    }
}

/// A finished `surge optimize` run as a route's result.
pub struct SurrogateRun {
    pub log_gains: Vec<f32>,
    pub iterations: usize,
    pub wall_s: f64,
    /// Exact-engine runs it spent choosing its result (`select = "validation"`; 0 otherwise).
    pub selection_runs: usize,
}

/// Reads the `metrics.json` of a finished `surge optimize` folder, checked against the network.
pub fn read_surrogate_run(dir: &Path, n_groups: usize) -> Result<SurrogateRun> {
    let path = dir.join("metrics.json");
    let fix = "give a folder written by `surge optimize` of this experiment, or leave --surrogate-run out to run the optimisation now";
    let text =
        std::fs::read_to_string(&path).map_err(|e| SurgeError::io("cannot read", &path, e))?;
    let at = path.display();
    let m: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SurgeError::usage(format!("{at} is not JSON ({e})"), fix))?;
    let gains: Vec<f32> = serde_json::from_value(m["log_gains"].clone())
        .map_err(|_| SurgeError::usage(format!("{at} has no `log_gains` array"), fix))?;
    if gains.len() != n_groups || !gains.iter().all(|g| g.is_finite()) {
        return Err(SurgeError::usage(
            format!(
                "{at} holds {} finite log-gains, the network {n_groups} connection groups",
                gains.iter().filter(|g| g.is_finite()).count()
            ),
            fix,
        ));
    }
    Ok(SurrogateRun {
        log_gains: gains,
        iterations: m["iterations"].as_array().map_or(0, |a| a.len()),
        wall_s: m["wall_clock_s"]["optimize"].as_f64().unwrap_or(f64::NAN),
        selection_runs: m["exact_runs_for_selection"].as_u64().unwrap_or(0) as usize,
    })
}

/// RLS towards the band on the exact network, judged before and after on its own instance.
pub struct RlsRoute {
    /// Readout RMS error per training trial.
    pub errors: Vec<f64>,
    pub wall_s: f64,
    /// The trained instance on the held-out drive noise, without and with the learned current.
    pub before: Vec<ExactCheck>,
    pub after: Vec<ExactCheck>,
}

/// Trains the band readout (`[rls]` of the experiment) and re-runs the network on the held-out
/// seeds. RLS weights belong to the cells they were trained on, so it is judged on that instance
/// with the held-out seeds' drive noise. `progress` hears each trial's (number, RMS error).
pub fn rls_route(
    cfg: &OptimizeConfig,
    spec: &NetworkSpec,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<RlsRoute> {
    let t = std::time::Instant::now();
    let conn = Connectome::build(spec);
    let mut force = BandForce::new(&cfg.rls, spec, &conn)?;
    let errors = band::train(&mut force, spec, &conn, progress)?;
    let wall_s = t.elapsed().as_secs_f64();
    let zeros = vec![0.0; spec.connections.len()];
    let mut run = |learned: bool| -> Result<Vec<ExactCheck>> {
        cfg.recheck
            .seeds
            .iter()
            .map(|&seed| {
                force.reset_trial();
                let mut hook = BandForceHook {
                    force: &mut force,
                    error: None,
                };
                let hook: Option<&mut dyn StepHook> = if learned { Some(&mut hook) } else { None };
                exact_run_with_hook(
                    spec,
                    cfg,
                    &zeros,
                    seed,
                    cfg.recheck.duration_ms,
                    cfg.recheck.warmup_ms,
                    hook,
                    Some(&conn),
                )
            })
            .collect()
    };
    let before = run(false)?;
    let after = run(true)?;
    Ok(RlsRoute {
        errors,
        wall_s,
        before,
        after,
    })
}
