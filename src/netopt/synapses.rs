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

    /// Separable CMA-ES ([`SepCmaes`]) from 0 with step `sigma0`, for at most `budget` exact runs
    /// (returned: the mean, its trace, the runs spent); the mean is traced every generation whose
    /// run count passes a multiple of `trace_every`. All candidates of a generation share one noise
    /// stream (their ranking is not noise).
    pub fn sep_cmaes(
        &self,
        budget: usize,
        sigma0: f64,
        seed: u64,
        trace_every: usize,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<f32>, Trace, usize)> {
        let n = self.conn.weights.len();
        let mut es = SepCmaes::new(n, sigma0, seed);
        let as_f32 = |m: &[f64]| m.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut trace = Trace::default();
        trace.runs.push(0);
        trace
            .band_fraction
            .push(self.trace_fraction(&as_f32(es.mean()))?);
        let mut runs = 0usize;
        let every = trace_every.max(1);
        while runs + es.lambda() <= budget {
            let noise = Self::noise(seed, es.generation());
            let mut losses = Vec::with_capacity(es.lambda());
            for x in es.ask() {
                losses.push(self.loss(&as_f32(&x), noise)?);
                runs += 1;
                progress(runs);
            }
            es.tell(&losses);
            if runs / every > trace.runs.last().copied().unwrap_or(0) / every {
                trace.runs.push(runs);
                trace
                    .band_fraction
                    .push(self.trace_fraction(&as_f32(es.mean()))?);
            }
        }
        let m = self.cfg.optimizer.max_abs_log_weight;
        let mean = as_f32(es.mean())
            .into_iter()
            .map(|x| x.clamp(-m, m))
            .collect();
        Ok((mean, trace, runs))
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

/// Separable CMA-ES (Ros & Hansen 2008): CMA-ES with a diagonal covariance, whose learning rates
/// are scaled by `(n + 2) / 3`, the variant that stays linear in the dimension. Ask for a
/// generation's candidates, tell their losses (lower is better).
pub struct SepCmaes {
    n: usize,
    lambda: usize,
    weights: Vec<f64>,
    mu_eff: f64,
    c_sigma: f64,
    d_sigma: f64,
    c_c: f64,
    c_1: f64,
    c_mu: f64,
    chi_n: f64,
    mean: Vec<f64>,
    sigma: f64,
    c: Vec<f64>,
    p_sigma: Vec<f64>,
    p_c: Vec<f64>,
    generation: u64,
    rng: rand_chacha::ChaCha8Rng,
    /// The last generation's standard normal draws.
    z: Vec<Vec<f64>>,
}

impl SepCmaes {
    pub fn new(n: usize, sigma0: f64, seed: u64) -> Self {
        let nf = n as f64;
        let lambda = 4 + (3.0 * nf.ln()).floor() as usize;
        let mu = lambda / 2;
        let raw: Vec<f64> = (0..mu)
            .map(|i| (mu as f64 + 0.5).ln() - ((i + 1) as f64).ln())
            .collect();
        let sum: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|x| x / sum).collect();
        let mu_eff = 1.0 / weights.iter().map(|x| x * x).sum::<f64>();
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let d_sigma = 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma;
        let c_c = (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf);
        let sep = (nf + 2.0) / 3.0;
        let c_1 = (sep * 2.0 / ((nf + 1.3).powi(2) + mu_eff)).min(1.0);
        let c_mu = (sep * 2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff))
            .min(1.0 - c_1);
        SepCmaes {
            n,
            lambda,
            weights,
            mu_eff,
            c_sigma,
            d_sigma,
            c_c,
            c_1,
            c_mu,
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
            mean: vec![0.0; n],
            sigma: sigma0,
            c: vec![1.0; n],
            p_sigma: vec![0.0; n],
            p_c: vec![0.0; n],
            generation: 0,
            rng: crate::seed::rng_for(seed, &[0x5C, 1]),
            z: Vec::new(),
        }
    }

    /// Candidates per generation: `4 + floor(3 ln n)`.
    pub fn lambda(&self) -> usize {
        self.lambda
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// This generation's candidates `mean + sigma sqrt(C) z`.
    pub fn ask(&mut self) -> Vec<Vec<f64>> {
        let n = self.n;
        self.z = (0..self.lambda)
            .map(|_| (0..n).map(|_| self.rng.sample(StandardNormal)).collect())
            .collect();
        self.z
            .iter()
            .map(|z| {
                (0..n)
                    .map(|i| self.mean[i] + self.sigma * self.c[i].sqrt() * z[i])
                    .collect()
            })
            .collect()
    }

    /// Updates mean, paths, diagonal covariance and step from the candidates' losses.
    pub fn tell(&mut self, losses: &[f64]) {
        let n = self.n;
        let mut order: Vec<usize> = (0..losses.len()).collect();
        order.sort_by(|&a, &b| losses[a].total_cmp(&losses[b]));
        let best = &order[..self.weights.len()];
        let d: Vec<f64> = self.c.iter().map(|x| x.sqrt()).collect();
        let mut zw = vec![0.0f64; n];
        for (wi, &k) in self.weights.iter().zip(best) {
            for (a, z) in zw.iter_mut().zip(&self.z[k]) {
                *a += wi * z;
            }
        }
        let k_s = (self.c_sigma * (2.0 - self.c_sigma) * self.mu_eff).sqrt();
        for (p, z) in self.p_sigma.iter_mut().zip(&zw) {
            *p = (1.0 - self.c_sigma) * *p + k_s * z;
        }
        let norm_ps = self.p_sigma.iter().map(|x| x * x).sum::<f64>().sqrt();
        let h_sigma = norm_ps
            / (1.0 - (1.0 - self.c_sigma).powi(2 * (self.generation as i32 + 1))).sqrt()
            < (1.4 + 2.0 / (n as f64 + 1.0)) * self.chi_n;
        let hs = if h_sigma { 1.0 } else { 0.0 };
        let k_c = hs * (self.c_c * (2.0 - self.c_c) * self.mu_eff).sqrt();
        for i in 0..n {
            let yw = d[i] * zw[i];
            self.mean[i] += self.sigma * yw;
            self.p_c[i] = (1.0 - self.c_c) * self.p_c[i] + k_c * yw;
            let rank_mu: f64 = self
                .weights
                .iter()
                .zip(best)
                .map(|(wi, &k)| wi * (d[i] * self.z[k][i]).powi(2))
                .sum();
            self.c[i] = (1.0 - self.c_1 - self.c_mu) * self.c[i]
                + self.c_1
                    * (self.p_c[i] * self.p_c[i]
                        + (1.0 - hs) * self.c_c * (2.0 - self.c_c) * self.c[i])
                + self.c_mu * rank_mu;
        }
        self.sigma *= ((self.c_sigma / self.d_sigma) * (norm_ps / self.chi_n - 1.0)).exp();
        self.generation += 1;
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

    /// On a separable ill-conditioned ellipsoid (axis scales 1 to 1e3) in 30 dimensions, separable
    /// CMA-ES converges to the optimum and its diagonal learns the scales (more than 100x apart).
    #[test]
    fn separable_cma_es_solves_an_ill_conditioned_ellipsoid() {
        let n = 30;
        let f = |x: &[f64]| -> f64 {
            x.iter()
                .enumerate()
                .map(|(i, &v)| 1e3f64.powf(i as f64 / (n - 1) as f64).powi(2) * (v - 1.0).powi(2))
                .sum()
        };
        let mut es = SepCmaes::new(n, 0.5, 7);
        let mut evals = 0;
        while evals < 20_000 && f(es.mean()) > 1e-8 {
            let xs = es.ask();
            let losses: Vec<f64> = xs.iter().map(|x| f(x)).collect();
            evals += xs.len();
            es.tell(&losses);
        }
        assert!(f(es.mean()) < 1e-8, "f {} after {evals}", f(es.mean()));
        let spread: Vec<f64> = es.c.iter().map(|c| c.sqrt()).collect();
        assert!(
            spread[0] > 100.0 * spread[n - 1],
            "scales not learned: {spread:?}"
        );
    }

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
