//! What the optimiser descends on: the surrogate network (fused or burn engine) or the exact
//! engine itself, differentiated through time with a surrogate spike derivative ([`crate::bptt`]).
//! Both give the loss of one noise window and its gradient with respect to the group log-gains
//! and, optionally, one log-weight per synapse.

use super::Gains;
use super::engine::SurrogateNetwork;
use super::optimize::{IterationRecord, OptimizeConfig, evaluate, evaluate_with_gradient};
use crate::bptt::{self, BpttConfig};
use crate::error::Result;
use crate::spec::{Connectome, NetworkSpec};
use burn::optim::GradientsParams;
use burn::tensor::Device;

/// The loss of one window, its gradient with respect to the log-gains and (with per-synapse
/// weights) the log-weights.
pub type WindowGradient = (IterationRecord, Vec<f32>, Option<Vec<f32>>);

/// A window's record and the signal's periodogram (Hz, power).
pub type WindowScore = (IterationRecord, (Vec<f64>, Vec<f64>));

/// A differentiable model of the network the optimiser can step on.
pub trait Descent {
    fn spec(&self) -> &NetworkSpec;
    /// Per-synapse log-weights this model takes.
    fn n_synapses(&self) -> usize;
    /// The loss on drive-noise stream `noise` at these parameters, and its gradient.
    fn gradient(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<WindowGradient>;
    /// The loss's record and the signal's periodogram (Hz, power) on stream `noise`.
    fn score(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<WindowScore>;
    /// `conn` (drawn with the final gains) with per-synapse log-weights applied: what the exact
    /// engine re-checks.
    fn apply_synapse_weights(&self, conn: &Connectome, log_w: &[f32]) -> Connectome;
    /// Each per-synapse entry as (presynaptic cell, postsynaptic cell, channel, group).
    fn synapse_table(&self) -> Vec<(usize, usize, String, usize)>;
    /// What the run's metrics call this model.
    fn name(&self) -> &'static str;
}

/// The surrogate network on `device` (autodiff for gradients; `plain`, forward only, for scores).
pub struct OnSurrogate<'a> {
    pub net: &'a SurrogateNetwork,
    pub device: &'a Device,
    pub plain: &'a SurrogateNetwork,
    pub plain_device: &'a Device,
}

fn grad_values(grads: &GradientsParams, id: burn::module::ParamId) -> Option<Vec<f32>> {
    grads
        .get::<1>(id)
        .map(|t| t.into_data().try_to_vec::<f32>().expect("f32"))
}

fn gains(log_gains: &[f32], log_w: Option<&[f32]>, device: &Device) -> Gains {
    match log_w {
        Some(w) => Gains::with_synapses(log_gains, w, device),
        None => Gains::new(log_gains, device),
    }
}

impl Descent for OnSurrogate<'_> {
    fn spec(&self) -> &NetworkSpec {
        &self.net.spec
    }

    fn n_synapses(&self) -> usize {
        self.net.n_synapses()
    }

    fn gradient(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<WindowGradient> {
        let g = gains(log_gains, log_w, self.device);
        let (rec, _, grads) =
            evaluate_with_gradient(self.net, cfg, &g, noise, self.device, &mut |_, _| {});
        let dg = grad_values(&grads, g.log_gain.id).unwrap_or_else(|| vec![0.0; log_gains.len()]);
        let dw = g
            .log_w
            .as_ref()
            .map(|w| grad_values(&grads, w.id).unwrap_or_else(|| vec![0.0; self.n_synapses()]));
        Ok((rec, dg, dw))
    }

    fn score(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<WindowScore> {
        let g = gains(log_gains, log_w, self.plain_device);
        let (_, rec, psd, _) = evaluate(self.plain, cfg, &g, noise, self.plain_device, false);
        Ok((rec, psd))
    }

    fn apply_synapse_weights(&self, conn: &Connectome, log_w: &[f32]) -> Connectome {
        self.net.apply_synapse_weights(conn, log_w)
    }

    fn synapse_table(&self) -> Vec<(usize, usize, String, usize)> {
        self.net.synapse_table()
    }

    fn name(&self) -> &'static str {
        "surrogate"
    }
}

/// The exact engine on one network instance (`conn`, drawn at the spec's own gains); each noise
/// stream seeds the drive noise and the initial state. Per-synapse log-weights are one per synapse
/// of `conn`, in its order.
pub struct OnExact<'a> {
    pub spec: &'a NetworkSpec,
    pub conn: &'a Connectome,
    pub bptt: BpttConfig,
}

impl OnExact<'_> {
    fn run(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<(IterationRecord, bptt::objective::Evaluation)> {
        let mut spec = self.spec.clone();
        spec.simulation.seed = Some(noise);
        let o = &cfg.optimizer;
        let ev = bptt::objective::evaluate(
            &spec,
            self.conn,
            cfg,
            &self.bptt,
            &bptt::objective::Params { log_gains, log_w },
            o.warmup_ms,
            o.window_ms,
        )?;
        let mut total = ev.loss.total;
        if let Some(w) = log_w {
            total += o.synapse_l2 * w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>()
                / w.len().max(1) as f64;
        }
        let rec = IterationRecord {
            iteration: 0,
            loss: total,
            band_score: ev.loss.band_score,
            peak_hz: crate::signal::Psd {
                freqs_hz: ev.freqs_hz.clone(),
                power: ev.loss.power.clone(),
            }
            .peak_hz(2.0, 100.0),
            rates_hz: ev.rates_hz.clone(),
            rate_penalty: ev.loss.rate_penalty,
            log_gains: log_gains.to_vec(),
            seconds: 0.0,
            replay_error_mv: 0.0,
            synapse_log_w_rms: None,
            validation_loss: None,
            validation_band_fraction: None,
            synapse_log_w: None,
            adam: None,
        };
        Ok((rec, ev))
    }
}

impl Descent for OnExact<'_> {
    fn spec(&self) -> &NetworkSpec {
        self.spec
    }

    fn n_synapses(&self) -> usize {
        self.conn.weights.len()
    }

    fn gradient(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<WindowGradient> {
        let (rec, ev) = self.run(cfg, log_gains, log_w, noise)?;
        let dg = ev.d_log_gain.iter().map(|&x| x as f32).collect();
        let dw = log_w.map(|w| {
            let l2 = cfg.optimizer.synapse_l2;
            ev.d_log_w
                .iter()
                .zip(w)
                .map(|(&d, &x)| (d + 2.0 * l2 * x as f64 / w.len() as f64) as f32)
                .collect()
        });
        Ok((rec, dg, dw))
    }

    fn score(
        &self,
        cfg: &OptimizeConfig,
        log_gains: &[f32],
        log_w: Option<&[f32]>,
        noise: u64,
    ) -> Result<WindowScore> {
        let (rec, ev) = self.run(cfg, log_gains, log_w, noise)?;
        Ok((rec, (ev.freqs_hz, ev.loss.power)))
    }

    fn apply_synapse_weights(&self, conn: &Connectome, log_w: &[f32]) -> Connectome {
        let mut c = conn.clone();
        for (w, &l) in c.weights.iter_mut().zip(log_w) {
            *w *= l.exp();
        }
        c
    }

    fn synapse_table(&self) -> Vec<(usize, usize, String, usize)> {
        let mut rows = vec![(0, 0, String::new(), 0); self.conn.weights.len()];
        for pre in 0..self.conn.n_cells {
            for seg in &self.conn.segments[self.conn.seg_ptr[pre]..self.conn.seg_ptr[pre + 1]] {
                let c = &self.spec.connections[seg.group as usize];
                let targets = &self.conn.targets[seg.start..seg.end];
                for (row, &t) in rows[seg.start..seg.end].iter_mut().zip(targets) {
                    *row = (pre, t as usize, c.channel.clone(), seg.group as usize);
                }
            }
        }
        rows
    }

    fn name(&self) -> &'static str {
        "exact"
    }
}
