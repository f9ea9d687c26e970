//! The surrogate network engine: the cells of a `NetworkSpec` replaced by learned surrogates, wired by
//! the same `Connectome` as the exact engine, stepped one bin at a time inside burn's autodiff so that
//! gradients reach the connection gains.
//!
//! Per bin, each cell's input per channel is the weighted sum of the presynaptic spikes that arrive in
//! that bin (the definition the datasets use), plus its Poisson drive. Cells that share a surrogate
//! are stepped as one batch. Spikes are hard in the forward pass and, in the backward pass, carry the
//! gradient of `sigmoid(beta * logit)` (straight-through); `beta` sets how much gradient passes.

use super::fused::{FusedNet, FusedState, LinkSource, TypeSource};
use crate::error::{Result, SurgeError};
use crate::seed::{rng_for, stream};
use crate::spec::{Connectome, DriveKind, NetworkSpec};
use crate::surrogate::cpu::kernels::onset_tensor;
use crate::surrogate::train::{Scaling, SurrogateMeta};
use crate::surrogate::{Surrogate, SurrogateState};
use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use rand_distr::{Distribution, Poisson};
use std::ops::Range;

/// One log-gain per connection group of the spec (in its order); `gain = exp(log_gain)` multiplies
/// every weight of the group. Optionally one log-weight per synapse as well
/// ([`SurrogateNetwork::n_synapses`] of them, in its order), multiplying that synapse's weight.
#[derive(Module, Debug)]
pub struct Gains {
    pub log_gain: Param<Tensor<1>>,
    pub log_w: Option<Param<Tensor<1>>>,
}

impl Gains {
    pub fn new(values: &[f32], device: &Device) -> Self {
        Gains {
            log_gain: Param::from_tensor(Tensor::from_data(
                TensorData::new(values.to_vec(), [values.len()]),
                device,
            )),
            log_w: None,
        }
    }
    /// Group log-gains and per-synapse log-weights.
    pub fn with_synapses(values: &[f32], log_w: &[f32], device: &Device) -> Self {
        let mut g = Gains::new(values, device);
        g.log_w = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(log_w.to_vec(), [log_w.len()]),
            device,
        )));
        g
    }
    pub fn synapse_values(&self) -> Option<Vec<f32>> {
        self.log_w.as_ref().map(|w| {
            w.val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32 weights")
        })
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
    pub(crate) fn beta(self) -> f32 {
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

impl CellType {
    /// The datasets' input scale `[1, C]` on `device`.
    fn input_scale(&self, device: &Device) -> Tensor<2> {
        let s = &self.meta.scaling.input_scale;
        Tensor::from_data(TensorData::new(s.clone(), [1, s.len()]), device)
    }
}

/// All synapses that share a delay, gathered so that one matrix product serves every connection group
/// and the gains never touch a large matrix (their gradient would otherwise be an `[N, N * C]` outer
/// product per bin). Column k of `weights` is one (group, postsynaptic cell, channel) triple.
struct Link {
    delay_bins: usize,
    /// `[N, K]`: presynaptic cell x triple, the summed synaptic weights; a constant.
    weights: Tensor<2>,
    /// `[K]`: the connection group of each triple (selects its gain).
    group: Tensor<1, Int>,
    /// `[K]`: where each triple lands in the flattened `[N * C]` input (`post * C + channel`).
    target: Tensor<1, Int>,
    group_host: Vec<usize>,
    target_host: Vec<usize>,
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
    links: Vec<Link>,
    /// Each cell type's input scale `[1, C]`, made once instead of in every bin.
    input_scales: Vec<Tensor<2>>,
    max_delay: usize,
    drives: Vec<(usize, usize, f64, f64)>, // (engine cell, channel, expected count per bin, weight)
    device: Device,
    /// The same network on plain CPU buffers (see [`super::fused`]); `None` for the burn engine.
    fused: Option<std::sync::Arc<FusedNet>>,
    /// The synapses a per-synapse log-weight acts on: (link, presynaptic engine cell, column). Contacts
    /// of one cell onto the same (cell, channel) through the same group and delay count as one.
    synapses: Vec<(usize, usize, usize)>,
    /// For every synapse of the connectome, its entry in `synapses`.
    synapse_of: Vec<u32>,
}

/// Which implementation back-propagates through the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Plain CPU buffers and a hand-written backward pass: the fast path on the CPU.
    Fused,
    /// burn tensors and autodiff on the network's device: any backend, GPUs included.
    Burn,
}

/// What a window leaves: the population signal per bin (mV), spike counts per population (summed over
/// cells and bins), the same counts carrying the gradient of the expected counts (`pop_expected`:
/// the onsets of the spike probability `sigmoid((logit - threshold) / width)`, one calibrated logit
/// width per unit whatever the surrogate's beta; a silent population keeps a gradient that says how
/// to wake it), and, if asked, hard spikes per bin.
pub struct Run {
    pub signal: Tensor<1>,
    pub pop_spikes: Vec<Tensor<1>>,
    pub pop_expected: Vec<Tensor<1>>,
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
            let neuron = serde_json::to_value(&pop.neuron).expect("a neuron serialises");
            // A checkpoint that records no neuron (built by hand, not trained) cannot be checked.
            if !ct.meta.neuron_model.is_null() && neuron != ct.meta.neuron_model {
                let differ: Vec<String> =
                    match (neuron.as_object(), ct.meta.neuron_model.as_object()) {
                        (Some(a), Some(b)) => a
                            .iter()
                            .filter(|(k, v)| b.get(*k) != Some(*v))
                            .map(|(k, v)| {
                                format!(
                                    "{k} = {v} (surrogate: {})",
                                    b.get(k).unwrap_or(&serde_json::Value::Null)
                                )
                            })
                            .collect(),
                        _ => vec![format!("{neuron} (surrogate: {})", ct.meta.neuron_model)],
                    };
                return Err(SurgeError::spec(
                    format!("cells.{}", ct.name),
                    format!(
                        "population `{}` is not the neuron the surrogate learned: {}",
                        pop.name,
                        differ.join(", ")
                    ),
                    "give the population the surrogate's parameters, or train a surrogate of this neuron (`surge gen`, `surge train`)",
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
        // Per delay (in bins): one column per (group, post cell, channel) that some synapse reaches.
        let dt = spec.simulation.dt_ms;
        type Triple = (usize, usize, usize); // (group, engine post, channel)
        // Per triple: (presynaptic engine cell, weight, synapse index in the connectome).
        type Columns = std::collections::BTreeMap<Triple, Vec<(usize, f32, usize)>>;
        let mut per_delay: std::collections::BTreeMap<usize, Columns> = Default::default();
        for pre in 0..conn.n_cells {
            for seg in &conn.segments[conn.seg_ptr[pre]..conn.seg_ptr[pre + 1]] {
                let delay_bins = ((seg.delay_steps as f64 * dt / bin_ms).round() as usize).max(1);
                let cols = per_delay.entry(delay_bins).or_default();
                for s in seg.start..seg.end {
                    let post = engine_of[conn.targets[s] as usize];
                    cols.entry((seg.group as usize, post, seg.channel as usize))
                        .or_default()
                        .push((engine_of[pre], conn.weights[s], s));
                }
            }
        }
        let max_delay = per_delay.keys().copied().max().unwrap_or(1);
        let mut synapses = Vec::new();
        let mut synapse_of = vec![0u32; conn.targets.len()];
        let sources: Vec<LinkSource> = per_delay
            .into_iter()
            .enumerate()
            .map(|(link, (delay_bins, cols))| {
                let k = cols.len();
                let mut w = vec![0f32; n * k];
                let mut group = Vec::with_capacity(k);
                let mut target = Vec::with_capacity(k);
                for (col, ((g, post, c), syn)) in cols.into_iter().enumerate() {
                    group.push(g);
                    target.push(post * nc + c);
                    let mut entry_of_pre = std::collections::BTreeMap::new();
                    for (pre, weight, s) in syn {
                        w[pre * k + col] += weight;
                        let e = *entry_of_pre.entry(pre).or_insert_with(|| {
                            synapses.push((link, pre, col));
                            synapses.len() - 1
                        });
                        synapse_of[s] = e as u32;
                    }
                }
                (delay_bins, w, group, target)
            })
            .collect();
        let links = sources
            .iter()
            .map(|(delay_bins, w, group, target)| {
                let k = group.len();
                let ints = |v: &[usize]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
                Link {
                    delay_bins: *delay_bins,
                    weights: Tensor::from_data(TensorData::new(w.clone(), [n, k]), device),
                    group: Tensor::from_data(TensorData::new(ints(group), [k]), device),
                    target: Tensor::from_data(TensorData::new(ints(target), [k]), device),
                    group_host: group.clone(),
                    target_host: target.clone(),
                }
            })
            .collect();
        // The fused engine serves the CPU backend by default; other backends keep burn.
        let fused = (device.clone().inner() == Device::flex()).then(|| {
            let types: Vec<TypeSource> = cell_types
                .iter()
                .zip(&type_range)
                .map(|(ct, r)| TypeSource {
                    range: r.clone(),
                    model: &ct.model,
                    meta: &ct.meta,
                })
                .collect();
            std::sync::Arc::new(FusedNet::new(
                &types,
                sources,
                &synapses,
                n,
                nc,
                max_delay,
                spec.connections.len(),
            ))
        });
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
        let input_scales = cell_types.iter().map(|c| c.input_scale(device)).collect();
        Ok(SurrogateNetwork {
            input_scales,
            spec: spec.clone(),
            cell_types,
            pop_range,
            type_range,
            engine_of,
            n,
            channels,
            bin_ms,
            links,
            max_delay,
            drives,
            device: device.clone(),
            fused,
            synapses,
            synapse_of,
        })
    }

    /// Synapses a per-synapse log-weight can act on (see [`Gains::with_synapses`]).
    pub fn n_synapses(&self) -> usize {
        self.synapses.len()
    }

    /// Each synapse entry as (presynaptic global cell, postsynaptic global cell, channel name, group),
    /// in the order of the per-synapse log-weights.
    pub fn synapse_table(&self) -> Vec<(usize, usize, String, usize)> {
        let mut global_of = vec![0usize; self.n];
        for (g, &e) in self.engine_of.iter().enumerate() {
            global_of[e] = g;
        }
        let nc = self.channels.len();
        self.synapses
            .iter()
            .map(|&(link, pre, col)| {
                let l = &self.links[link];
                let group = l.group_host[col];
                let t = l.target_host[col];
                (
                    global_of[pre],
                    global_of[t / nc],
                    self.channels[t % nc].clone(),
                    group,
                )
            })
            .collect()
    }

    /// `conn` (the connectome this network was wired from, with any gains) with each synapse's weight
    /// multiplied by `exp(log_w)` of its entry: the exact engine's view of per-synapse weights.
    pub fn apply_synapse_weights(&self, conn: &Connectome, log_w: &[f32]) -> Connectome {
        let mut c = conn.clone();
        for (w, &e) in c.weights.iter_mut().zip(&self.synapse_of) {
            *w *= log_w[e as usize].exp();
        }
        c
    }

    /// Per-synapse log-weights (this network's entries) as one log-weight per synapse of `conn`, in
    /// its order: what [`SurrogateNetwork::apply_synapse_weights`] multiplies each weight by.
    pub fn log_w_per_synapse(&self, log_w: &[f32]) -> Vec<f32> {
        self.synapse_of.iter().map(|&e| log_w[e as usize]).collect()
    }

    /// Each link's weights `[N, K]` for a window: the connectome's, times `exp(log_w)` per synapse.
    fn link_weights(&self, gains: &Gains) -> Vec<Tensor<2>> {
        let Some(log_w) = gains.synapse_values() else {
            return self.links.iter().map(|l| l.weights.clone()).collect();
        };
        let mut mult: Vec<Vec<f32>> = self
            .links
            .iter()
            .map(|l| vec![1f32; self.n * l.group_host.len()])
            .collect();
        for (&(link, pre, col), u) in self.synapses.iter().zip(&log_w) {
            let k = self.links[link].group_host.len();
            mult[link][pre * k + col] = u.exp();
        }
        self.links
            .iter()
            .zip(mult)
            .map(|(l, m)| {
                let k = l.group_host.len();
                l.weights.clone()
                    * Tensor::from_data(TensorData::new(m, [self.n, k]), &l.weights.device())
            })
            .collect()
    }

    /// The implementation [`SurrogateNetwork::run_with_gradient`] uses.
    pub fn engine(&self) -> Engine {
        if self.fused.is_some() {
            Engine::Fused
        } else {
            Engine::Burn
        }
    }

    /// Chooses the implementation; the fused one needs the CPU (Flex) backend.
    pub fn set_engine(&mut self, engine: Engine) -> Result<()> {
        match engine {
            Engine::Burn => self.fused = None,
            Engine::Fused if self.fused.is_none() => {
                if self.device.clone().inner() != Device::flex() {
                    return Err(SurgeError::spec(
                        "optimizer.engine",
                        "the fused engine runs on the CPU (flex) backend only",
                        "use engine = \"burn\" with this backend, or --backend flex",
                    ));
                }
                let types: Vec<TypeSource> = self
                    .cell_types
                    .iter()
                    .zip(&self.type_range)
                    .map(|(ct, r)| TypeSource {
                        range: r.clone(),
                        model: &ct.model,
                        meta: &ct.meta,
                    })
                    .collect();
                let sources = self
                    .links
                    .iter()
                    .map(|l| {
                        let w = l
                            .weights
                            .clone()
                            .into_data()
                            .try_to_vec::<f32>()
                            .expect("f32");
                        (l.delay_bins, w, l.group_host.clone(), l.target_host.clone())
                    })
                    .collect();
                self.fused = Some(std::sync::Arc::new(FusedNet::new(
                    &types,
                    sources,
                    &self.synapses,
                    self.n,
                    self.channels.len(),
                    self.max_delay,
                    self.spec.connections.len(),
                )));
            }
            Engine::Fused => {}
        }
        Ok(())
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

    /// Poisson drive of a window, `[N * C]` per bin, drawn from stream `noise`.
    fn drive_values(&self, bins: usize, noise: u64) -> Vec<Vec<f32>> {
        let (n, nc) = (self.n, self.channels.len());
        let mut rng = rng_for(self.spec.seed(), &[stream::DRIVE_NOISE, noise, 0x5ee]);
        (0..bins)
            .map(|_| {
                let mut buf = vec![0f32; n * nc];
                for &(cell, c, lambda, w) in &self.drives {
                    if lambda > 0.0 {
                        let k: f64 = Poisson::new(lambda)
                            .expect("positive rate")
                            .sample(&mut rng);
                        buf[cell * nc + c] += (k * w) as f32;
                    }
                }
                buf
            })
            .collect()
    }

    /// The drive of [`SurrogateNetwork::drive_values`] as `[N, C]` tensors.
    fn drive_window(&self, bins: usize, noise: u64) -> Vec<Tensor<2>> {
        let (n, nc) = (self.n, self.channels.len());
        self.drive_values(bins, noise)
            .into_iter()
            .map(|b| Tensor::from_data(TensorData::new(b, [n, nc]), &self.device))
            .collect()
    }

    /// The same network on the plain (non-autodiff) device: a forward pass there builds no graph.
    fn plain_twin(&self) -> SurrogateNetwork {
        SurrogateNetwork {
            spec: self.spec.clone(),
            cell_types: self
                .cell_types
                .iter()
                .map(|ct| CellType {
                    name: ct.name.clone(),
                    model: ct.model.valid(),
                    meta: ct.meta.clone(),
                    populations: ct.populations.clone(),
                })
                .collect(),
            pop_range: self.pop_range.clone(),
            type_range: self.type_range.clone(),
            engine_of: self.engine_of.clone(),
            n: self.n,
            channels: self.channels.clone(),
            bin_ms: self.bin_ms,
            links: self
                .links
                .iter()
                .map(|l| Link {
                    delay_bins: l.delay_bins,
                    weights: l.weights.clone().inner(),
                    group: l.group.clone().inner(),
                    target: l.target.clone().inner(),
                    group_host: l.group_host.clone(),
                    target_host: l.target_host.clone(),
                })
                .collect(),
            input_scales: self
                .input_scales
                .iter()
                .map(|t| t.clone().inner())
                .collect(),
            max_delay: self.max_delay,
            drives: self.drives.clone(),
            device: self.device.clone().inner(),
            fused: None,
            synapses: self.synapses.clone(),
            synapse_of: self.synapse_of.clone(),
        }
    }

    /// Each link's (gain per column `[1, K]`, weights `[N, K]`) for a window.
    fn coupling(&self, gains: &Gains, log_gain: Tensor<1>) -> Vec<(Tensor<2>, Tensor<2>)> {
        self.link_gains(log_gain)
            .into_iter()
            .zip(self.link_weights(gains))
            .collect()
    }

    /// Each link's gain per column `[1, K]`, gathered once per window from the log-gains.
    fn link_gains(&self, log_gain: Tensor<1>) -> Vec<Tensor<2>> {
        let gain = log_gain.exp();
        self.links
            .iter()
            .map(|l| {
                let k = l.group.dims()[0];
                gain.clone().select(0, l.group.clone()).reshape([1, k])
            })
            .collect()
    }

    /// The network at rest: zero input history, zero LSTM state, no spikes in flight.
    fn rest(&self) -> NetState {
        let dev = &self.device;
        NetState {
            cells: self
                .cell_types
                .iter()
                .zip(&self.type_range)
                .map(|(ct, r)| SurrogateState::new(&ct.model, r.len(), dev))
                .collect(),
            history: (0..self.max_delay)
                .map(|_| Tensor::zeros([1, self.n], dev))
                .collect(),
            prev: self
                .type_range
                .iter()
                .map(|r| {
                    (
                        Tensor::zeros([r.len()], dev),
                        Tensor::zeros([r.len()], dev),
                        Tensor::zeros([r.len()], dev),
                    )
                })
                .collect(),
        }
    }

    /// `[N]` weights that turn the cells' voltages into the population signal (their mean over the
    /// cells of `signal_pops`).
    fn signal_weights(&self, signal_pops: &[usize]) -> Tensor<1> {
        let w = self.signal_weight_values(signal_pops);
        Tensor::from_data(TensorData::new(w, [self.n]), &self.device)
    }

    fn signal_weight_values(&self, signal_pops: &[usize]) -> Vec<f32> {
        let mut w = vec![0f32; self.n];
        let cells: usize = signal_pops.iter().map(|&p| self.pop_range[p].len()).sum();
        for &p in signal_pops {
            for i in self.pop_range[p].clone() {
                w[i] = 1.0 / cells.max(1) as f32;
            }
        }
        w
    }

    /// Advances the network one bin: returns the population signal `[1]` (mV), the spikes `[N]` and
    /// the spikes as counted `[N]` (see [`cell_step`]).
    fn step(
        &self,
        st: &mut NetState,
        drive: Tensor<2>,
        link: &[(Tensor<2>, Tensor<2>)],
        mode: SpikeMode,
        signal_w: &Tensor<1>,
    ) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let (n, nc) = (self.n, self.channels.len());
        let mut x = drive.reshape([n * nc]);
        for (l, (g, w)) in self.links.iter().zip(link) {
            let past = &st.history[st.history.len() - l.delay_bins];
            let k = g.dims()[1];
            let y = past.clone().matmul(w.clone()) * g.clone();
            x = x.select_assign(0, l.target.clone(), y.reshape([k]), IndexingUpdateOp::Add);
        }
        let x = x.reshape([n, nc]);
        let results: Vec<(Tensor<1>, Tensor<1>, Tensor<1>)> = self
            .cell_types
            .iter()
            .zip(&self.type_range)
            .zip(&self.input_scales)
            .zip(st.cells.iter_mut().zip(st.prev.iter_mut()))
            .map(|(((ct, r), scale), (cell, prev))| {
                let xi = x.clone().narrow(0, r.start, r.len());
                cell_step(ct, cell, prev, xi, scale.clone(), mode)
            })
            .collect();
        let mut spikes = Vec::with_capacity(results.len());
        let mut volts = Vec::with_capacity(results.len());
        let mut onsets = Vec::with_capacity(results.len());
        for (s, v, e) in results {
            spikes.push(s);
            volts.push(v);
            onsets.push(e);
        }
        let s_all = Tensor::cat(spikes, 0);
        let sig = (Tensor::cat(volts, 0) * signal_w.clone()).sum();
        if self.max_delay > 0 {
            st.history.remove(0);
            st.history.push(s_all.clone().reshape([1, n]));
        }
        (sig, s_all, Tensor::cat(onsets, 0))
    }

    /// Spikes per population `[1]` each, from spikes summed per cell `[N]`.
    fn per_population(&self, per_cell: Tensor<1>) -> Vec<Tensor<1>> {
        self.pop_range
            .iter()
            .map(|r| per_cell.clone().narrow(0, r.start, r.len()).sum())
            .collect()
    }

    /// Runs `bins` bins with the gains, drive noise stream `noise`; `signal_pops` are averaged (mean
    /// somatic voltage, mV) into the population signal. On an autodiff device the whole window is one
    /// graph; [`SurrogateNetwork::run_with_gradient`] back-propagates through long windows in pieces.
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
        // The fused engine serves forward-only runs on the plain device (on an autodiff device the
        // caller wants burn's graph).
        if let Some(f) = &self.fused
            && !self.device.is_autodiff()
        {
            let w = self.fused_window(
                f,
                gains,
                bins,
                noise,
                mode,
                signal_pops,
                200,
                record,
                &mut |done| progress(done, bins as u64),
            );
            let dev = &self.device;
            let per_pop = |per_cell: &[f64]| -> Vec<Tensor<1>> {
                self.pop_range
                    .iter()
                    .map(|r| {
                        let c = per_cell[r.clone()].iter().sum::<f64>() as f32;
                        Tensor::from_data(TensorData::new(vec![c], [1]), dev)
                    })
                    .collect()
            };
            return Run {
                signal: Tensor::from_data(TensorData::new(w.signal, [bins]), dev),
                pop_spikes: per_pop(&w.per_cell),
                pop_expected: per_pop(&w.per_cell),
                raster: w.raster,
            };
        }
        let link = self.coupling(gains, gains.log_gain.val());
        let signal_w = self.signal_weights(signal_pops);
        let (signal, total, expected, raster) = self.simulate(
            &mut self.rest(),
            self.drive_window(bins, noise).into_iter(),
            &link,
            mode,
            &signal_w,
            record,
            &mut |t, _| {
                if t > 0 && t % 100 == 0 {
                    progress(t as u64, bins as u64);
                }
            },
        );
        progress(bins as u64, bins as u64);
        Run {
            signal: Tensor::cat(signal, 0),
            pop_spikes: self.per_population(total),
            pop_expected: self.per_population(expected),
            raster,
        }
    }

    /// Steps `st` through `drives` (one `[N, C]` per bin): returns the signal of every bin, the spikes
    /// as counted (see [`cell_step`]) summed per cell and, if `record`, the raster. `at_bin(t, st)` sees the
    /// state before bin `t`.
    #[allow(clippy::too_many_arguments)]
    fn simulate(
        &self,
        st: &mut NetState,
        drives: impl Iterator<Item = Tensor<2>>,
        link: &[(Tensor<2>, Tensor<2>)],
        mode: SpikeMode,
        signal_w: &Tensor<1>,
        record: bool,
        at_bin: &mut dyn FnMut(usize, &NetState),
    ) -> (Vec<Tensor<1>>, Tensor<1>, Tensor<1>, Option<Vec<Vec<u32>>>) {
        let mut signal = Vec::new();
        let mut total = Tensor::<1>::zeros([self.n], &self.device);
        let mut expected = Tensor::<1>::zeros([self.n], &self.device);
        let mut raster = record.then(Vec::new);
        for (t, drive) in drives.enumerate() {
            at_bin(t, st);
            let (sig, s, e) = self.step(st, drive, link, mode, signal_w);
            signal.push(sig);
            if let Some(ras) = raster.as_mut() {
                ras.push(spike_indices(&s));
            }
            total = total + s;
            expected = expected + e;
        }
        (signal, total, expected, raster)
    }

    /// Runs a window and back-propagates `loss(signal, spike counts per population, the same as values)`
    /// to the log-gains through time, `chunk_bins` bins at a time (0: the whole window as one graph).
    /// The counts carry the expected counts' gradient (see [`Run`]).
    ///
    /// Why in pieces: burn 0.22's autodiff spends time quadratic in the size of one graph when it
    /// prepares a backward pass, and the graph of a window holds every bin's activations. So the
    /// window first runs without a graph, keeping the network state at every chunk boundary; the
    /// loss is differentiated with respect to the signal and the spike counts; then each chunk, from
    /// the last, is run again from its saved state with that state as gradient leaves, and
    /// back-propagated with the gradient that arrives at its end from the chunks after it. The
    /// result is the gradient of the whole window (the same numbers up to float rounding), with
    /// memory for one chunk's graph.
    #[allow(clippy::too_many_arguments)]
    pub fn run_with_gradient(
        &self,
        gains: &Gains,
        bins: usize,
        noise: u64,
        mode: SpikeMode,
        signal_pops: &[usize],
        chunk_bins: usize,
        record: bool,
        loss: &mut BurnLoss<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> GradientRun {
        if let Some(f) = &self.fused {
            return self.run_with_gradient_fused(
                f,
                gains,
                bins,
                noise,
                mode,
                signal_pops,
                chunk_bins,
                record,
                WindowLoss::Burn(loss),
                progress,
            );
        }
        assert!(
            gains.log_w.is_none(),
            "per-synapse weights are differentiated by the fused engine only"
        );
        if chunk_bins == 0 || chunk_bins >= bins {
            let run = self.run(gains, bins, noise, mode, signal_pops, record, progress);
            let signal_values = values(&run.signal);
            let counts: Vec<f32> = run.pop_spikes.iter().map(|t| values(t)[0]).collect();
            let l = loss(run.signal, run.pop_expected.clone(), &counts);
            let grads = GradientsParams::from_grads(l.backward(), gains);
            return GradientRun {
                loss: l,
                grads,
                signal: signal_values,
                pop_spikes: counts,
                raster: run.raster,
                replay_error_mv: 0.0,
            };
        }
        let dev = &self.device;
        let plain = self.plain_twin();
        let n_chunks = bins.div_ceil(chunk_bins);
        let total_work = (2 * bins) as u64;
        // Forward on the plain device: the signal, the spike counts and the state at each chunk start.
        let drive = plain.drive_window(bins, noise);
        let plain_w = plain.signal_weights(signal_pops);
        let link = plain.coupling(gains, gains.log_gain.val().inner());
        let mut starts = Vec::with_capacity(n_chunks);
        let (signal, total, expected, raster) = plain.simulate(
            &mut plain.rest(),
            drive.iter().cloned(),
            &link,
            mode,
            &plain_w,
            record,
            &mut |t, st| {
                if t % chunk_bins == 0 {
                    starts.push(st.tensors());
                }
                if t > 0 && t % 100 == 0 {
                    progress(t as u64, total_work);
                }
            },
        );
        let signal_w = self.signal_weights(signal_pops);
        // The loss and its gradient with respect to the signal and the counts.
        let signal_leaf = Tensor::cat(signal, 0).autodiff().require_grad();
        let count_leaves: Vec<Tensor<1>> = plain
            .per_population(expected)
            .into_iter()
            .map(|c| c.autodiff().require_grad())
            .collect();
        let signal_values = values(&signal_leaf);
        let pop_spikes: Vec<f32> = plain
            .per_population(total)
            .iter()
            .map(|t| values(t)[0])
            .collect();
        let l = loss(signal_leaf.clone(), count_leaves.clone(), &pop_spikes);
        let mut g = l.backward();
        let g_signal = grad_or_zeros(&signal_leaf, &g, dev);
        let g_count: Vec<Tensor<1>> = count_leaves
            .iter()
            .map(|c| grad_or_zeros(c, &g, dev))
            .collect();
        // The per-cell gradient of the expected counts: each cell counts toward its population.
        let mut g_cell = Tensor::<1>::zeros([self.n], dev);
        for (r, gc) in self.pop_range.iter().zip(&g_count) {
            let ones = Tensor::<1>::ones([r.len()], dev) * gc.clone();
            g_cell = g_cell.slice_assign([r.clone()], ones);
        }
        let mut g_gain = gains.log_gain.val().grad_remove(&mut g);
        // Backward through the chunks, last first.
        let mut g_end: Option<Vec<Tensor<2>>> = None;
        let mut done = bins as u64;
        let mut replay_error_mv = 0f32;
        for (c, start) in starts.into_iter().enumerate().rev() {
            let lo = c * chunk_bins;
            let hi = (lo + chunk_bins).min(bins);
            let leaves: Vec<Tensor<2>> = start
                .into_iter()
                .map(|t| t.autodiff().require_grad())
                .collect();
            let mut st = self.rest();
            st.set_tensors(leaves.clone());
            let link = self.coupling(gains, gains.log_gain.val());
            let (sigs, _, expected, _) = self.simulate(
                &mut st,
                drive[lo..hi].iter().map(|d| d.clone().autodiff()),
                &link,
                mode,
                &signal_w,
                false,
                &mut |_, _| {},
            );
            let sigs = Tensor::cat(sigs, 0);
            // The re-run must retrace the forward pass (a flipped spike would make it another path).
            let replayed = values(&sigs);
            for (a, b) in replayed.iter().zip(&signal_values[lo..hi]) {
                replay_error_mv = replay_error_mv.max((a - b).abs());
            }
            let mut surrogate = (sigs * g_signal.clone().narrow(0, lo, hi - lo)).sum()
                + (expected * g_cell.clone()).sum();
            if let Some(ge) = g_end.take() {
                for (t, gt) in st.tensors().into_iter().zip(ge) {
                    surrogate = surrogate + (t * gt).sum();
                }
            }
            let mut grads = surrogate.backward();
            if let Some(gg) = gains.log_gain.val().grad_remove(&mut grads) {
                g_gain = Some(match g_gain.take() {
                    Some(a) => a + gg,
                    None => gg,
                });
            }
            g_end = Some(
                leaves
                    .iter()
                    .map(|leaf| {
                        leaf.grad_remove(&mut grads)
                            .map(|t| t.autodiff())
                            .unwrap_or_else(|| Tensor::zeros(leaf.dims(), dev))
                    })
                    .collect(),
            );
            done += (hi - lo) as u64;
            progress(done, total_work);
        }
        let mut grads = GradientsParams::new();
        if let Some(gg) = g_gain {
            grads.register(gains.log_gain.id, gg);
        }
        GradientRun {
            loss: l,
            grads,
            signal: signal_values,
            pop_spikes,
            raster,
            replay_error_mv,
        }
    }

    /// [`SurrogateNetwork::run_with_gradient`] with the loss and its gradient computed on plain
    /// numbers by `loss(signal, counts per population, the same)` (the first counts' gradient is taken
    /// as in [`SurrogateNetwork::run_with_gradient`]): no burn
    /// operation touches the window, so the result does not depend on the CPU's SIMD width. Needs the
    /// fused engine (`None` otherwise).
    #[allow(clippy::too_many_arguments)]
    pub fn run_with_gradient_plain(
        &self,
        gains: &Gains,
        bins: usize,
        noise: u64,
        mode: SpikeMode,
        signal_pops: &[usize],
        chunk_bins: usize,
        record: bool,
        loss: &mut PlainLossFn<'_>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Option<GradientRun> {
        let f = self.fused.as_ref()?;
        Some(self.run_with_gradient_fused(
            f,
            gains,
            bins,
            noise,
            mode,
            signal_pops,
            chunk_bins,
            record,
            WindowLoss::Plain(loss),
            progress,
        ))
    }

    /// The fused engine's forward pass over a window in chunks of `chunk` bins, keeping the state at
    /// each chunk start; `progress(bins done)` after each chunk.
    #[allow(clippy::too_many_arguments)]
    fn fused_window(
        &self,
        f: &FusedNet,
        gains: &Gains,
        bins: usize,
        noise: u64,
        mode: SpikeMode,
        signal_pops: &[usize],
        chunk: usize,
        record: bool,
        progress: &mut dyn FnMut(u64),
    ) -> FusedWindow {
        let lg = f.link_gains(&gains.values());
        let lw = f.weights(gains.synapse_values().as_deref());
        let drive = self.drive_values(bins, noise);
        let sig_w = self.signal_weight_values(signal_pops);
        let mut st = f.rest();
        let mut starts = Vec::with_capacity(bins.div_ceil(chunk));
        let mut signal = Vec::with_capacity(bins);
        let mut per_cell = vec![0f64; self.n];
        let mut raster = record.then(Vec::new);
        for lo in (0..bins).step_by(chunk) {
            let hi = (lo + chunk).min(bins);
            let (tape, next) = f.forward(&st, &drive[lo..hi], &lg, &lw, mode, &sig_w);
            starts.push(std::mem::replace(&mut st, next));
            signal.extend_from_slice(&tape.signal);
            for t in 0..tape.bins() {
                let s = tape.spikes(t);
                for (a, &b) in per_cell.iter_mut().zip(s) {
                    *a += b as f64;
                }
                if let Some(r) = raster.as_mut() {
                    r.push(
                        s.iter()
                            .enumerate()
                            .filter(|(_, v)| **v > 0.5)
                            .map(|(i, _)| i as u32)
                            .collect(),
                    );
                }
            }
            progress(hi as u64);
        }
        FusedWindow {
            drive,
            lg,
            lw,
            sig_w,
            starts,
            signal,
            per_cell,
            raster,
        }
    }

    /// [`SurrogateNetwork::run_with_gradient`] on the fused engine: the same chunks, state saving and
    /// loss, with the fused forward and backward passes.
    #[allow(clippy::too_many_arguments)]
    fn run_with_gradient_fused(
        &self,
        f: &FusedNet,
        gains: &Gains,
        bins: usize,
        noise: u64,
        mode: SpikeMode,
        signal_pops: &[usize],
        chunk_bins: usize,
        record: bool,
        loss: WindowLoss,
        progress: &mut dyn FnMut(u64, u64),
    ) -> GradientRun {
        let dev = &self.device;
        let chunk = if chunk_bins == 0 {
            bins.max(1)
        } else {
            chunk_bins
        };
        let n_chunks = bins.div_ceil(chunk);
        let span = |c: usize| (c * chunk, ((c + 1) * chunk).min(bins));
        let total_work = (2 * bins) as u64;
        let FusedWindow {
            drive,
            lg,
            lw,
            sig_w,
            starts,
            signal,
            per_cell,
            raster,
        } = self.fused_window(
            f,
            gains,
            bins,
            noise,
            mode,
            signal_pops,
            chunk,
            record,
            &mut |done| progress(done, total_work),
        );
        // The loss and its gradient with respect to the signal and the counts.
        let per_pop = |per_cell: &[f64]| -> Vec<f32> {
            self.pop_range
                .iter()
                .map(|r| per_cell[r.clone()].iter().sum::<f64>() as f32)
                .collect()
        };
        let pop_spikes = per_pop(&per_cell);
        // The loss and its gradient with respect to the signal, the expected counts (per cell: its
        // population's) and the parameters directly (the penalties).
        let mut d_spike = vec![0f32; self.n];
        let (l, g_signal, g_loss, g_loss_w): LossGradients = match loss {
            WindowLoss::Burn(loss) => {
                let signal_leaf =
                    Tensor::<1>::from_data(TensorData::new(signal.clone(), [bins]), dev)
                        .require_grad();
                let count_leaves: Vec<Tensor<1>> = pop_spikes
                    .iter()
                    .map(|&c| {
                        Tensor::<1>::from_data(TensorData::new(vec![c], [1]), dev).require_grad()
                    })
                    .collect();
                let l = loss(signal_leaf.clone(), count_leaves.clone(), &pop_spikes);
                let mut g = l.backward();
                let g_signal = values(&grad_or_zeros(&signal_leaf, &g, dev));
                for (r, c) in self.pop_range.iter().zip(&count_leaves) {
                    let gc = values(&grad_or_zeros(c, &g, dev))[0];
                    d_spike[r.clone()].iter_mut().for_each(|d| *d = gc);
                }
                let g_loss = gains
                    .log_gain
                    .val()
                    .grad_remove(&mut g)
                    .map(|t| t.into_data().try_to_vec::<f32>().expect("f32"));
                let g_loss_w = gains.log_w.as_ref().and_then(|w| {
                    w.val()
                        .grad_remove(&mut g)
                        .map(|t| t.into_data().try_to_vec::<f32>().expect("f32"))
                });
                (l, g_signal, g_loss, g_loss_w)
            }
            WindowLoss::Plain(loss) => {
                let p = loss(&signal, &pop_spikes, &pop_spikes);
                for (r, &gc) in self.pop_range.iter().zip(&p.d_expected) {
                    d_spike[r.clone()].iter_mut().for_each(|d| *d = gc);
                }
                let inner = dev.clone().inner();
                let l = Tensor::<1>::from_inner(Tensor::from_data(
                    TensorData::new(vec![p.loss as f32], [1]),
                    &inner,
                ));
                (l, p.d_signal, Some(p.d_log_gain), p.d_log_w)
            }
        };
        let mut d_log_w = gains.synapse_values().map(|u| vec![0f32; u.len()]);
        // Backward through the chunks, last first, each re-run from its saved state. A second
        // thread re-runs the next chunk while this one is back-propagated (two tapes in memory).
        let mut d_state = f.rest();
        let mut d_gain = f.zero_gain_gradient();
        let mut replay_error_mv = 0f32;
        let mut done = bins as u64;
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(0);
            let (starts, drive, lg, lw, sig_w) = (&starts, &drive, &lg, &lw, &sig_w);
            scope.spawn(move || {
                for c in (0..n_chunks).rev() {
                    let (lo, hi) = span(c);
                    let (tape, _) = f.forward(&starts[c], &drive[lo..hi], lg, lw, mode, sig_w);
                    if tx.send((c, tape)).is_err() {
                        return;
                    }
                }
            });
            for (c, tape) in rx {
                let (lo, hi) = span(c);
                for (a, b) in tape.signal.iter().zip(&signal[lo..hi]) {
                    replay_error_mv = replay_error_mv.max((a - b).abs());
                }
                d_state = f.backward(
                    &tape,
                    &d_state,
                    &g_signal[lo..hi],
                    &d_spike,
                    lg,
                    lw,
                    mode,
                    sig_w,
                    &mut d_gain,
                    d_log_w.as_deref_mut(),
                );
                done += (hi - lo) as u64;
                progress(done, total_work);
            }
        });
        let mut g_groups = f.group_gradient(&d_gain, &lg);
        if let Some(gl) = g_loss {
            for (a, b) in g_groups.iter_mut().zip(gl) {
                *a += b;
            }
        }
        let inner = dev.clone().inner();
        let mut grads = GradientsParams::new();
        grads.register(
            gains.log_gain.id,
            Tensor::<1>::from_data(TensorData::new(g_groups, [self.n_groups()]), &inner),
        );
        if let (Some(w), Some(mut dw)) = (&gains.log_w, d_log_w) {
            if let Some(gl) = g_loss_w {
                for (a, b) in dw.iter_mut().zip(gl) {
                    *a += b;
                }
            }
            let n_w = dw.len();
            grads.register(
                w.id,
                Tensor::<1>::from_data(TensorData::new(dw, [n_w]), &inner),
            );
        }
        GradientRun {
            loss: l,
            grads,
            signal,
            pop_spikes,
            raster,
            replay_error_mv,
        }
    }
}

/// One cell type's bin: input `[n, C]` in, spikes, somatic voltage (mV) and the spikes as counted
/// (`[n]` each) out: with hard spikes the count carries the expected onsets' gradient.
fn cell_step(
    ct: &CellType,
    cell: &mut SurrogateState,
    prev: &mut (Tensor<1>, Tensor<1>, Tensor<1>),
    xi: Tensor<2>,
    scale: Tensor<2>,
    mode: SpikeMode,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    // The input transform of the datasets: sign(x) ln(1 + |x| / scale).
    let scaled = Scaling::input_tensor(xi, scale);
    let (v_std, logit) = cell.step(&ct.model, scaled);
    let logit = logit.sub_scalar(ct.meta.spike_logit_threshold);
    let v = v_std
        .mul_scalar(ct.meta.scaling.v_std)
        .add_scalar(ct.meta.scaling.v_mean);
    // A spike is the onset of a run of bins with logit > 0, as `surge eval` counts them: the logit
    // stays high for a few bins around each spike.
    let soft = sigmoid(
        logit
            .clone()
            .mul_scalar(mode.beta() / ct.meta.spike_width()),
    );
    let (soft_prev, hard_prev, rate_prev) = prev.clone();
    let soft_onset = onset_tensor(soft.clone(), soft_prev);
    // The spike probability (one calibrated logit width per unit, whatever the gradient's beta): the
    // counts carry the gradient of its onsets.
    let rate = sigmoid(logit.clone().div_scalar(ct.meta.spike_width()));
    let expected = onset_tensor(rate.clone(), rate_prev);
    let s = match mode {
        SpikeMode::StraightThrough { .. } => {
            let hard = logit.greater_elem(0.0).float();
            let hard_onset = onset_tensor(hard.clone(), hard_prev);
            *prev = (soft, hard, rate);
            let count = hard_onset.clone() + expected.clone() - expected.detach();
            (hard_onset + soft_onset.clone() - soft_onset.detach(), count)
        }
        SpikeMode::Smooth { .. } => {
            *prev = (soft.clone(), soft, rate);
            (soft_onset.clone(), soft_onset)
        }
    };
    (s.0, v, s.1)
}

/// A window's loss computed on plain numbers and its gradient (see
/// [`SurrogateNetwork::run_with_gradient_plain`]).
pub struct PlainWindowLoss {
    pub loss: f64,
    /// Per bin of the window (warm-up included).
    pub d_signal: Vec<f32>,
    /// Per population.
    pub d_expected: Vec<f32>,
    /// The loss's own terms in the parameters (penalties).
    pub d_log_gain: Vec<f32>,
    pub d_log_w: Option<Vec<f32>>,
}

/// A window loss on burn tensors: `(signal, spike counts per population, the counts as values)`.
pub type BurnLoss<'a> = dyn FnMut(Tensor<1>, Vec<Tensor<1>>, &[f32]) -> Tensor<1> + 'a;
/// A window loss on plain numbers: `(signal, spike counts, the same)` to the loss and its gradient.
pub type PlainLossFn<'a> = dyn FnMut(&[f32], &[f32], &[f32]) -> PlainWindowLoss + 'a;
/// The loss, its gradient in the signal, and its own gradient in the log-gains and log-weights.
type LossGradients = (Tensor<1>, Vec<f32>, Option<Vec<f32>>, Option<Vec<f32>>);

/// How the fused engine's window loss is differentiated: by burn's autodiff, or given on plain numbers.
enum WindowLoss<'a> {
    Burn(&'a mut BurnLoss<'a>),
    Plain(&'a mut PlainLossFn<'a>),
}

/// What [`SurrogateNetwork::run_with_gradient`] leaves: the loss, the gradient of the log-gains, the
/// population signal per bin and the spikes per population (values), and, if asked, the raster.
pub struct GradientRun {
    pub loss: Tensor<1>,
    pub grads: GradientsParams,
    pub signal: Vec<f32>,
    pub pop_spikes: Vec<f32>,
    pub raster: Option<Vec<Vec<u32>>>,
    /// Largest difference (mV) between the signal of the forward pass and of the chunks' re-runs:
    /// 0 when the pieces retrace the window exactly, as they should.
    pub replay_error_mv: f32,
}

/// The fused engine's forward pass over a window and what its backward pass needs.
struct FusedWindow {
    drive: Vec<Vec<f32>>,
    lg: Vec<Vec<f32>>,
    lw: super::fused::LinkWeights,
    sig_w: Vec<f32>,
    starts: Vec<FusedState>,
    signal: Vec<f32>,
    per_cell: Vec<f64>,
    raster: Option<Vec<Vec<u32>>>,
}

/// Everything a window carries from one bin to the next.
struct NetState {
    cells: Vec<SurrogateState>,
    /// Past spike vectors `[1, N]`, newest last.
    history: Vec<Tensor<2>>,
    /// The previous bin's (soft, hard) spikes and spike probability (the rate sigmoid) per cell
    /// type, for onset detection.
    prev: Vec<(Tensor<1>, Tensor<1>, Tensor<1>)>,
}

impl NetState {
    fn tensors(&self) -> Vec<Tensor<2>> {
        let mut out: Vec<Tensor<2>> = self.cells.iter().flat_map(|c| c.tensors()).collect();
        out.extend(self.history.iter().cloned());
        for (soft, hard, rate) in &self.prev {
            let b = soft.dims()[0];
            out.push(soft.clone().reshape([1, b]));
            out.push(hard.clone().reshape([1, b]));
            out.push(rate.clone().reshape([1, b]));
        }
        out
    }

    fn set_tensors(&mut self, tensors: Vec<Tensor<2>>) {
        let mut it = tensors.into_iter();
        for c in &mut self.cells {
            c.set_tensors(&mut it);
        }
        for h in &mut self.history {
            *h = it.next().expect("history");
        }
        for (soft, hard, rate) in &mut self.prev {
            let b = soft.dims()[0];
            *soft = it.next().expect("soft").reshape([b]);
            *hard = it.next().expect("hard").reshape([b]);
            *rate = it.next().expect("rate").reshape([b]);
        }
    }
}

fn values(t: &Tensor<1>) -> Vec<f32> {
    t.clone().into_data().try_to_vec::<f32>().expect("f32")
}

/// Indices of the cells that spiked, from a hard spike vector.
fn spike_indices(s: &Tensor<1>) -> Vec<u32> {
    values(s)
        .iter()
        .enumerate()
        .filter(|(_, v)| **v > 0.5)
        .map(|(i, _)| i as u32)
        .collect()
}

/// `t`'s gradient in `grads` as a constant autodiff tensor, or zeros where none reached it.
fn grad_or_zeros<const D: usize>(
    t: &Tensor<D>,
    grads: &burn::tensor::Gradients,
    dev: &Device,
) -> Tensor<D> {
    t.grad(grads)
        .map(|g| g.autodiff())
        .unwrap_or_else(|| Tensor::zeros(t.dims(), dev))
}
