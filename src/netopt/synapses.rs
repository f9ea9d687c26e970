//! The many-parameter task: one log-weight per synapse of one network instance (group gains
//! frozen), fitted by gradients, by separable CMA-ES (diagonal covariance, Ros & Hansen 2008: the
//! standard evolution strategy at thousands of dimensions) or by random search, all scored by the
//! exact engine and counted in exact-engine runs; and the shuffled-weights control.

use super::optimize::{ExactCheck, OptimizeConfig, exact_run_with_hook};
use super::search::exact_loss;
use crate::error::Result;
use crate::spec::{Connectome, NetworkSpec};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_distr::StandardNormal;
use serde::Serialize;

/// One network instance (the spec's seed) and the objective of its per-synapse log-weights.
pub struct SynapseTask<'a> {
    pub spec: &'a NetworkSpec,
    pub cfg: &'a OptimizeConfig,
    /// The connectome at the spec's own gains.
    pub conn: &'a Connectome,
}

/// The band fraction of the current iterate after a number of exact-engine runs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    pub runs: Vec<usize>,
    pub band_fraction: Vec<f64>,
}

/// The noise stream of trace measurements (never an optimisation window's).
const TRACE_NOISE: u64 = u64::MAX - 11;

impl SynapseTask<'_> {
    fn zeros(&self) -> Vec<f32> {
        vec![0.0; self.spec.connections.len()]
    }

    /// The connectome with `log_w` applied (one per synapse, in the connectome's order).
    pub fn weighted(&self, log_w: &[f32]) -> Connectome {
        let mut c = self.conn.clone();
        for (w, &l) in c.weights.iter_mut().zip(log_w) {
            *w *= l.exp();
        }
        c
    }

    fn run(&self, log_w: &[f32], noise: u64, duration_ms: f64, warm_ms: f64) -> Result<ExactCheck> {
        exact_run_with_hook(
            self.spec,
            self.cfg,
            &self.zeros(),
            noise,
            duration_ms,
            warm_ms,
            None,
            Some(&self.weighted(log_w)),
        )
    }

    /// The optimiser's loss of `log_w` on one exact run of the optimisation window (noise stream
    /// `noise`), with the synapse penalty and the bound as a penalty outside it.
    pub fn loss(&self, log_w: &[f32], noise: u64) -> Result<f64> {
        let o = &self.cfg.optimizer;
        let m = o.max_abs_log_weight;
        let clamped: Vec<f32> = log_w.iter().map(|x| x.clamp(-m, m)).collect();
        let outside: f64 = log_w
            .iter()
            .map(|x| ((x.abs() - m).max(0.0) as f64).powi(2))
            .sum();
        let run = self.run(&clamped, noise, o.warmup_ms + o.window_ms, o.warmup_ms)?;
        let l2 = clamped.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / clamped.len() as f64;
        Ok(exact_loss(self.cfg, &run, &self.zeros()) + o.synapse_l2 * l2 + outside)
    }

    /// The band fraction of `log_w` on the trace's fixed noise, over the re-check's duration.
    pub fn trace_fraction(&self, log_w: &[f32]) -> Result<f64> {
        let r = &self.cfg.recheck;
        Ok(self
            .run(log_w, TRACE_NOISE, r.duration_ms, r.warmup_ms)?
            .band_fraction)
    }

    /// The exact engine on each held-out seed (drive noise and initial state; the instance fixed).
    pub fn heldout(&self, log_w: &[f32]) -> Result<Vec<ExactCheck>> {
        let r = &self.cfg.recheck;
        r.seeds
            .iter()
            .map(|&s| self.run(log_w, s, r.duration_ms, r.warmup_ms))
            .collect()
    }

    fn noise(seed: u64, k: u64) -> u64 {
        (seed << 32) ^ (0x5E9 << 20) ^ k
    }

    /// Separable CMA-ES from 0 with step `sigma0`, for at most `budget` exact runs (returned: the mean,
    /// its trace, the runs spent); the mean is traced
    /// every generation whose run count passes a multiple of `trace_every`. All candidates of a
    /// generation share one noise stream (their ranking is not noise).
    pub fn sep_cmaes(
        &self,
        budget: usize,
        sigma0: f64,
        seed: u64,
        trace_every: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<f32>, Trace, usize)> {
        let n = self.conn.weights.len();
        let nf = n as f64;
        let lambda = 4 + (3.0 * nf.ln()).floor() as usize;
        let mu = lambda / 2;
        let raw: Vec<f64> = (0..mu)
            .map(|i| (mu as f64 + 0.5).ln() - ((i + 1) as f64).ln())
            .collect();
        let sum: f64 = raw.iter().sum();
        let w: Vec<f64> = raw.iter().map(|x| x / sum).collect();
        let mu_eff = 1.0 / w.iter().map(|x| x * x).sum::<f64>();
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let d_sigma = 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma;
        let c_c = (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf);
        // The separable variant's learning rates are (n + 2) / 3 times the full one's.
        let sep = (nf + 2.0) / 3.0;
        let c_1 = (sep * 2.0 / ((nf + 1.3).powi(2) + mu_eff)).min(1.0);
        let c_mu = (sep * 2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff))
            .min(1.0 - c_1);
        let chi_n = nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf));
        let mut rng = crate::seed::rng_for(seed, &[0x5C, 1]);
        let mut mean = vec![0.0f64; n];
        let mut sigma = sigma0;
        let mut c = vec![1.0f64; n];
        let (mut p_s, mut p_c) = (vec![0.0f64; n], vec![0.0f64; n]);
        let mut trace = Trace::default();
        let mut runs = 0usize;
        let as_f32 = |m: &[f64]| m.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        trace.runs.push(0);
        trace
            .band_fraction
            .push(self.trace_fraction(&as_f32(&mean))?);
        let mut generation = 0u64;
        while runs + lambda <= budget {
            let d: Vec<f64> = c.iter().map(|x| x.sqrt()).collect();
            let z: Vec<Vec<f64>> = (0..lambda)
                .map(|_| (0..n).map(|_| rng.sample(StandardNormal)).collect())
                .collect();
            let noise = Self::noise(seed, generation);
            let mut scored: Vec<(f64, usize)> = Vec::with_capacity(lambda);
            for (k, zk) in z.iter().enumerate() {
                let x: Vec<f32> = (0..n)
                    .map(|i| (mean[i] + sigma * d[i] * zk[i]) as f32)
                    .collect();
                scored.push((self.loss(&x, noise)?, k));
                runs += 1;
                progress(runs);
            }
            scored.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut zw = vec![0.0f64; n];
            for (wi, &(_, k)) in w.iter().zip(&scored) {
                for i in 0..n {
                    zw[i] += wi * z[k][i];
                }
            }
            let norm_ps = {
                let k = (c_sigma * (2.0 - c_sigma) * mu_eff).sqrt();
                for i in 0..n {
                    p_s[i] = (1.0 - c_sigma) * p_s[i] + k * zw[i];
                }
                p_s.iter().map(|x| x * x).sum::<f64>().sqrt()
            };
            let h_sigma = norm_ps
                / (1.0 - (1.0 - c_sigma).powi(2 * (generation as i32 + 1))).sqrt()
                < (1.4 + 2.0 / (nf + 1.0)) * chi_n;
            let hs = if h_sigma { 1.0 } else { 0.0 };
            let kc = hs * (c_c * (2.0 - c_c) * mu_eff).sqrt();
            for i in 0..n {
                let yw = d[i] * zw[i];
                mean[i] += sigma * yw;
                p_c[i] = (1.0 - c_c) * p_c[i] + kc * yw;
                let rank_mu: f64 = w
                    .iter()
                    .zip(&scored)
                    .map(|(wi, &(_, k))| wi * (d[i] * z[k][i]).powi(2))
                    .sum();
                c[i] = (1.0 - c_1 - c_mu) * c[i]
                    + c_1 * (p_c[i] * p_c[i] + (1.0 - hs) * c_c * (2.0 - c_c) * c[i])
                    + c_mu * rank_mu;
            }
            sigma *= ((c_sigma / d_sigma) * (norm_ps / chi_n - 1.0)).exp();
            generation += 1;
            if runs / trace_every.max(1)
                > trace.runs.last().copied().unwrap_or(0) / trace_every.max(1)
            {
                trace.runs.push(runs);
                trace
                    .band_fraction
                    .push(self.trace_fraction(&as_f32(&mean))?);
            }
        }
        let m = self.cfg.optimizer.max_abs_log_weight;
        Ok((
            mean.iter().map(|&x| (x as f32).clamp(-m, m)).collect(),
            trace,
            runs,
        ))
    }

    /// Random search: a Gaussian step of `sigma` from the incumbent, kept if it scores better than
    /// the incumbent on the same noise stream (two exact runs per step), for `budget` runs.
    /// Returns the incumbent, its trace and the runs spent.
    pub fn random_search(
        &self,
        budget: usize,
        sigma: f64,
        seed: u64,
        trace_every: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<f32>, Trace, usize)> {
        let n = self.conn.weights.len();
        let m = self.cfg.optimizer.max_abs_log_weight;
        let mut rng = crate::seed::rng_for(seed, &[0x5C, 2]);
        let mut best = vec![0.0f32; n];
        let mut trace = Trace::default();
        trace.runs.push(0);
        trace.band_fraction.push(self.trace_fraction(&best)?);
        let mut runs = 0;
        let mut step = 0u64;
        while runs + 2 <= budget {
            let noise = Self::noise(seed, step);
            let cand: Vec<f32> = best
                .iter()
                .map(|&x| (x as f64 + sigma * rng.sample::<f64, _>(StandardNormal)) as f32)
                .map(|x| x.clamp(-m, m))
                .collect();
            if self.loss(&cand, noise)? < self.loss(&best, noise)? {
                best = cand;
            }
            runs += 2;
            step += 1;
            progress(runs);
            if runs % trace_every.max(1) < 2 {
                trace.runs.push(runs);
                trace.band_fraction.push(self.trace_fraction(&best)?);
            }
        }
        Ok((best, trace, runs))
    }
}

/// `log_w` with its entries permuted within each connection group: the same distribution of
/// weights per group, so the group means are unchanged and which synapse has which weight is lost.
pub fn shuffled_within_groups(conn: &Connectome, log_w: &[f32], seed: u64) -> Vec<f32> {
    let groups = conn
        .segments
        .iter()
        .map(|s| s.group as usize)
        .max()
        .map_or(0, |g| g + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for seg in &conn.segments {
        members[seg.group as usize].extend(seg.start..seg.end);
    }
    let mut out = log_w.to_vec();
    let mut rng = crate::seed::rng_for(seed, &[0x5C, 3]);
    for idx in &members {
        let mut vals: Vec<f32> = idx.iter().map(|&i| log_w[i]).collect();
        vals.shuffle(&mut rng);
        for (&i, v) in idx.iter().zip(vals) {
            out[i] = v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffling_keeps_each_groups_values_and_moves_them() {
        let (spec, _) =
            NetworkSpec::load(std::path::Path::new("experiments/hnn_alpha.toml")).unwrap();
        let conn = Connectome::build(&spec);
        let log_w: Vec<f32> = (0..conn.weights.len())
            .map(|i| (i % 97) as f32 / 97.0)
            .collect();
        let s = shuffled_within_groups(&conn, &log_w, 3);
        let mut moved = 0;
        for g in 0..spec.connections.len() {
            let idx: Vec<usize> = conn
                .segments
                .iter()
                .filter(|seg| seg.group as usize == g)
                .flat_map(|seg| seg.start..seg.end)
                .collect();
            let mut a: Vec<f32> = idx.iter().map(|&i| log_w[i]).collect();
            let mut b: Vec<f32> = idx.iter().map(|&i| s[i]).collect();
            moved += idx.iter().filter(|&&i| log_w[i] != s[i]).count();
            a.sort_by(f32::total_cmp);
            b.sort_by(f32::total_cmp);
            assert_eq!(a, b, "group {g}");
        }
        assert!(moved > conn.weights.len() / 2);
    }
}
