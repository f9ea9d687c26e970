//! The exact network engine: LIF populations on a fixed time grid, spikes delivered event by event
//! over the connectome with their delays through a ring buffer of per-channel inputs.
//!
//! Timing conventions (the tests rely on them): step `n` advances `t = n dt` to `(n + 1) dt`. Inputs that
//! arrive at `t` (delayed spikes, drive spikes in `[t, t + dt)`) are added to the channel states first;
//! then the linear dynamics are integrated exactly over the step; a cell whose voltage ends the step at or
//! above threshold spikes at `(n + 1) dt`, is reset and held for the refractory period, and its spike
//! arrives at its targets exactly `delay` later. Recorded traces are sampled at the end of each step.

use super::models::{self, NeuronModel};
use crate::error::{Result, SurgeError};
use crate::seed::{rng_for, stream};
use crate::spec::{Connectome, DriveKind, NetworkSpec, SignalKind, VInit};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, StandardNormal};

/// Voltage and per-channel synaptic drive of one recorded cell, one sample per step.
#[derive(Debug, Clone)]
pub struct RecordedCell {
    pub population: String,
    /// Index within the population.
    pub index: usize,
    /// Global cell index.
    pub global: usize,
    /// Membrane potential (mV) at the end of each step.
    pub v: Vec<f32>,
    /// Per-channel synaptic drive at the end of each step: `u_c` (mV) for current-based cells,
    /// conductance `g_c` (nS) for conductance-based cells.
    pub channels: Vec<Vec<f32>>,
    pub channel_names: Vec<String>,
}

/// A population signal sampled at the end of each step.
#[derive(Debug, Clone)]
pub struct NamedSignal {
    pub name: String,
    pub kind: SignalKind,
    pub values: Vec<f64>,
}

/// Everything an exact run produces.
#[derive(Debug, Clone)]
pub struct SimResult {
    pub dt_ms: f64,
    pub steps: usize,
    /// Spike times (ms) and global cell indices of the recorded populations, in time order.
    pub spike_times_ms: Vec<f64>,
    pub spike_cells: Vec<u32>,
    /// Spike count of every cell (recorded or not).
    pub spike_counts: Vec<u32>,
    pub recorded: Vec<RecordedCell>,
    pub signals: Vec<NamedSignal>,
    /// Number of synaptic events delivered (spikes times out-degree).
    pub synaptic_events: u64,
    /// With `Sampling::input_bin_steps`: `[cell][bin][channel]` arriving input (channels padded to the
    /// largest count of any population), `input_bins` bins of `input_channels` channels.
    pub binned_inputs: Vec<f32>,
    pub input_bins: usize,
    pub input_channels: usize,
}

/// Where a population's cells and input slots lie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slots {
    /// Global index of its first cell.
    pub offset: usize,
    pub size: usize,
    /// Index of its first input slot in a ring-buffer row (inputs are channel-major).
    pub in_base: usize,
}

/// The constant drives of one population over the current window of bias and white-noise drives.
#[derive(Debug, Clone)]
pub(crate) struct Constant {
    pub offset: usize,
    pub size: usize,
    /// The model's white-noise scale ([`NeuronModel::noise_scale`]).
    pub noise_scale: Option<f64>,
    /// Constant input per cell: mV added to the resting potential (current-based) or pA (conductance-based).
    pub bias: Vec<f64>,
    /// Per-step std of white-noise voltage increments per cell (empty without white noise).
    pub noise: Vec<f64>,
}

/// Anything that carries a population's [`Constant`] drives.
pub(crate) trait HasConstant {
    fn constant(&mut self) -> &mut Constant;
}

impl HasConstant for Constant {
    fn constant(&mut self) -> &mut Constant {
        self
    }
}

struct Population {
    offset: usize,
    size: usize,
    n_channels: usize,
    /// Index of this population's first input slot in a ring-buffer row (inputs are channel-major).
    in_base: usize,
    v: Vec<f64>,
    ref_left: Vec<u32>,
    constant: Constant,
    /// `constant.bias` without the hook's current (kept only when a hook runs).
    base_bias: Vec<f64>,
    noise_rng: ChaCha8Rng,
    model: Box<dyn NeuronModel>,
    record_spikes: bool,
    needs_current: bool,
    needs_dipole: bool,
    v_sum: f64,
    current_sum: f64,
    dipole_sum: f64,
    n_spikes: u32,
}

impl HasConstant for Population {
    fn constant(&mut self) -> &mut Constant {
        &mut self.constant
    }
}

impl Population {
    fn slots(&self) -> Slots {
        Slots {
            offset: self.offset,
            size: self.size,
            in_base: self.in_base,
        }
    }
}

#[derive(Clone)]
struct PoissonDrive {
    input: Vec<usize>,
    next_ms: Vec<f64>,
    rngs: Vec<ChaCha8Rng>,
    exp: Exp<f64>,
    weight: f64,
    start: f64,
    stop: f64,
}

#[derive(Clone)]
struct SpikeDrive {
    input: Vec<usize>,
    /// Sorted arrival steps.
    steps: Vec<usize>,
    next: usize,
    weight: f64,
}

/// Bias and white-noise drives: constant over their window.
#[derive(Clone)]
struct BiasDrive {
    cells: Vec<u32>,
    amplitude: f64,
    sigma: f64,
    start: f64,
    stop: f64,
}

/// Sum with four accumulators (the sequential sum is bound by add latency).
pub(crate) fn sum(x: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = x.chunks_exact(4);
    let rest: f64 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc[0] + acc[1] + acc[2] + acc[3] + rest
}

/// Input given per cell, bin and channel from outside the spec (surrogate training sets): the weighted
/// spike sum of bin `b` arrives at the start of the bin, `t = b * bin_steps * dt`, on every channel of the cell.
#[derive(Debug, Clone)]
pub struct ExternalInput<'a> {
    /// Global index of the first cell fed; cells `first_cell..first_cell + n_cells`.
    pub first_cell: usize,
    pub n_cells: usize,
    pub n_channels: usize,
    pub bins: usize,
    pub bin_steps: usize,
    /// `[cell][bin][channel]`, row-major.
    pub values: &'a [f32],
}

/// How recorded cells are sampled: every `every_steps` steps (at the end of the step), with or without
/// their per-channel synaptic drive.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub every_steps: usize,
    pub channels: bool,
    /// If non-zero: sum every cell's arriving synaptic input (weights, per channel) over bins of this
    /// many steps into [`SimResult::binned_inputs`] (the surrogate's input, as the datasets define it).
    pub input_bin_steps: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            every_steps: 1,
            channels: true,
            input_bin_steps: 0,
        }
    }
}

/// Runs `spec` on `conn` in the exact engine. `progress(done, total)` is called about 200 times.
pub fn simulate(
    spec: &NetworkSpec,
    conn: &Connectome,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimResult> {
    simulate_with_input(spec, conn, None, Sampling::default(), progress)
}

/// Something that watches a run step by step and feeds back a current: after step `n` (ending at
/// `t_end_ms`) it sees the cells that spiked in it and sets `current` (one value per cell, pA for
/// conductance-based cells, mV for current-based ones, added to the cell's constant drive) for the
/// next step. Online learning (RLS/FORCE on the exact network) plugs in here.
pub trait StepHook {
    fn after_step(&mut self, n: usize, t_end_ms: f64, spiked: &[u32], current: &mut [f64]);
}

/// [`simulate`] with additional per-bin input to some cells (all in one population).
pub fn simulate_with_input(
    spec: &NetworkSpec,
    conn: &Connectome,
    external: Option<&ExternalInput>,
    sampling: Sampling,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimResult> {
    simulate_with_hook(spec, conn, external, sampling, None, progress)
}

/// Refuses, before anything is allocated, a run whose recorded signals and traces would not fit in
/// this machine's memory.
fn check_recording_fits(
    spec: &NetworkSpec,
    sampling: &Sampling,
    every: usize,
    steps: usize,
) -> Result<()> {
    let per_cell = |r: &crate::spec::VoltageRecord| {
        let channels = spec
            .population_index(&r.population)
            .map_or(0, |pi| spec.populations[pi].neuron.channel_names().len());
        r.cells.len() * (1 + if sampling.channels { channels } else { 0 })
    };
    let traces: usize = spec.recording.voltages.iter().map(per_cell).sum();
    let bytes = steps as f64 * 8.0 * spec.recording.signals.len() as f64
        + (steps / every) as f64 * 4.0 * traces as f64;
    crate::memory::check_fits(
        bytes,
        &format!(
            "recording {} signals and {traces} traces over {steps} steps",
            spec.recording.signals.len()
        ),
        "simulation.duration_ms",
        "shorten simulation.duration_ms, or record fewer signals and cells",
    )
}

/// [`simulate_with_input`] with a [`StepHook`].
pub fn simulate_with_hook(
    spec: &NetworkSpec,
    conn: &Connectome,
    external: Option<&ExternalInput>,
    sampling: Sampling,
    mut hook: Option<&mut dyn StepHook>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SimResult> {
    if let Some(ext) = external {
        check_external(spec, conn, ext)?;
    }
    let every = sampling.every_steps.max(1);
    let dt = spec.simulation.dt_ms;
    let steps = spec.steps();
    check_recording_fits(spec, &sampling, every, steps)?;
    let seed = spec.seed();
    let (mut pops, row) = build_populations(spec, conn, dt, seed);
    let input_bins = steps.checked_div(sampling.input_bin_steps).unwrap_or(0);
    let input_channels = pops.iter().map(|p| p.n_channels).max().unwrap_or(0);
    let mut binned = BinnedInputs {
        values: vec![0f32; conn.n_cells * input_bins * input_channels],
        bins: input_bins,
        channels: input_channels,
        bin_steps: sampling.input_bin_steps,
    };
    let n_slots = conn.max_delay_steps() as usize + 2;
    let mut ring = vec![0.0f64; n_slots * row];
    let slots: Vec<Slots> = pops.iter().map(Population::slots).collect();
    let group_base = group_bases(spec, &slots);
    let mut drives = Drives::build(spec, conn, &slots, dt, seed);
    let mut rec = Recording::new(spec, &pops, steps, every, sampling.channels);
    let mut out = Spikes {
        times_ms: Vec::new(),
        cells: Vec::new(),
        counts: vec![0u32; conn.n_cells],
        synaptic_events: 0,
    };
    let mut spiked: Vec<u32> = Vec::new();
    let report_every = (steps / 200).max(1);
    let mut hook_current = vec![0.0f64; if hook.is_some() { conn.n_cells } else { 0 }];

    for n in 0..steps {
        let t = n as f64 * dt;
        let t_end = (n + 1) as f64 * dt;
        let now = (n % n_slots) * row;
        let current = &mut ring[now..now + row];
        if drives.update_constant(t, conn, &mut pops) && hook.is_some() {
            for p in pops.iter_mut() {
                p.base_bias.copy_from_slice(&p.constant.bias);
            }
            apply_hook_current(&mut pops, &hook_current);
        }
        if let Some(ext) = external {
            add_external(ext, n, conn, &pops, current);
        }
        drives.deliver(n, t, t_end, current);
        spiked.clear();
        if step_populations(
            &mut pops,
            current,
            binned.bin_of(n),
            &mut binned,
            &mut spiked,
        ) {
            return Err(diverged(spec, &pops, t_end));
        }
        deliver_spikes(
            &spiked,
            n,
            t_end,
            conn,
            &pops,
            &group_base,
            n_slots,
            row,
            &mut ring,
            &mut out,
        );
        if let Some(h) = hook.as_deref_mut() {
            h.after_step(n, t_end, &spiked, &mut hook_current);
            apply_hook_current(&mut pops, &hook_current);
        }
        if (n + 1).is_multiple_of(every) {
            rec.sample_cells(&pops);
        }
        rec.sample_signals(&pops, dt);
        if (n + 1) % report_every == 0 || n + 1 == steps {
            progress((n + 1) as u64, steps as u64);
        }
    }

    Ok(SimResult {
        dt_ms: dt,
        steps,
        spike_times_ms: out.times_ms,
        spike_cells: out.cells,
        spike_counts: out.counts,
        recorded: rec.cells,
        signals: rec.signals,
        synaptic_events: out.synaptic_events,
        binned_inputs: binned.values,
        input_bins,
        input_channels,
    })
}

/// Refuses external input that does not fit one population of the network.
fn check_external(spec: &NetworkSpec, conn: &Connectome, ext: &ExternalInput) -> Result<()> {
    let ok = ext.n_cells > 0
        && ext.first_cell + ext.n_cells <= conn.n_cells
        && conn.population_of(ext.first_cell)
            == conn.population_of(ext.first_cell + ext.n_cells - 1)
        && ext.n_channels
            == spec.populations[conn.population_of(ext.first_cell)]
                .neuron
                .n_channels()
        && ext.values.len() == ext.n_cells * ext.bins * ext.n_channels
        && ext.bin_steps > 0;
    if !ok {
        return Err(SurgeError::spec(
            "external input",
            format!(
                "{} cells from {} with {} channels and {} values do not fit the network",
                ext.n_cells,
                ext.first_cell,
                ext.n_channels,
                ext.values.len()
            ),
            "feed cells of one population with one value per cell, bin and channel of that population",
        ));
    }
    Ok(())
}

/// The populations with their initial state and model, and the length of a ring-buffer row (every
/// population's input slots).
fn build_populations(
    spec: &NetworkSpec,
    conn: &Connectome,
    dt: f64,
    seed: u64,
) -> (Vec<Population>, usize) {
    let record_pops: Vec<bool> = spec
        .populations
        .iter()
        .map(|p| {
            spec.recording
                .spikes
                .as_ref()
                .is_none_or(|l| l.contains(&p.name))
        })
        .collect();

    let mut pops = Vec::with_capacity(spec.populations.len());
    let mut in_base = 0usize;
    for (pi, p) in spec.populations.iter().enumerate() {
        let nch = p.neuron.n_channels();
        let v = initial_voltages(spec, pi, seed);
        let model = models::build(&p.neuron, p.size, dt);
        let needs_current = spec
            .recording
            .signals
            .iter()
            .any(|s| s.kind == SignalKind::SynapticCurrent && s.populations.contains(&p.name));
        let needs_dipole = spec
            .recording
            .signals
            .iter()
            .any(|s| s.kind == SignalKind::Dipole && s.populations.contains(&p.name));
        pops.push(Population {
            offset: conn.pop_offsets[pi],
            size: p.size,
            n_channels: nch,
            in_base,
            v,
            ref_left: vec![0; p.size],
            constant: Constant {
                offset: conn.pop_offsets[pi],
                size: p.size,
                noise_scale: model.noise_scale(),
                bias: vec![0.0; p.size],
                noise: Vec::new(),
            },
            base_bias: vec![0.0; p.size],
            noise_rng: white_noise_rng(seed, pi),
            model,
            record_spikes: record_pops[pi],
            needs_current,
            needs_dipole,
            v_sum: 0.0,
            current_sum: 0.0,
            dipole_sum: 0.0,
            n_spikes: 0,
        });
        in_base += nch * p.size;
    }
    (pops, in_base.max(1))
}

/// Where a synapse of each connection group lands in a ring row: `group_base + target` (global).
pub(crate) fn group_bases(spec: &NetworkSpec, slots: &[Slots]) -> Vec<usize> {
    spec.connections
        .iter()
        .map(|c| {
            let pi = spec.population_index(&c.post).expect("validated");
            let ch = spec.populations[pi]
                .neuron
                .channel_index(&c.channel)
                .expect("validated");
            slots[pi].in_base + ch * slots[pi].size - slots[pi].offset
        })
        .collect()
}

/// The initial membrane potentials of population `pi` (`v_init_mv`, drawn from its own stream).
pub fn initial_voltages(spec: &NetworkSpec, pi: usize, seed: u64) -> Vec<f64> {
    let p = &spec.populations[pi];
    let mut rng = rng_for(seed, &[stream::INITIAL_STATE, pi as u64]);
    match p.v_init_mv {
        None => vec![p.neuron.v_reset(); p.size],
        Some(VInit::Constant(x)) => vec![x; p.size],
        Some(VInit::Uniform([a, b])) => (0..p.size)
            .map(|_| a + (b - a) * rng.random::<f64>())
            .collect(),
    }
}

/// The stream of population `pi`'s white-noise increments (one standard normal per cell and step
/// while any of its cells takes white noise).
pub(crate) fn white_noise_rng(seed: u64, pi: usize) -> ChaCha8Rng {
    rng_for(seed, &[stream::DRIVE_NOISE, u64::MAX, pi as u64])
}

/// Drives: Poisson and spike trains into input slots, constant (bias, white-noise) drives in windows.
#[derive(Clone)]
pub(crate) struct Drives {
    poisson: Vec<PoissonDrive>,
    spikes: Vec<SpikeDrive>,
    biases: Vec<BiasDrive>,
    bias_active: Vec<bool>,
}

impl Drives {
    pub(crate) fn build(
        spec: &NetworkSpec,
        conn: &Connectome,
        pops: &[Slots],
        dt: f64,
        seed: u64,
    ) -> Self {
        let input_index = |cell: u32, channel: &str| -> usize {
            let pi = conn.population_of(cell as usize);
            let ch = spec.populations[pi]
                .neuron
                .channel_index(channel)
                .expect("validated");
            pops[pi].in_base + ch * pops[pi].size + (cell as usize - pops[pi].offset)
        };

        let mut poisson = Vec::new();
        let mut spike_drives = Vec::new();
        let mut biases = Vec::new();
        for (d, drive) in spec.drives.iter().enumerate() {
            let cells = &conn.drive_targets[d];
            let start = drive.start_ms;
            let stop = drive.stop_ms.unwrap_or(f64::INFINITY);
            match drive.kind {
                DriveKind::Poisson => {
                    let ch = drive.channel.as_deref().expect("validated");
                    let rate_per_ms =
                        drive.rate_hz.expect("validated") * drive.n_sources as f64 / 1000.0;
                    if rate_per_ms <= 0.0 {
                        continue;
                    }
                    let exp = Exp::new(rate_per_ms).expect("positive rate");
                    let mut rngs: Vec<ChaCha8Rng> = cells
                        .iter()
                        .map(|&c| rng_for(seed, &[stream::DRIVE_NOISE, d as u64, c as u64]))
                        .collect();
                    let next_ms = rngs.iter_mut().map(|r| start + exp.sample(r)).collect();
                    poisson.push(PoissonDrive {
                        input: cells.iter().map(|&c| input_index(c, ch)).collect(),
                        next_ms,
                        rngs,
                        exp,
                        weight: drive.weight.expect("validated"),
                        start,
                        stop,
                    });
                }
                DriveKind::Spikes => {
                    let ch = drive.channel.as_deref().expect("validated");
                    let mut st: Vec<usize> = drive
                        .times_ms
                        .as_ref()
                        .expect("validated")
                        .iter()
                        .filter(|&&t| t >= start && t < stop)
                        .map(|&t| (t / dt).round() as usize)
                        .collect();
                    st.sort_unstable();
                    spike_drives.push(SpikeDrive {
                        input: cells.iter().map(|&c| input_index(c, ch)).collect(),
                        steps: st,
                        next: 0,
                        weight: drive.weight.expect("validated"),
                    });
                }
                DriveKind::Bias | DriveKind::WhiteNoise => biases.push(BiasDrive {
                    cells: cells.clone(),
                    amplitude: drive.amplitude.unwrap_or(0.0),
                    sigma: drive.sigma.unwrap_or(0.0),
                    start,
                    stop,
                }),
            }
        }

        let bias_active = vec![false; biases.len()];
        Drives {
            poisson,
            spikes: spike_drives,
            biases,
            bias_active,
        }
    }

    /// Constant drives: recomputed when a window opens or closes. Returns whether they were.
    pub(crate) fn update_constant<P: HasConstant>(
        &mut self,
        t: f64,
        conn: &Connectome,
        pops: &mut [P],
    ) -> bool {
        let (biases, bias_active) = (&self.biases, &mut self.bias_active);
        let changed = biases
            .iter()
            .zip(bias_active.iter())
            .any(|(b, &was)| (t >= b.start && t < b.stop) != was);
        if !changed {
            return false;
        }
        let active: Vec<bool> = biases.iter().map(|b| t >= b.start && t < b.stop).collect();
        for p in pops.iter_mut() {
            let p = p.constant();
            p.bias.fill(0.0);
            p.noise.clear();
        }
        for (b, _) in biases.iter().zip(&active).filter(|(_, a)| **a) {
            for &c in &b.cells {
                let p = pops[conn.population_of(c as usize)].constant();
                p.bias[c as usize - p.offset] += b.amplitude;
                if b.sigma > 0.0 {
                    p.noise.resize(p.size, 0.0);
                    p.noise[c as usize - p.offset] += b.sigma * b.sigma;
                }
            }
        }
        for p in pops.iter_mut() {
            let p = p.constant();
            if let Some(q) = p.noise_scale {
                p.noise.iter_mut().for_each(|var| *var = var.sqrt() * q);
            }
        }
        *bias_active = active;
        true
    }

    /// Drive spikes in `[t, t + dt)` arrive now, into this step's ring row.
    pub(crate) fn deliver(&mut self, n: usize, t: f64, t_end: f64, ring_now: &mut [f64]) {
        for d in self.poisson.iter_mut() {
            if t_end <= d.start || t >= d.stop {
                continue;
            }
            let limit = t_end.min(d.stop);
            for k in 0..d.input.len() {
                while d.next_ms[k] < limit {
                    ring_now[d.input[k]] += d.weight;
                    d.next_ms[k] += d.exp.sample(&mut d.rngs[k]);
                }
            }
        }
        for d in self.spikes.iter_mut() {
            while d.next < d.steps.len() && d.steps[d.next] <= n {
                if d.steps[d.next] == n {
                    for &i in &d.input {
                        ring_now[i] += d.weight;
                    }
                }
                d.next += 1;
            }
        }
    }
}

/// The constant input of each cell: its drives' plus the hook's current.
fn apply_hook_current(pops: &mut [Population], hook_current: &[f64]) {
    for p in pops.iter_mut() {
        let extra = &hook_current[p.offset..p.offset + p.size];
        for ((b, &base), &x) in p.constant.bias.iter_mut().zip(&p.base_bias).zip(extra) {
            *b = base + x;
        }
    }
}

/// External per-bin input, added at the first step of each bin.
fn add_external(
    ext: &ExternalInput,
    n: usize,
    conn: &Connectome,
    pops: &[Population],
    ring_now: &mut [f64],
) {
    if !(n.is_multiple_of(ext.bin_steps) && n / ext.bin_steps < ext.bins) {
        return;
    }
    let b = n / ext.bin_steps;
    let p = &pops[conn.population_of(ext.first_cell)];
    let local0 = ext.first_cell - p.offset;
    for cell in 0..ext.n_cells {
        let row = &ext.values[(cell * ext.bins + b) * ext.n_channels..][..ext.n_channels];
        for (c, &x) in row.iter().enumerate() {
            ring_now[p.in_base + c * p.size + local0 + cell] += x as f64;
        }
    }
}

/// Each cell's arriving input summed per bin (`Sampling::input_bin_steps`).
struct BinnedInputs {
    values: Vec<f32>,
    bins: usize,
    channels: usize,
    bin_steps: usize,
}

impl BinnedInputs {
    fn bin_of(&self, n: usize) -> Option<usize> {
        if self.bins > 0 {
            Some(n / self.bin_steps).filter(|&b| b < self.bins)
        } else {
            None
        }
    }
}

/// One step of every population: inputs binned (if asked), taken in by the model, membranes
/// advanced, white noise added, spikes detected. Returns whether a membrane became non-finite.
fn step_populations(
    pops: &mut [Population],
    ring_now: &mut [f64],
    in_bin: Option<usize>,
    binned: &mut BinnedInputs,
    spiked: &mut Vec<u32>,
) -> bool {
    let mut bad = false;
    let (input_bins, input_channels) = (binned.bins, binned.channels);
    for p in pops.iter_mut() {
        let inputs = &mut ring_now[p.in_base..p.in_base + p.n_channels * p.size];
        if let Some(b) = in_bin {
            for c in 0..p.n_channels {
                for (i, &x) in inputs[c * p.size..(c + 1) * p.size].iter().enumerate() {
                    if x != 0.0 {
                        binned.values[((p.offset + i) * input_bins + b) * input_channels + c] +=
                            x as f32;
                    }
                }
            }
        }
        p.v_sum = 0.0;
        p.current_sum = 0.0;
        p.n_spikes = 0;
        p.model.receive(inputs);
        p.model.integrate(&mut p.v, &p.ref_left, &p.constant.bias);
        if !p.constant.noise.is_empty() {
            for ((v, &r), &sd) in p.v.iter_mut().zip(&p.ref_left).zip(&p.constant.noise) {
                let xi: f64 = StandardNormal.sample(&mut p.noise_rng);
                *v += if r == 0 { sd * xi } else { 0.0 };
            }
        }
        if p.needs_current {
            // Sampled at the end of the step, before a spike resets v.
            p.current_sum = p.model.synaptic_current_sum(&p.v);
        }
        if p.needs_dipole {
            p.dipole_sum = p.model.dipole().unwrap_or(0.0);
        }
        let rule = p.model.spike_rule();
        for (i, (v, r)) in p.v.iter_mut().zip(p.ref_left.iter_mut()).enumerate() {
            if rule.crossing {
                // `r` marks a cell that ended the previous step above threshold.
                let above = *v >= rule.threshold;
                if above && *r == 0 {
                    spiked.push((p.offset + i) as u32);
                    p.n_spikes += 1;
                }
                *r = above as u32;
                continue;
            }
            *r = r.saturating_sub(1);
            if *v >= rule.threshold {
                *v = rule.reset;
                *r = rule.refractory_steps;
                spiked.push((p.offset + i) as u32);
                p.n_spikes += 1;
            }
        }
        p.v_sum = sum(&p.v);
        // A NaN or infinity anywhere makes the sum non-finite.
        bad |= !p.v_sum.is_finite();
    }
    bad
}

/// The error for a membrane that became non-finite, naming its population.
fn diverged(spec: &NetworkSpec, pops: &[Population], t_end: f64) -> SurgeError {
    let (pi, v) = pops
        .iter()
        .enumerate()
        .find_map(|(pi, p)| p.v.iter().find(|v| !v.is_finite()).map(|&v| (pi, v)))
        .unwrap_or((0, f64::NAN));
    SurgeError::Diverged {
        what: format!(
            "a membrane potential of population `{}`",
            spec.populations[pi].name
        ),
        value: v,
        t_ms: t_end,
    }
}

/// The spikes a run records.
struct Spikes {
    times_ms: Vec<f64>,
    cells: Vec<u32>,
    counts: Vec<u32>,
    synaptic_events: u64,
}

/// This step's spikes: counted, recorded, and sent to their targets, where they arrive at
/// `(n + 1 + delay) dt`.
#[allow(clippy::too_many_arguments)]
fn deliver_spikes(
    spiked: &[u32],
    n: usize,
    t_end: f64,
    conn: &Connectome,
    pops: &[Population],
    group_base: &[usize],
    n_slots: usize,
    row: usize,
    ring: &mut [f64],
    out: &mut Spikes,
) {
    for &cell in spiked {
        let c = cell as usize;
        out.counts[c] += 1;
        let pi = conn.population_of(c);
        if pops[pi].record_spikes {
            out.times_ms.push(t_end);
            out.cells.push(cell);
        }
        for seg in &conn.segments[conn.seg_ptr[c]..conn.seg_ptr[c + 1]] {
            let slot = (n + 1 + seg.delay_steps as usize) % n_slots;
            let buf = &mut ring[slot * row + group_base[seg.group as usize]..];
            let (tg, w) = (
                &conn.targets[seg.start..seg.end],
                &conn.weights[seg.start..seg.end],
            );
            for (&t, &w) in tg.iter().zip(w) {
                buf[t as usize] += w as f64;
            }
            out.synaptic_events += (seg.end - seg.start) as u64;
        }
    }
}

/// Recorded cells and population signals.
struct Recording {
    cells: Vec<RecordedCell>,
    /// (population, cell within it) of each recorded cell.
    at: Vec<(usize, usize)>,
    channels: bool,
    signals: Vec<NamedSignal>,
    /// The populations of each signal.
    signal_pops: Vec<Vec<usize>>,
}

impl Recording {
    fn new(
        spec: &NetworkSpec,
        pops: &[Population],
        steps: usize,
        every: usize,
        channels: bool,
    ) -> Self {
        let sampling_channels = channels;
        let mut recorded = Vec::new();
        let mut rec_where = Vec::new();
        for r in &spec.recording.voltages {
            let pi = spec.population_index(&r.population).expect("validated");
            for &i in &r.cells {
                let names = spec.populations[pi].neuron.channel_names();
                recorded.push(RecordedCell {
                    population: r.population.clone(),
                    index: i,
                    global: pops[pi].offset + i,
                    v: Vec::with_capacity(steps / every),
                    channels: vec![
                        Vec::with_capacity(if sampling_channels {
                            steps / every
                        } else {
                            0
                        });
                        names.len()
                    ],
                    channel_names: names,
                });
                rec_where.push((pi, i));
            }
        }
        let sig_pops: Vec<Vec<usize>> = spec
            .recording
            .signals
            .iter()
            .map(|s| {
                s.populations
                    .iter()
                    .map(|n| spec.population_index(n).expect("validated"))
                    .collect()
            })
            .collect();
        let signals: Vec<NamedSignal> = spec
            .recording
            .signals
            .iter()
            .map(|s| NamedSignal {
                name: s.name.clone(),
                kind: s.kind,
                values: Vec::with_capacity(steps),
            })
            .collect();

        Recording {
            cells: recorded,
            at: rec_where,
            channels,
            signals,
            signal_pops: sig_pops,
        }
    }

    /// Voltage (and channel drive) of each recorded cell at the end of the step.
    fn sample_cells(&mut self, pops: &[Population]) {
        for (rec, &(pi, i)) in self.cells.iter_mut().zip(&self.at) {
            let p = &pops[pi];
            rec.v.push(p.v[i] as f32);
            if !self.channels {
                continue;
            }
            for (c, tr) in rec.channels.iter_mut().enumerate() {
                tr.push(p.model.channel_value(c, i) as f32);
            }
        }
    }

    /// Each population signal at the end of the step.
    fn sample_signals(&mut self, pops: &[Population], dt: f64) {
        for (s, pis) in self.signals.iter_mut().zip(&self.signal_pops) {
            let cells: usize = pis.iter().map(|&pi| pops[pi].size).sum();
            let value = match s.kind {
                SignalKind::MeanVoltage => {
                    pis.iter().map(|&pi| pops[pi].v_sum).sum::<f64>() / cells as f64
                }
                SignalKind::Rate => {
                    pis.iter().map(|&pi| pops[pi].n_spikes as f64).sum::<f64>()
                        / cells as f64
                        / (dt / 1000.0)
                }
                SignalKind::SynapticCurrent => {
                    pis.iter().map(|&pi| pops[pi].current_sum).sum::<f64>()
                }
                SignalKind::Dipole => pis.iter().map(|&pi| pops[pi].dipole_sum).sum::<f64>(),
            };
            s.values.push(value);
        }
    }
}
