//! Drawing a trace's input and running it through the exact neuron.
//!
//! Each trace draws everything from its own stream (`seed`, trace index), so a trace is the same whatever
//! the chunking, the shard or the number of threads. Traces are simulated a chunk at a time as a
//! population of independent cells of the exact engine, each fed its binned input.

use super::config::{DatasetConfig, Regime};
use super::input::bin_spikes;
use crate::error::{Result, SurgeError};
use crate::exact::{ExternalInput, Sampling, simulate_with_input};
use crate::seed::{rng_for, stream};
use crate::spec::{
    CellSpec, Connectome, NetworkSpec, PopulationSpec, RecordingSpec, SimulationSpec, VInit,
    VoltageRecord,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1};
use rayon::prelude::*;

/// One generated trace and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Index in the whole set (shards hold disjoint ranges).
    pub index: u64,
    pub regime: Regime,
    /// `[bin][channel]` weighted spike sums.
    pub inputs: Vec<f32>,
    /// Somatic voltage (mV) at the end of each bin.
    pub voltage: Vec<f32>,
    /// Spikes in each bin.
    pub spikes: Vec<u8>,
    /// Output firing rate (Hz).
    pub rate_hz: f32,
    /// Per channel: activation probability, active sources, summed source rate (Hz), mean weight.
    pub activation_p: Vec<f32>,
    pub n_active: Vec<u32>,
    pub input_rate_hz: Vec<f32>,
    pub weight_mean: Vec<f32>,
    /// Rhythm of the network regime (Hz); 0 in the other regimes.
    pub modulation_hz: f32,
}

/// Slow rhythm, bursts and the E-to-I lag of a network-regime trace.
struct Modulation {
    freq_hz: f64,
    depth: f64,
    phase: f64,
    /// (start ms, end ms, gain)
    bursts: Vec<(f64, f64, f64)>,
    /// Integrated modulation at bin edges (ms), for excitatory and (lagged) inhibitory sources.
    cum_exc: Vec<f64>,
    cum_inh: Vec<f64>,
}

impl Modulation {
    fn draw(rng: &mut ChaCha8Rng, bins: usize, bin_ms: f64) -> Self {
        let duration_ms = bins as f64 * bin_ms;
        let freq_hz = 2.0 + 78.0 * rng.random::<f64>();
        let depth = 0.3 + 0.7 * rng.random::<f64>();
        let phase = std::f64::consts::TAU * rng.random::<f64>();
        // About two bursts per second of 20-100 ms at 2-4 times the rate.
        let mut bursts = Vec::new();
        let mut t = 0.0;
        loop {
            t += -(1.0 - rng.random::<f64>()).ln() * 500.0;
            if t >= duration_ms {
                break;
            }
            let len = 20.0 + 80.0 * rng.random::<f64>();
            bursts.push((t, t + len, 2.0 + 2.0 * rng.random::<f64>()));
        }
        let inhibitory_lag_ms = 1.0 + 4.0 * rng.random::<f64>();
        let mut m = Modulation {
            freq_hz,
            depth,
            phase,
            bursts,
            cum_exc: Vec::new(),
            cum_inh: Vec::new(),
        };
        let cumulate = |lag: f64| -> Vec<f64> {
            let mut cum = Vec::with_capacity(bins + 1);
            cum.push(0.0);
            for b in 0..bins {
                let mid = (b as f64 + 0.5) * bin_ms - lag;
                cum.push(cum[b] + m.at(mid) * bin_ms);
            }
            cum
        };
        let (exc, inh) = (cumulate(0.0), cumulate(inhibitory_lag_ms));
        m.cum_exc = exc;
        m.cum_inh = inh;
        m
    }

    fn at(&self, t_ms: f64) -> f64 {
        let base = 1.0
            + self.depth
                * (std::f64::consts::TAU * self.freq_hz * t_ms / 1000.0 + self.phase).sin();
        self.bursts
            .iter()
            .filter(|b| t_ms >= b.0 && t_ms < b.1)
            .fold(base, |m, b| m * b.2)
    }
}

fn log_uniform(rng: &mut ChaCha8Rng, [lo, hi]: [f64; 2]) -> f64 {
    if hi <= lo {
        lo
    } else {
        (lo.ln() + (hi.ln() - lo.ln()) * rng.random::<f64>()).exp()
    }
}

/// A trace's regime, input and metadata, before its response is simulated.
fn draw(cfg: &DatasetConfig, index: u64) -> Trace {
    let mut rng = rng_for(cfg.seed(), &[stream::DATASET, index]);
    let m = cfg.dataset.mix;
    let total = m.subthreshold + m.suprathreshold + m.network;
    let u = rng.random::<f64>() * total;
    let regime = if u < m.subthreshold {
        Regime::Subthreshold
    } else if u < m.subthreshold + m.suprathreshold {
        Regime::Suprathreshold
    } else {
        Regime::Network
    };
    let names = cfg.channel_names();
    let nch = names.len();
    let bins = cfg.bins();
    let duration = cfg.dataset.duration_ms;
    let bin_ms = cfg.dataset.bin_ms;
    let modulation = (regime == Regime::Network).then(|| Modulation::draw(&mut rng, bins, bin_ms));
    let current_based = matches!(cfg.neuron, CellSpec::LifCurrent(_));
    let mut activation_p = vec![0.0f32; nch];
    let mut n_active = vec![0u32; nch];
    let mut input_rate_hz = vec![0.0f32; nch];
    let mut weight_mean = vec![0.0f32; nch];
    let mut inputs = vec![0.0f32; bins * nch];
    let mut spikes: Vec<(f64, usize, f64)> = Vec::new();
    for src in &cfg.channels {
        let c = names
            .iter()
            .position(|n| *n == src.name)
            .expect("validated");
        let p = 0.1 + 0.8 * rng.random::<f64>();
        let sign = if current_based && src.is_inhibitory() {
            -1.0
        } else {
            1.0
        };
        activation_p[c] = p as f32;
        let mut wsum = 0.0;
        for _ in 0..src.n_sources {
            if rng.random::<f64>() >= p {
                continue;
            }
            let rate = src.rate_hz[0] + (src.rate_hz[1] - src.rate_hz[0]) * rng.random::<f64>();
            let w = log_uniform(&mut rng, src.weights.range(regime));
            n_active[c] += 1;
            input_rate_hz[c] += rate as f32;
            wsum += w;
            if rate <= 0.0 {
                continue;
            }
            // Spikes by time rescaling: unit-rate exponential steps in the integrated intensity
            // `rate * integral of m`, with m constant within a bin (bins are the input's resolution).
            match &modulation {
                None => {
                    let mut t = 0.0;
                    loop {
                        let e: f64 = Exp1.sample(&mut rng);
                        t += e * 1000.0 / rate;
                        if t >= duration {
                            break;
                        }
                        spikes.push((t, c, sign * w));
                    }
                }
                Some(m) => {
                    let cum = if src.is_inhibitory() {
                        &m.cum_inh
                    } else {
                        &m.cum_exc
                    };
                    let end = cum[cum.len() - 1];
                    let mut x = 0.0;
                    loop {
                        let e: f64 = Exp1.sample(&mut rng);
                        x += e * 1000.0 / rate;
                        if x >= end {
                            break;
                        }
                        let b = cum.partition_point(|&v| v <= x) - 1;
                        let frac = (x - cum[b]) / (cum[b + 1] - cum[b]);
                        spikes.push(((b as f64 + frac) * bin_ms, c, sign * w));
                    }
                }
            }
        }
        if n_active[c] > 0 {
            weight_mean[c] = (wsum / n_active[c] as f64) as f32;
        }
    }
    bin_spikes(spikes, cfg.dataset.bin_ms, nch, &mut inputs);
    Trace {
        index,
        regime,
        inputs,
        voltage: Vec::new(),
        spikes: Vec::new(),
        rate_hz: 0.0,
        activation_p,
        n_active,
        input_rate_hz,
        weight_mean,
        modulation_hz: modulation.map_or(0.0, |m| m.freq_hz as f32),
    }
}

/// The network that simulates `n` independent copies of the dataset's neuron.
pub fn chunk_spec(cfg: &DatasetConfig, n: usize) -> NetworkSpec {
    let rest = match &cfg.neuron {
        CellSpec::LifCurrent(c) => c.v_rest_mv,
        CellSpec::LifConductance(c) => c.e_l_mv,
        other => other.v_reset(),
    };
    NetworkSpec {
        name: cfg.name.clone(),
        description: String::new(),
        connectome: None,
        connectome_checksum: None,
        simulation: SimulationSpec {
            dt_ms: cfg.dataset.dt_ms,
            duration_ms: cfg.bins() as f64 * cfg.dataset.bin_ms,
            seed: Some(cfg.seed()),
        },
        populations: vec![PopulationSpec {
            name: "cells".into(),
            size: n,
            neuron: cfg.neuron.clone(),
            v_init_mv: Some(VInit::Constant(rest)),
            layout: None,
        }],
        connections: Vec::new(),
        drives: Vec::new(),
        recording: RecordingSpec {
            spikes: None,
            voltages: vec![VoltageRecord {
                population: "cells".into(),
                cells: (0..n).collect(),
            }],
            signals: Vec::new(),
        },
    }
}

/// Per trace: voltage at each bin end, spikes per bin.
pub type Responses = (Vec<Vec<f32>>, Vec<Vec<u8>>);

/// Runs traces' inputs through the exact neuron: `inputs` is `[trace][bin][channel]`.
pub fn simulate_inputs(cfg: &DatasetConfig, n: usize, inputs: &[f32]) -> Result<Responses> {
    let spec = chunk_spec(cfg, n);
    let conn = Connectome::build(&spec);
    let (bins, bin_steps, nch) = (cfg.bins(), cfg.bin_steps(), cfg.channel_names().len());
    if inputs.len() != n * bins * nch {
        return Err(SurgeError::spec(
            "inputs",
            format!(
                "{} values for {n} traces x {bins} bins x {nch} channels",
                inputs.len()
            ),
            "pass [trace][bin][channel] inputs",
        ));
    }
    let ext = ExternalInput {
        first_cell: 0,
        n_cells: n,
        n_channels: nch,
        bins,
        bin_steps,
        values: inputs,
    };
    let sampling = Sampling {
        every_steps: bin_steps,
        channels: false,
        input_bin_steps: 0,
    };
    let res = simulate_with_input(&spec, &conn, Some(&ext), sampling, &mut |_, _| {})?;
    let voltage = res.recorded.iter().map(|r| r.v.clone()).collect();
    let mut spikes = vec![vec![0u8; bins]; n];
    for (&t, &c) in res.spike_times_ms.iter().zip(&res.spike_cells) {
        let step = (t / cfg.dataset.dt_ms).round() as usize - 1;
        let b = (step / bin_steps).min(bins - 1);
        let s = &mut spikes[c as usize][b];
        *s = s.saturating_add(1);
    }
    Ok((voltage, spikes))
}

/// Generates the traces with global indices `range`, a chunk of `chunk_traces` per task, in parallel.
pub fn generate_traces(cfg: &DatasetConfig, range: std::ops::Range<u64>) -> Result<Vec<Trace>> {
    let chunk = cfg.dataset.chunk_traces as u64;
    let starts: Vec<u64> = (range.start..range.end).step_by(chunk as usize).collect();
    let chunks: Vec<Result<Vec<Trace>>> = starts
        .par_iter()
        .map(|&s| {
            let e = (s + chunk).min(range.end);
            let mut traces: Vec<Trace> = (s..e).map(|i| draw(cfg, i)).collect();
            let inputs: Vec<f32> = traces
                .iter()
                .flat_map(|t| t.inputs.iter().copied())
                .collect();
            let (voltage, spikes) = simulate_inputs(cfg, traces.len(), &inputs)?;
            let duration_s = cfg.bins() as f64 * cfg.dataset.bin_ms / 1000.0;
            for ((t, v), s) in traces.iter_mut().zip(voltage).zip(spikes) {
                t.rate_hz = (s.iter().map(|&x| x as f64).sum::<f64>() / duration_s) as f32;
                t.voltage = v;
                t.spikes = s;
            }
            Ok(traces)
        })
        .collect();
    let mut out = Vec::with_capacity((range.end - range.start) as usize);
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}
