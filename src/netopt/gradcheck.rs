//! Is the surrogate network a good model to descend on? The surrogate's back-propagated gradient of
//! the objective with respect to the group log-gains, set against an estimate of the exact engine's
//! gradient of the same objective: central differences with common random numbers (both sides of a
//! difference run the same network instance, drive noise and initial state), averaged over network
//! instances, with standard errors and a bootstrap over instances.

use super::optimize::{OptimizeConfig, build_network, evaluate_with_gradient, exact_run};
use super::search::exact_loss;
use crate::error::Result;
use crate::spec::{Connectome, NetworkSpec};
use burn::tensor::Device;
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Per-group gradients over instances: the mean, its standard error and the per-instance values.
#[derive(Debug, Clone, Serialize)]
pub struct GradientEstimate {
    pub mean: Vec<f64>,
    pub se: Vec<f64>,
    /// `[instance][group]`.
    pub per_instance: Vec<Vec<f64>>,
}

impl GradientEstimate {
    pub fn from_instances(per_instance: Vec<Vec<f64>>) -> Self {
        let n = per_instance.len().max(1) as f64;
        let dims = per_instance.first().map_or(0, Vec::len);
        let mean: Vec<f64> = (0..dims)
            .map(|k| per_instance.iter().map(|g| g[k]).sum::<f64>() / n)
            .collect();
        let se = (0..dims)
            .map(|k| {
                let var = per_instance
                    .iter()
                    .map(|g| (g[k] - mean[k]).powi(2))
                    .sum::<f64>()
                    / (n - 1.0).max(1.0);
                (var / n).sqrt()
            })
            .collect();
        GradientEstimate {
            mean,
            se,
            per_instance,
        }
    }
}

/// `n` network instance seeds from `first`: none may be a re-check or validation seed of the
/// experiment, whose instances are kept for judging results.
pub fn instance_seeds(cfg: &OptimizeConfig, first: u64, n: usize) -> Result<Vec<u64>> {
    let seeds: Vec<u64> = (0..n as u64).map(|k| first + k).collect();
    match seeds
        .iter()
        .find(|s| cfg.recheck.seeds.contains(s) || cfg.optimizer.validation_seeds.contains(s))
    {
        Some(s) => Err(crate::error::SurgeError::usage(
            format!("instance seed {s} is a re-check or validation seed of the experiment"),
            "another --seed",
        )),
        None => Ok(seeds),
    }
}

/// The exact engine's gradient of the optimiser's loss ([`exact_loss`] on a run of `warm + window_ms`
/// whose first `warm` ms are not scored) at `log_gains`: per instance seed, a central difference of
/// step `h` in every log-gain, both sides on that seed. `2 * groups * seeds` exact runs, in parallel.
#[allow(clippy::too_many_arguments)]
pub fn exact_gradient(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
    warm: f64,
    window_ms: f64,
    seeds: &[u64],
    h: f64,
) -> Result<GradientEstimate> {
    let n = log_gains.len();
    let jobs: Vec<(usize, usize, f64)> = (0..seeds.len())
        .flat_map(|i| (0..n).flat_map(move |k| [(i, k, h), (i, k, -h)]))
        .collect();
    let losses: Vec<f64> = jobs
        .par_iter()
        .map(|&(i, k, d)| {
            let mut g = log_gains.to_vec();
            g[k] += d as f32;
            let run = exact_run(spec, cfg, &g, seeds[i], warm + window_ms, warm)?;
            Ok(exact_loss(cfg, &run, &g))
        })
        .collect::<Result<_>>()?;
    let per_instance = (0..seeds.len())
        .map(|i| {
            (0..n)
                .map(|k| {
                    let at = 2 * (i * n + k);
                    (losses[at] - losses[at + 1]) / (2.0 * h)
                })
                .collect()
        })
        .collect();
    Ok(GradientEstimate::from_instances(per_instance))
}

/// The surrogate network's back-propagated gradient of the same loss at `log_gains` on each instance
/// seed (the seed's connectome, drive noise stream `seed`), with the optimiser's window set to
/// `window_ms` and its spike surrogate to each of `betas`. Returns one estimate per beta.
#[allow(clippy::too_many_arguments)]
pub fn surrogate_gradient(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    checkpoint: &Path,
    log_gains: &[f32],
    window_ms: f64,
    betas: &[f32],
    seeds: &[u64],
    device: &Device,
    progress: &mut dyn FnMut(),
) -> Result<Vec<GradientEstimate>> {
    let mut per_beta: Vec<Vec<Vec<f64>>> = vec![Vec::new(); betas.len()];
    for &seed in seeds {
        let mut s = spec.clone();
        s.simulation.seed = Some(seed);
        let conn = Connectome::build(&s);
        let net = build_network(cfg, &s, &conn, checkpoint, device)?;
        for (b, &beta) in betas.iter().enumerate() {
            let mut c = cfg.clone();
            c.optimizer.window_ms = window_ms;
            c.optimizer.spike_beta = beta;
            let gains = super::Gains::new(log_gains, device);
            let (_, _, grads) =
                evaluate_with_gradient(&net, &c, &gains, seed, device, &mut |_, _| {});
            let g: Vec<f64> = grads
                .get::<1>(gains.log_gain.id)
                .map(|t| t.into_data().try_to_vec::<f32>().expect("f32"))
                .unwrap_or_else(|| vec![0.0; log_gains.len()])
                .into_iter()
                .map(|x| x as f64)
                .collect();
            per_beta[b].push(g);
            progress();
        }
    }
    Ok(per_beta
        .into_iter()
        .map(GradientEstimate::from_instances)
        .collect())
}

/// The exact engine's own back-propagated gradient (surrogate spike derivative, [`crate::bptt`]) of
/// the same loss at `log_gains`, on each instance seed (its connectome, drive noise and initial
/// state, as [`exact_gradient`] runs them), for each of `configs`. Instances run in parallel.
pub fn bptt_gradient(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
    window_ms: f64,
    configs: &[crate::bptt::BpttConfig],
    seeds: &[u64],
) -> Result<Vec<GradientEstimate>> {
    let per_seed: Vec<Vec<Vec<f64>>> = seeds
        .par_iter()
        .map(|&seed| {
            let mut s = spec.clone();
            s.simulation.seed = Some(seed);
            let conn = Connectome::build(&s);
            configs
                .iter()
                .map(|b| {
                    let ev = crate::bptt::objective::evaluate(
                        &s,
                        &conn,
                        cfg,
                        b,
                        &crate::bptt::objective::Params {
                            log_gains,
                            log_w: None,
                        },
                        cfg.optimizer.warmup_ms,
                        window_ms,
                    )?;
                    Ok(ev.d_log_gain)
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok((0..configs.len())
        .map(|c| GradientEstimate::from_instances(per_seed.iter().map(|g| g[c].clone()).collect()))
        .collect())
}

/// Cosine similarity of two vectors (0 if either is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// How a surrogate gradient agrees with the exact estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    /// Cosine of the two instance-mean gradients.
    pub cosine: f64,
    /// Its standard error: instances resampled with replacement (the same resample for both sides).
    pub cosine_se: f64,
    /// How far the exact estimate agrees with itself: cosine of the means over the even and the odd
    /// instances. Near 1: the exact gradient is resolved; near 0: the figure above is noise.
    pub exact_split_half: f64,
    pub surrogate_split_half: f64,
    /// Per group, whether the two means have the same sign...
    pub sign_agree: Vec<bool>,
    /// ...and whether the exact mean is at least two standard errors from 0.
    pub exact_resolved: Vec<bool>,
    /// Fraction of agreeing signs among all groups and among the resolved ones.
    pub sign_agreement: f64,
    pub sign_agreement_resolved: Option<f64>,
}

/// Compares `sur` with `exact` (same instances in the same order); `seed` drives the bootstrap.
pub fn agreement(sur: &GradientEstimate, exact: &GradientEstimate, seed: u64) -> Agreement {
    let n = sur.per_instance.len().min(exact.per_instance.len());
    let mean_of = |e: &GradientEstimate, idx: &[usize]| -> Vec<f64> {
        let d = e.mean.len();
        (0..d)
            .map(|k| {
                idx.iter().map(|&i| e.per_instance[i][k]).sum::<f64>() / idx.len().max(1) as f64
            })
            .collect()
    };
    let mut rng = crate::seed::rng_for(seed, &[0xB0]);
    let boots: Vec<f64> = (0..500)
        .map(|_| {
            let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..n.max(1))).collect();
            cosine(&mean_of(sur, &idx), &mean_of(exact, &idx))
        })
        .collect();
    let bm = boots.iter().sum::<f64>() / boots.len() as f64;
    let cosine_se =
        (boots.iter().map(|c| (c - bm).powi(2)).sum::<f64>() / (boots.len() - 1) as f64).sqrt();
    let even: Vec<usize> = (0..n).step_by(2).collect();
    let odd: Vec<usize> = (1..n).step_by(2).collect();
    let split = |e: &GradientEstimate| cosine(&mean_of(e, &even), &mean_of(e, &odd));
    let sign_agree: Vec<bool> = sur
        .mean
        .iter()
        .zip(&exact.mean)
        .map(|(a, b)| a.signum() == b.signum())
        .collect();
    let exact_resolved: Vec<bool> = exact
        .mean
        .iter()
        .zip(&exact.se)
        .map(|(m, s)| m.abs() >= 2.0 * s)
        .collect();
    let frac = |v: Vec<bool>| v.iter().filter(|&&b| b).count() as f64 / v.len().max(1) as f64;
    let resolved: Vec<bool> = sign_agree
        .iter()
        .zip(&exact_resolved)
        .filter(|(_, r)| **r)
        .map(|(a, _)| *a)
        .collect();
    Agreement {
        cosine: cosine(&sur.mean, &exact.mean),
        cosine_se,
        exact_split_half: split(exact),
        surrogate_split_half: split(sur),
        sign_agreement: frac(sign_agree.clone()),
        sign_agreement_resolved: (!resolved.is_empty()).then(|| frac(resolved)),
        sign_agree,
        exact_resolved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_and_estimates() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-12);
        let e = GradientEstimate::from_instances(vec![vec![1.0, 0.0], vec![3.0, 2.0]]);
        assert_eq!(e.mean, vec![2.0, 1.0]);
        // Sample sd sqrt(2), over sqrt(2) instances: 1.
        assert!((e.se[0] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn agreement_of_a_gradient_with_itself_and_its_opposite() {
        let inst: Vec<Vec<f64>> = (0..8)
            .map(|i| vec![1.0 + 0.1 * i as f64, -2.0, 0.5])
            .collect();
        let a = GradientEstimate::from_instances(inst.clone());
        let same = agreement(&a, &a, 1);
        assert!((same.cosine - 1.0).abs() < 1e-12 && same.cosine_se < 1e-9);
        assert_eq!(same.sign_agreement, 1.0);
        let neg = GradientEstimate::from_instances(
            inst.iter()
                .map(|g| g.iter().map(|x| -x).collect())
                .collect(),
        );
        let opp = agreement(&neg, &a, 1);
        assert!((opp.cosine + 1.0).abs() < 1e-12);
        assert_eq!(opp.sign_agreement, 0.0);
        assert_eq!(opp.sign_agreement_resolved, Some(0.0));
    }
}
