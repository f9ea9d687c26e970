//! The objective along a line in log-gain space, in the exact engine and through surrogates: can a
//! descent that starts at `from` see the way to `to`? Where the exact band fraction stays flat near
//! the start and rises only far along the line, no gradient at the start points along it, however
//! accurate (a curved path may still climb).

use super::Gains;
use super::optimize::{OptimizeConfig, build_network, evaluate, exact_run};
use crate::error::Result;
use crate::spec::{Connectome, NetworkSpec};
use burn::tensor::Device;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One engine's values at every point of the line: `[point][instance]`.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// `exact`, or the checkpoint folder.
    pub engine: String,
    pub band_fraction: Vec<Vec<f64>>,
    pub peak_hz: Vec<Vec<f64>>,
    /// `[point][instance][population]`.
    pub rates_hz: Vec<Vec<Vec<f64>>>,
    pub wall_s: f64,
}

impl Profile {
    /// Per point, the mean over instances of `band_fraction`.
    pub fn mean_band_fraction(&self) -> Vec<f64> {
        self.band_fraction
            .iter()
            .map(|v| v.iter().sum::<f64>() / v.len().max(1) as f64)
            .collect()
    }
}

/// `from + t (to - from)` for each `t`.
pub fn line(from: &[f32], to: &[f32], ts: &[f64]) -> Vec<Vec<f32>> {
    ts.iter()
        .map(|&t| {
            from.iter()
                .zip(to)
                .map(|(&a, &b)| a + (t as f32) * (b - a))
                .collect()
        })
        .collect()
}

/// The exact engine at every point on every instance seed (its connectome, drive noise and initial
/// state), `warm + window_ms` per run with the first `warm` ms not analysed. Runs in parallel.
pub fn exact_profile(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    points: &[Vec<f32>],
    seeds: &[u64],
    warm: f64,
    window_ms: f64,
) -> Result<Profile> {
    let t = std::time::Instant::now();
    let jobs: Vec<(usize, usize)> = (0..points.len())
        .flat_map(|p| (0..seeds.len()).map(move |i| (p, i)))
        .collect();
    let checks = jobs
        .par_iter()
        .map(|&(p, i)| exact_run(spec, cfg, &points[p], seeds[i], warm + window_ms, warm))
        .collect::<Result<Vec<_>>>()?;
    let at = |p: usize, i: usize| &checks[p * seeds.len() + i];
    let per = |f: &dyn Fn(usize, usize) -> f64| -> Vec<Vec<f64>> {
        (0..points.len())
            .map(|p| (0..seeds.len()).map(|i| f(p, i)).collect())
            .collect()
    };
    Ok(Profile {
        engine: "exact".into(),
        band_fraction: per(&|p, i| at(p, i).band_fraction),
        peak_hz: per(&|p, i| at(p, i).peak_hz.unwrap_or(f64::NAN)),
        rates_hz: (0..points.len())
            .map(|p| {
                (0..seeds.len())
                    .map(|i| at(p, i).rates_hz.clone())
                    .collect()
            })
            .collect(),
        wall_s: t.elapsed().as_secs_f64(),
    })
}

/// The surrogate network of `checkpoint` at every point on every instance seed (that seed's
/// connectome; its drive-noise stream), forward only, with the optimiser's warm-up and a scored
/// window of `window_ms`.
#[allow(clippy::too_many_arguments)]
pub fn surrogate_profile(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    checkpoint: &Path,
    points: &[Vec<f32>],
    seeds: &[u64],
    window_ms: f64,
    device: &Device,
    progress: &mut dyn FnMut(),
) -> Result<Profile> {
    let t = std::time::Instant::now();
    let mut c = cfg.clone();
    c.optimizer.window_ms = window_ms;
    let n = points.len();
    let mut band = vec![Vec::new(); n];
    let mut peak = vec![Vec::new(); n];
    let mut rates = vec![Vec::new(); n];
    for &seed in seeds {
        let mut s = spec.clone();
        s.simulation.seed = Some(seed);
        let conn = Connectome::build(&s);
        let net = build_network(&c, &s, &conn, checkpoint, device)?;
        for (p, g) in points.iter().enumerate() {
            let (_, rec, _, _) = evaluate(&net, &c, &Gains::new(g, device), seed, device, false);
            band[p].push(rec.band_score);
            peak[p].push(rec.peak_hz.unwrap_or(f64::NAN));
            rates[p].push(rec.rates_hz);
            progress();
        }
    }
    Ok(Profile {
        engine: checkpoint.display().to_string(),
        band_fraction: band,
        peak_hz: peak,
        rates_hz: rates,
        wall_s: t.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_passes_through_both_ends() {
        let l = line(&[0.0, 1.0], &[2.0, -1.0], &[0.0, 0.5, 1.0, 1.5]);
        assert_eq!(l[0], vec![0.0, 1.0]);
        assert_eq!(l[1], vec![1.0, 0.0]);
        assert_eq!(l[2], vec![2.0, -1.0]);
        assert_eq!(l[3], vec![3.0, -2.0]);
    }
}
