//! The surrogate network engine: the cells of a `NetworkSpec` replaced by learned surrogates, wired by
//! the same `Connectome` as the exact engine, stepped one bin at a time inside burn's autodiff so that
//! gradients reach the connection gains.
//!
//! Per bin, each cell's input per channel is the weighted sum of the presynaptic spikes that arrive in
//! that bin (the definition the datasets use), plus its Poisson drive. Cells that share a surrogate
//! are stepped as one batch. Spikes are hard in the forward pass and, in the backward pass, carry the
//! gradient of `sigmoid(beta * logit)` (straight-through); `beta` sets how much gradient passes.

use crate::error::{Result, SurgeError};
use crate::seed::{rng_for, stream};
use crate::spec::{Connectome, DriveKind, NetworkSpec};
use crate::surrogate::train::SurrogateMeta;
use crate::surrogate::{Surrogate, SurrogateState};
use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use rand_distr::{Distribution, Poisson};
use std::ops::Range;

/// One log-gain per connection group of the spec (in its order); `gain = exp(log_gain)` multiplies
/// every weight of the group.
#[derive(Module, Debug)]
pub struct Gains {
    pub log_gain: Param<Tensor<1>>,
}

impl Gains {
    pub fn new(values: &[f32], device: &Device) -> Self {
        Gains {
            log_gain: Param::from_tensor(Tensor::from_data(
                TensorData::new(values.to_vec(), [values.len()]),
                device,
            )),
        }
    }
    pub fn values(&self) -> Vec<f32> {
        self.log_gain
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 gains")
    }
}

/// How spikes pass gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpikeMode {
    /// Hard threshold forward, `sigmoid(beta * logit)` backward.
    StraightThrough { beta: f32 },
    /// `sigmoid(beta * logit)` forward and backward (a smooth network, for gradient checks).
    Smooth { beta: f32 },
}

impl SpikeMode {
    fn beta(self) -> f32 {
        match self {
            SpikeMode::StraightThrough { beta } | SpikeMode::Smooth { beta } => beta,
        }
    }
}

/// A surrogate per cell type and the populations it stands for.
pub struct CellType {
    pub name: String,
    pub model: Surrogate,
    pub meta: SurrogateMeta,
    pub populations: Vec<usize>,
}

/// Synapses of one connection group that share a delay, as a dense `[N, N * C]` matrix in engine order:
/// row = presynaptic cell, column = `post * C + channel`.
struct Block {
    group: usize,
    delay_bins: usize,
    matrix: Tensor<2>,
}

/// The wired network, ready to run windows of `bins` bins.
pub struct SurrogateNetwork {
    pub spec: NetworkSpec,
    pub cell_types: Vec<CellType>,
    /// Engine index range of each population (populations of one cell type are contiguous).
    pub pop_range: Vec<Range<usize>>,
    /// Engine index range of each cell type.
    type_range: Vec<Range<usize>>,
    /// Engine index of every global cell.
    engine_of: Vec<usize>,
    n: usize,
    channels: Vec<String>,
    bin_ms: f64,
    blocks: Vec<Block>,
    max_delay: usize,
    drives: Vec<(usize, usize, f64, f64)>, // (engine cell, channel, expected count per bin, weight)
    device: Device,
}

/// What a window leaves: the population signal per bin (mV), spike counts per population (summed over
/// cells and bins, differentiable), and, if asked, hard spikes per bin.
pub struct Run {
    pub signal: Tensor<1>,
    pub pop_spikes: Vec<Tensor<1>>,
    pub raster: Option<Vec<Vec<u32>>>,
}

impl SurrogateNetwork {
    /// Wires `spec` with `conn` for the given cell types. Every population must have exactly one cell
    /// type, whose surrogate's channels equal the population's receptor channels and whose bin width is
    /// shared by all types.
    pub fn new(
        spec: &NetworkSpec,
        conn: &Connectome,
        cell_types: Vec<CellType>,
        device: &Device,
    ) -> Result<Self> {
        let npop = spec.populations.len();
        let mut type_of = vec![None; npop];
        for (t, ct) in cell_types.iter().enumerate() {
            for &p in &ct.populations {
                if type_of[p].replace(t).is_some() {
                    return Err(SurgeError::spec(
                        "cells",
                        format!(
                            "population `{}` has two cell types",
                            spec.populations[p].name
                        ),
                        "list every population under exactly one cell type",
                    ));
                }
            }
        }
        let bin_ms = cell_types.first().map_or(0.5, |c| c.meta.bin_ms);
        let mut channels: Option<Vec<String>> = None;
        for (p, t) in type_of.iter().enumerate() {
            let pop = &spec.populations[p];
            let Some(t) = t else {
                return Err(SurgeError::spec(
                    "cells",
                    format!("population `{}` has no surrogate", pop.name),
                    "list it under a cell type in the [cells] table",
                ));
            };
            let ct = &cell_types[*t];
            let ch = pop.neuron.channel_names();
            if ct.meta.channel_names != ch {
                return Err(SurgeError::spec(
                    format!("cells.{}", ct.name),
                    format!(
                        "the surrogate's channels {:?} differ from population `{}`'s {:?}",
                        ct.meta.channel_names, pop.name, ch
                    ),
                    "train the surrogate on a dataset with the population's receptor channels",
                ));
            }
            if (ct.meta.bin_ms - bin_ms).abs() > 1e-12 {
                return Err(SurgeError::spec(
                    format!("cells.{}", ct.name),
                    format!(
                        "bin {} ms, but another cell type uses {bin_ms} ms",
                        ct.meta.bin_ms
                    ),
                    "use surrogates trained at one bin width",
                ));
            }
            channels.get_or_insert(ch);
        }
        let channels = channels.unwrap_or_default();
        let nc = channels.len();
        // Engine order: cell types in order, their populations in spec order.
        let mut pop_range = vec![0..0; npop];
        let mut type_range = Vec::new();
        let mut engine_of = vec![0usize; conn.n_cells];
        let mut next = 0;
        for t in 0..cell_types.len() {
            let start = next;
            for p in 0..npop {
                if type_of[p] == Some(t) {
                    let lo = conn.pop_offsets[p];
                    let size = conn.pop_offsets[p + 1] - lo;
                    for k in 0..size {
                        engine_of[lo + k] = next + k;
                    }
                    pop_range[p] = next..next + size;
                    next += size;
                }
            }
            type_range.push(start..next);
        }
        let n = next;
        // One dense block per (group, delay in bins).
        let dt = spec.simulation.dt_ms;
        let mut dense: std::collections::BTreeMap<(usize, usize), Vec<f32>> = Default::default();
        for pre in 0..conn.n_cells {
            for seg in &conn.segments[conn.seg_ptr[pre]..conn.seg_ptr[pre + 1]] {
                let delay_bins = ((seg.delay_steps as f64 * dt / bin_ms).round() as usize).max(1);
                let m = dense
                    .entry((seg.group as usize, delay_bins))
                    .or_insert_with(|| vec![0.0; n * n * nc]);
                for s in seg.start..seg.end {
                    let post = engine_of[conn.targets[s] as usize];
                    m[engine_of[pre] * n * nc + post * nc + seg.channel as usize] +=
                        conn.weights[s];
                }
            }
        }
        let max_delay = dense.keys().map(|k| k.1).max().unwrap_or(1);
        let blocks = dense
            .into_iter()
            .map(|((group, delay_bins), m)| Block {
                group,
                delay_bins,
                matrix: Tensor::from_data(TensorData::new(m, [n, n * nc]), device),
            })
            .collect();
        let mut drives = Vec::new();
        for (d, drive) in spec.drives.iter().enumerate() {
            match drive.kind {
                DriveKind::Poisson => {
                    let ch = drive.channel.as_deref().unwrap_or_default();
                    for &cell in &conn.drive_targets[d] {
                        let p = conn.population_of(cell as usize);
                        let c = spec.populations[p]
                            .neuron
                            .channel_index(ch)
                            .ok_or_else(|| {
                                SurgeError::spec(
                                    format!("drives.{}.channel", drive.name),
                                    format!("unknown channel `{ch}`"),
                                    "use a receptor channel of the target population",
                                )
                            })?;
                        let expected =
                            drive.n_sources as f64 * drive.rate_hz.unwrap_or(0.0) * bin_ms / 1000.0;
                        drives.push((
                            engine_of[cell as usize],
                            c,
                            expected,
                            drive.weight.unwrap_or(0.0),
                        ));
                    }
                }
                _ => {
                    return Err(SurgeError::spec(
                        format!("drives.{}.kind", drive.name),
                        "the surrogate engine supports Poisson drives only",
                        "express the drive as a Poisson drive, or compare in the exact engine",
                    ));
                }
            }
        }
        Ok(SurrogateNetwork {
            spec: spec.clone(),
            cell_types,
            pop_range,
            type_range,
            engine_of,
            n,
            channels,
            bin_ms,
            blocks,
            max_delay,
            drives,
            device: device.clone(),
        })
    }

    pub fn bin_ms(&self) -> f64 {
        self.bin_ms
    }
    pub fn n_groups(&self) -> usize {
        self.spec.connections.len()
    }
    pub fn engine_index(&self, global_cell: usize) -> usize {
        self.engine_of[global_cell]
    }

    /// Poisson drive of a window, `[bins, N, C]` flattened per bin, drawn from stream `noise`.
    fn drive_window(&self, bins: usize, noise: u64) -> Vec<Tensor<2>> {
        let (n, nc) = (self.n, self.channels.len());
        let mut rng = rng_for(self.spec.seed(), &[stream::DRIVE_NOISE, noise, 0x5ee]);
        let mut out = Vec::with_capacity(bins);
        let mut buf = vec![0f32; n * nc];
        for _ in 0..bins {
            buf.iter_mut().for_each(|x| *x = 0.0);
            for &(cell, c, lambda, w) in &self.drives {
                if lambda > 0.0 {
                    let k: f64 = Poisson::new(lambda)
                        .expect("positive rate")
                        .sample(&mut rng);
                    buf[cell * nc + c] += (k * w) as f32;
                }
            }
            out.push(Tensor::from_data(
                TensorData::new(buf.clone(), [n, nc]),
                &self.device,
            ));
        }
        out
    }

    /// Runs `bins` bins with the gains, drive noise stream `noise`; `signal_pops` are averaged (mean
    /// somatic voltage, mV) into the population signal.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        gains: &Gains,
        bins: usize,
        noise: u64,
        mode: SpikeMode,
        signal_pops: &[usize],
        record: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Run {
        let (n, nc) = (self.n, self.channels.len());
        let dev = &self.device;
        // Effective coupling per delay: sum over groups of gain_g * block.
        let lg = gains.log_gain.val().exp();
        let mut per_delay: Vec<Option<Tensor<2>>> = vec![None; self.max_delay + 1];
        for b in &self.blocks {
            let g = lg.clone().narrow(0, b.group, 1).reshape([1, 1]);
            let term = b.matrix.clone() * g;
            let slot = &mut per_delay[b.delay_bins];
            *slot = Some(match slot.take() {
                Some(acc) => acc + term,
                None => term,
            });
        }
        let coupling: Vec<(usize, Tensor<2>)> = per_delay
            .into_iter()
            .enumerate()
            .filter_map(|(d, m)| m.map(|m| (d, m)))
            .collect();
        let drive = self.drive_window(bins, noise);
        let mut states: Vec<SurrogateState> = self
            .cell_types
            .iter()
            .zip(&self.type_range)
            .map(|(ct, r)| SurrogateState::new(&ct.model, r.len(), dev))
            .collect();
        let scales: Vec<Tensor<2>> = self
            .cell_types
            .iter()
            .map(|ct| {
                Tensor::from_data(
                    TensorData::new(ct.meta.scaling.input_scale.clone(), [1, nc]),
                    dev,
                )
            })
            .collect();
        // Ring of past spike vectors `[1, N]`, newest last.
        let mut history: Vec<Tensor<2>> = (0..self.max_delay)
            .map(|_| Tensor::zeros([1, n], dev))
            .collect();
        let mut signal = Vec::with_capacity(bins);
        let mut pop_spikes: Vec<Option<Tensor<1>>> = vec![None; self.spec.populations.len()];
        let mut raster = record.then(Vec::new);
        // Previous bin's (soft, hard) spike state per cell type, for onset detection.
        let mut prev: Vec<Option<(Tensor<1>, Tensor<1>)>> = vec![None; self.cell_types.len()];
        for (t, drive_t) in drive.into_iter().enumerate() {
            let mut x = drive_t;
            for (d, m) in &coupling {
                let past = &history[history.len() - d];
                x = x + past.clone().matmul(m.clone()).reshape([n, nc]);
            }
            let mut spikes = Vec::with_capacity(self.cell_types.len());
            let mut volts = Vec::with_capacity(self.cell_types.len());
            for (k, ct) in self.cell_types.iter().enumerate() {
                let r = &self.type_range[k];
                let xi = x.clone().narrow(0, r.start, r.len());
                // The input transform of the datasets: sign(x) ln(1 + |x| / scale).
                let scaled =
                    xi.clone().sign() * (xi.abs() / scales[k].clone()).add_scalar(1.0).log();
                let (v_std, logit) = states[k].step(&ct.model, scaled);
                let logit = logit.sub_scalar(ct.meta.spike_logit_threshold);
                let v = v_std
                    .mul_scalar(ct.meta.scaling.v_std)
                    .add_scalar(ct.meta.scaling.v_mean);
                // A spike is the onset of a run of bins with logit > 0, as `surge eval` counts them:
                // the logit stays high for a few bins around each spike.
                let soft = sigmoid(logit.clone().mul_scalar(mode.beta()));
                let (soft_prev, hard_prev) = prev[k].take().unwrap_or_else(|| {
                    (
                        Tensor::zeros(soft.dims(), dev),
                        Tensor::zeros(soft.dims(), dev),
                    )
                });
                let soft_onset = soft.clone() * soft_prev.neg().add_scalar(1.0);
                let s = match mode {
                    SpikeMode::StraightThrough { .. } => {
                        let hard = logit.greater_elem(0.0).float();
                        let hard_onset = hard.clone() * hard_prev.neg().add_scalar(1.0);
                        prev[k] = Some((soft, hard));
                        hard_onset + soft_onset.clone() - soft_onset.detach()
                    }
                    SpikeMode::Smooth { .. } => {
                        prev[k] = Some((soft.clone(), soft));
                        soft_onset
                    }
                };
                spikes.push(s);
                volts.push(v);
            }
            let s_all = Tensor::cat(spikes, 0);
            let v_all = Tensor::cat(volts, 0);
            let sig = Tensor::cat(
                signal_pops
                    .iter()
                    .map(|&p| {
                        let r = &self.pop_range[p];
                        v_all.clone().narrow(0, r.start, r.len())
                    })
                    .collect(),
                0,
            )
            .mean();
            signal.push(sig);
            for (p, acc) in pop_spikes.iter_mut().enumerate() {
                let r = &self.pop_range[p];
                let c = s_all.clone().narrow(0, r.start, r.len()).sum();
                *acc = Some(match acc.take() {
                    Some(a) => a + c,
                    None => c,
                });
            }
            if let Some(ras) = raster.as_mut() {
                let hard: Vec<f32> = s_all.clone().into_data().try_to_vec().expect("f32 spikes");
                ras.push(
                    hard.iter()
                        .enumerate()
                        .filter(|(_, v)| **v > 0.5)
                        .map(|(i, _)| i as u32)
                        .collect(),
                );
            }
            if self.max_delay > 0 {
                history.remove(0);
                history.push(s_all.reshape([1, n]));
            }
            if (t + 1) % 100 == 0 || t + 1 == bins {
                progress((t + 1) as u64, bins as u64);
            }
        }
        Run {
            signal: Tensor::cat(signal, 0),
            pop_spikes: pop_spikes
                .into_iter()
                .map(|s| s.unwrap_or_else(|| Tensor::zeros([1], dev)))
                .collect(),
            raster,
        }
    }
}
