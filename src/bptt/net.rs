//! The exact network run forward with saved states, and back-propagated through time chunk by
//! chunk: each chunk is re-run from its saved state with a record of what its backward step needs,
//! then walked back step by step. Adjoints of inputs in flight (spikes on their way through a
//! delay) live in a ring buffer mirroring the forward one.

use super::cells::{CellBackward, StepRecord};
use super::{BpttConfig, SpikeMode};
use crate::error::{Result, SurgeError};
use crate::exact::models::{self, NeuronModel, SpikeRule};
use crate::exact::network::{
    Constant, Drives, Slots, group_bases, initial_voltages, sum as fast_sum, white_noise_rng,
};
use crate::spec::{Connectome, NetworkSpec};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

struct Pop {
    slots: Slots,
    n_channels: usize,
    rule: SpikeRule,
    back: CellBackward,
}

/// An exact network instance (spec with its seed, connectome, weights) ready to run forward and
/// backward.
pub struct ExactNet<'a> {
    spec: &'a NetworkSpec,
    conn: &'a Connectome,
    /// The weight of each synapse (the connectome's, or one being evaluated), as the engine adds it.
    weights: Vec<f64>,
    pops: Vec<Pop>,
    /// Where a synapse of each connection group lands in a ring row: `group_base + target`.
    group_base: Vec<usize>,
    row: usize,
    n_slots: usize,
    steps: usize,
    dt: f64,
    signal_pops: Vec<usize>,
    signal_cells: usize,
    count_from: usize,
    cfg: BpttConfig,
}

/// What a forward run returns.
pub struct Forward {
    /// The mean voltage of the signal populations at the end of every step (the exact engine's
    /// `mean_voltage` signal).
    pub signal: Vec<f64>,
    /// Spikes per population in steps from `count_from` on (soft spikes summed in soft mode).
    pub counts: Vec<f64>,
    /// Spike times (ms) and global cells (hard mode).
    pub spike_times_ms: Vec<f64>,
    pub spike_cells: Vec<u32>,
    checkpoints: Vec<Checkpoint>,
}

/// The state a run restarts from.
#[derive(Clone)]
struct Checkpoint {
    models: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    ref_left: Vec<Vec<u32>>,
    consts: Vec<Constant>,
    noise_rng: Vec<ChaCha8Rng>,
    drives: Drives,
    ring: Vec<f64>,
}

struct Live {
    models: Vec<Box<dyn NeuronModel>>,
    v: Vec<Vec<f64>>,
    ref_left: Vec<Vec<u32>>,
    consts: Vec<Constant>,
    noise_rng: Vec<ChaCha8Rng>,
    drives: Drives,
    ring: Vec<f64>,
}

/// One chunk's record for the backward pass, per population, step after step.
struct Tape {
    v: Vec<Vec<f64>>,
    state: Vec<Vec<f64>>,
    refractory: Vec<Vec<u8>>,
    v_pre: Vec<Vec<f64>>,
    /// Index into `biases` of the constant input in force at each step.
    bias_at: Vec<usize>,
    biases: Vec<Vec<Vec<f64>>>,
}

impl Tape {
    fn new(pops: usize) -> Self {
        Tape {
            v: vec![Vec::new(); pops],
            state: vec![Vec::new(); pops],
            refractory: vec![Vec::new(); pops],
            v_pre: vec![Vec::new(); pops],
            bias_at: Vec::new(),
            biases: Vec::new(),
        }
    }
}

impl<'a> ExactNet<'a> {
    /// `spec` (its seed draws the drive noise and the initial state) on `conn` with `weights` (one
    /// per synapse of `conn`), for `steps` steps; the signal is the mean voltage of `signal_pops`,
    /// spikes are counted from step `count_from`.
    pub fn new(
        spec: &'a NetworkSpec,
        conn: &'a Connectome,
        weights: Vec<f64>,
        signal_pops: Vec<usize>,
        count_from: usize,
        cfg: BpttConfig,
    ) -> Result<Self> {
        let dt = spec.simulation.dt_ms;
        if weights.len() != conn.weights.len() {
            return Err(SurgeError::spec(
                "synapse weights",
                format!(
                    "{} weights for a connectome of {} synapses",
                    weights.len(),
                    conn.weights.len()
                ),
                "give one weight per synapse of the connectome",
            ));
        }
        if !(cfg.surrogate.width_mv > 0.0 && cfg.surrogate.width_mv.is_finite()) {
            return Err(SurgeError::spec(
                "surrogate.width_mv",
                format!("{}", cfg.surrogate.width_mv),
                "give a positive width in mV (1.0 is a common choice)",
            ));
        }
        let mut pops = Vec::new();
        let mut in_base = 0;
        for (pi, p) in spec.populations.iter().enumerate() {
            let back = CellBackward::new(&p.neuron, dt).ok_or_else(|| {
                SurgeError::spec(
                    format!("populations[{pi}] ({}).neuron.model", p.name),
                    format!(
                        "gradients through the exact engine are written for LIF cells, not `{}`",
                        p.neuron.model_name()
                    ),
                    "use lif_current or lif_conductance populations with engine = \"exact\"",
                )
            })?;
            let model = models::build(&p.neuron, p.size, dt);
            pops.push(Pop {
                slots: Slots {
                    offset: conn.pop_offsets[pi],
                    size: p.size,
                    in_base,
                },
                n_channels: model.n_channels(),
                rule: model.spike_rule(),
                back,
            });
            in_base += model.n_channels() * p.size;
        }
        let slots: Vec<Slots> = pops.iter().map(|p| p.slots).collect();
        let group_base = group_bases(spec, &slots);
        let signal_cells = signal_pops.iter().map(|&p| spec.populations[p].size).sum();
        Ok(ExactNet {
            spec,
            conn,
            weights,
            pops,
            group_base,
            row: in_base.max(1),
            n_slots: conn.max_delay_steps() as usize + 2,
            steps: spec.steps(),
            dt,
            signal_pops,
            signal_cells,
            count_from,
            cfg,
        })
    }

    pub fn steps(&self) -> usize {
        self.steps
    }

    fn chunk(&self) -> usize {
        if self.cfg.chunk_steps == 0 {
            self.steps.max(1)
        } else {
            self.cfg.chunk_steps
        }
    }

    fn models(&self) -> Vec<Box<dyn NeuronModel>> {
        self.spec
            .populations
            .iter()
            .map(|p| models::build(&p.neuron, p.size, self.dt))
            .collect()
    }

    fn start(&self) -> Live {
        let seed = self.spec.seed();
        let models = self.models();
        let consts = self
            .pops
            .iter()
            .zip(&models)
            .map(|(p, m)| Constant {
                offset: p.slots.offset,
                size: p.slots.size,
                noise_scale: m.noise_scale(),
                bias: vec![0.0; p.slots.size],
                noise: Vec::new(),
            })
            .collect();
        let slots: Vec<Slots> = self.pops.iter().map(|p| p.slots).collect();
        Live {
            models,
            v: (0..self.pops.len())
                .map(|pi| initial_voltages(self.spec, pi, seed))
                .collect(),
            ref_left: self.pops.iter().map(|p| vec![0; p.slots.size]).collect(),
            consts,
            noise_rng: (0..self.pops.len())
                .map(|pi| white_noise_rng(seed, pi))
                .collect(),
            drives: Drives::build(self.spec, self.conn, &slots, self.dt, seed),
            ring: vec![0.0; self.n_slots * self.row],
        }
    }

    fn save(&self, live: &Live) -> Checkpoint {
        Checkpoint {
            models: live
                .models
                .iter()
                .map(|m| {
                    let mut s = Vec::new();
                    m.save_state(&mut s);
                    s
                })
                .collect(),
            v: live.v.clone(),
            ref_left: live.ref_left.clone(),
            consts: live.consts.clone(),
            noise_rng: live.noise_rng.clone(),
            drives: live.drives.clone(),
            ring: live.ring.clone(),
        }
    }

    fn restore(&self, cp: &Checkpoint) -> Live {
        let mut models = self.models();
        for (m, s) in models.iter_mut().zip(&cp.models) {
            m.load_state(s);
        }
        let cp = cp.clone();
        Live {
            models,
            v: cp.v,
            ref_left: cp.ref_left,
            consts: cp.consts,
            noise_rng: cp.noise_rng,
            drives: cp.drives,
            ring: cp.ring,
        }
    }

    /// Runs the whole window forward, saving a checkpoint at the start of every chunk.
    pub fn forward(&self) -> Result<Forward> {
        let mut live = self.start();
        let mut out = Forward {
            signal: Vec::with_capacity(self.steps),
            counts: vec![0.0; self.pops.len()],
            spike_times_ms: Vec::new(),
            spike_cells: Vec::new(),
            checkpoints: Vec::new(),
        };
        for n in 0..self.steps {
            if n % self.chunk() == 0 {
                out.checkpoints.push(self.save(&live));
            }
            self.step(n, &mut live, &mut out, None)?;
        }
        Ok(out)
    }

    /// One step of the exact engine (its order of operations, so its rounding), recording into
    /// `tape` if given.
    fn step(
        &self,
        n: usize,
        live: &mut Live,
        out: &mut Forward,
        mut tape: Option<&mut Tape>,
    ) -> Result<()> {
        let (t, t_end) = (n as f64 * self.dt, (n + 1) as f64 * self.dt);
        let soft = self.cfg.mode == SpikeMode::Soft;
        let now = (n % self.n_slots) * self.row;
        let changed = live.drives.update_constant(t, self.conn, &mut live.consts);
        if let Some(tp) = tape.as_deref_mut()
            && (changed || tp.biases.is_empty())
        {
            tp.biases
                .push(live.consts.iter().map(|c| c.bias.clone()).collect());
        }
        if let Some(tp) = tape.as_deref_mut() {
            tp.bias_at.push(tp.biases.len() - 1);
        }
        live.drives
            .deliver(n, t, t_end, &mut live.ring[now..now + self.row]);
        let mut fired: Vec<(usize, f64)> = Vec::new();
        for (pi, p) in self.pops.iter().enumerate() {
            let size = p.slots.size;
            let base = now + p.slots.in_base;
            let model = &mut live.models[pi];
            model.receive(&mut live.ring[base..base + p.n_channels * size]);
            let (v, r) = (&mut live.v[pi], &mut live.ref_left[pi]);
            if let Some(tp) = tape.as_deref_mut() {
                if p.back.needs_state() {
                    tp.v[pi].extend_from_slice(v);
                    let mut s = Vec::new();
                    model.save_state(&mut s);
                    tp.state[pi].extend_from_slice(&s);
                }
                tp.refractory[pi].extend(r.iter().map(|&x| u8::from(x != 0)));
            }
            let cst = &live.consts[pi];
            model.integrate(v, r, &cst.bias);
            if !cst.noise.is_empty() {
                for ((v, &r), &sd) in v.iter_mut().zip(r.iter()).zip(&cst.noise) {
                    let xi: f64 = StandardNormal.sample(&mut live.noise_rng[pi]);
                    *v += if r == 0 { sd * xi } else { 0.0 };
                }
            }
            if let Some(tp) = tape.as_deref_mut() {
                tp.v_pre[pi].extend_from_slice(v);
            }
            let rule = p.rule;
            let counted = n >= self.count_from;
            for (i, (v, r)) in v.iter_mut().zip(r.iter_mut()).enumerate() {
                if soft {
                    let s = self.cfg.surrogate.soft(*v - rule.threshold);
                    *v += s * (rule.reset - *v);
                    if s != 0.0 {
                        fired.push((p.slots.offset + i, s));
                    }
                    if counted {
                        out.counts[pi] += s;
                    }
                    continue;
                }
                *r = r.saturating_sub(1);
                if *v >= rule.threshold {
                    *v = rule.reset;
                    *r = rule.refractory_steps;
                    fired.push((p.slots.offset + i, 1.0));
                    out.spike_times_ms.push(t_end);
                    out.spike_cells.push((p.slots.offset + i) as u32);
                    if counted {
                        out.counts[pi] += 1.0;
                    }
                }
            }
            let v_sum = fast_sum(v);
            if !v_sum.is_finite() {
                return Err(SurgeError::Diverged {
                    what: format!(
                        "a membrane potential of population `{}`",
                        self.spec.populations[pi].name
                    ),
                    value: v_sum,
                    t_ms: t_end,
                });
            }
        }
        // In the signal populations' order, as the exact engine sums them.
        let mut sig = 0.0;
        for &pi in &self.signal_pops {
            sig += fast_sum(&live.v[pi]);
        }
        out.signal.push(sig / self.signal_cells.max(1) as f64);
        for &(cell, s) in &fired {
            for seg in &self.conn.segments[self.conn.seg_ptr[cell]..self.conn.seg_ptr[cell + 1]] {
                let slot = (n + 1 + seg.delay_steps as usize) % self.n_slots;
                let buf = &mut live.ring[slot * self.row + self.group_base[seg.group as usize]..];
                let (tg, w) = (
                    &self.conn.targets[seg.start..seg.end],
                    &self.weights[seg.start..seg.end],
                );
                if s == 1.0 {
                    for (&t, &w) in tg.iter().zip(w) {
                        buf[t as usize] += w;
                    }
                } else {
                    for (&t, &w) in tg.iter().zip(w) {
                        buf[t as usize] += w * s;
                    }
                }
            }
        }
        Ok(())
    }

    /// The gradient of a loss with respect to every synapse's weight, given the loss's gradient
    /// with respect to the signal at every step (`d_signal`) and to each population's spike count
    /// (`d_counts`).
    pub fn backward(&self, fwd: &Forward, d_signal: &[f64], d_counts: &[f64]) -> Result<Vec<f64>> {
        let npop = self.pops.len();
        let mut lam_v: Vec<Vec<f64>> = self.pops.iter().map(|p| vec![0.0; p.slots.size]).collect();
        let mut lam_state: Vec<Vec<f64>> = self
            .models()
            .iter()
            .map(|m| {
                let mut s = Vec::new();
                m.save_state(&mut s);
                vec![0.0; s.len()]
            })
            .collect();
        let mut lam_ring = vec![0.0f64; self.n_slots * self.row];
        let mut d_w = vec![0.0f64; self.weights.len()];
        let mut lam_in: Vec<f64> = Vec::new();
        let chunk = self.chunk();
        let soft = self.cfg.mode == SpikeMode::Soft;
        let sur = self.cfg.surrogate;
        let damping = if soft { 1.0 } else { self.cfg.damping };
        for (c, cp) in fwd.checkpoints.iter().enumerate().rev() {
            let (first, end) = (c * chunk, ((c + 1) * chunk).min(self.steps));
            let mut live = self.restore(cp);
            let mut tape = Tape::new(npop);
            let mut scratch = Forward {
                signal: Vec::new(),
                counts: vec![0.0; npop],
                spike_times_ms: Vec::new(),
                spike_cells: Vec::new(),
                checkpoints: Vec::new(),
            };
            for n in first..end {
                self.step(n, &mut live, &mut scratch, Some(&mut tape))?;
            }
            for n in (first..end).rev() {
                let k = n - first;
                let bias = &tape.biases[tape.bias_at[k]];
                for (pi, p) in self.pops.iter().enumerate() {
                    let size = p.slots.size;
                    let lv = &mut lam_v[pi];
                    if self.signal_pops.contains(&pi) {
                        let d = d_signal[n] / self.signal_cells as f64;
                        lv.iter_mut().for_each(|x| *x += d);
                    }
                    let v_pre = &tape.v_pre[pi][k * size..(k + 1) * size];
                    let refr = &tape.refractory[pi][k * size..(k + 1) * size];
                    let d_count = if n >= self.count_from {
                        d_counts[pi]
                    } else {
                        0.0
                    };
                    for i in 0..size {
                        let free = soft || refr[i] == 0;
                        let x = v_pre[i] - p.rule.threshold;
                        let s = if soft {
                            sur.soft(x)
                        } else if x >= 0.0 {
                            1.0
                        } else {
                            0.0
                        };
                        let slope = if free { damping * sur.slope(x) } else { 0.0 };
                        let mut lam_s = d_count;
                        if slope != 0.0 || s != 0.0 {
                            let cell = p.slots.offset + i;
                            let segs = &self.conn.segments
                                [self.conn.seg_ptr[cell]..self.conn.seg_ptr[cell + 1]];
                            for seg in segs {
                                let slot = (n + 1 + seg.delay_steps as usize) % self.n_slots;
                                let buf = &lam_ring
                                    [slot * self.row + self.group_base[seg.group as usize]..];
                                let targets = &self.conn.targets[seg.start..seg.end];
                                let w = &self.weights[seg.start..seg.end];
                                if s != 0.0 {
                                    let dw = &mut d_w[seg.start..seg.end];
                                    for ((&t, &w), dw) in targets.iter().zip(w).zip(dw) {
                                        let l = buf[t as usize];
                                        lam_s += w * l;
                                        *dw += s * l;
                                    }
                                } else {
                                    lam_s += gather_dot(targets, w, buf);
                                }
                            }
                        }
                        let through_reset = if soft || self.cfg.reset_gradient {
                            (p.rule.reset - v_pre[i]) * slope
                        } else {
                            0.0
                        };
                        lv[i] = lv[i] * (1.0 - s + through_reset) + lam_s * slope;
                    }
                    let state_len = lam_state[pi].len();
                    let rec = StepRecord {
                        v: if p.back.needs_state() {
                            &tape.v[pi][k * size..(k + 1) * size]
                        } else {
                            &[]
                        },
                        state: if p.back.needs_state() {
                            &tape.state[pi][k * state_len..(k + 1) * state_len]
                        } else {
                            &[]
                        },
                        refractory: refr,
                        bias: &bias[pi],
                    };
                    lam_in.resize(p.n_channels * size, 0.0);
                    p.back.step_back(&rec, lv, &mut lam_state[pi], &mut lam_in);
                    let at = (n % self.n_slots) * self.row + p.slots.in_base;
                    lam_ring[at..at + lam_in.len()].copy_from_slice(&lam_in);
                }
            }
        }
        Ok(d_w)
    }
}

/// `sum_k w[k] buf[targets[k]]` with four accumulators: a single running sum is bound by the
/// latency of its additions, and this is the backward pass's innermost loop.
fn gather_dot(targets: &[u32], w: &[f64], buf: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (tc, wc) = (targets.chunks_exact(4), w.chunks_exact(4));
    let tail: f64 = tc
        .remainder()
        .iter()
        .zip(wc.remainder())
        .map(|(&t, &w)| w * buf[t as usize])
        .sum();
    for (t, w) in tc.zip(wc) {
        for k in 0..4 {
            acc[k] += w[k] * buf[t[k] as usize];
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + tail
}
