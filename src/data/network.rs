//! Training traces whose inputs are what cells of a real network receive. The network is run in the
//! exact engine with random connection gains (the range an optimiser will explore), each chosen cell's
//! arriving input is summed per bin and channel, and those inputs are replayed through the dataset's
//! neuron, so every trace has the dataset's meaning: the stored inputs determine the stored voltage.

use super::config::{DatasetConfig, Regime};
use super::generate::{Trace, simulate_inputs};
use super::h5::{DatasetWriter, ShardInfo};
use crate::error::{Result, SurgeError};
use crate::exact::{Sampling, simulate_with_input};
use crate::seed::{rng_for, stream};
use crate::spec::{Connectome, NetworkSpec};
use rand::Rng;
use rand::seq::index::sample;
use std::path::{Path, PathBuf};

/// Seed sub-stream of the gain draws.
const GAINS: u64 = 41;

/// Writes `cfg.dataset.traces` traces drawn from the cells of `populations` of `spec`, `per_run` cells
/// from each run of the network, each run with log-gains uniform in `+-max_abs_log_gain` per
/// connection group and its own seed. The populations' neuron must be the dataset's.
#[allow(clippy::too_many_arguments)]
pub fn generate_from_network(
    cfg: &DatasetConfig,
    config_text: &str,
    spec: &NetworkSpec,
    populations: &[String],
    max_abs_log_gain: f64,
    per_run: usize,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf> {
    let mut pops = Vec::new();
    for name in populations {
        let p = spec.population_index(name).ok_or_else(|| {
            SurgeError::spec(
                "--populations",
                format!("no population `{name}` in network `{}`", spec.name),
                "name populations of the network file",
            )
        })?;
        if spec.populations[p].neuron != cfg.neuron {
            return Err(SurgeError::spec(
                "--populations",
                format!("population `{name}`'s neuron differs from the dataset's [neuron]"),
                "use the population's neuron parameters in the dataset file, so the replayed cell is the network's",
            ));
        }
        pops.push(p);
    }
    if pops.is_empty() || per_run == 0 {
        return Err(SurgeError::spec(
            "--populations",
            "no cells to record",
            "name at least one population and record at least one cell per run",
        ));
    }
    if (spec.simulation.dt_ms - cfg.dataset.dt_ms).abs() > 1e-12 {
        return Err(SurgeError::spec(
            "dataset.dt_ms",
            format!(
                "{} ms, but the network steps {} ms",
                cfg.dataset.dt_ms, spec.simulation.dt_ms
            ),
            "use the network's dt in the dataset file",
        ));
    }
    let (bins, bin_steps, nch) = (cfg.bins(), cfg.bin_steps(), cfg.channel_names().len());
    let total = cfg.dataset.traces as u64;
    let mut writer = DatasetWriter::create(out, cfg, config_text, ShardInfo::of(0, 1, total))?;
    let mut done = 0u64;
    let mut run = 0u64;
    while done < total {
        let mut rng = rng_for(cfg.seed(), &[stream::DATASET, GAINS, run]);
        let mut s = spec.clone();
        s.simulation.seed = Some(cfg.seed().wrapping_mul(1_000_003).wrapping_add(run));
        s.simulation.duration_ms = bins as f64 * cfg.dataset.bin_ms;
        for c in s.connections.iter_mut() {
            c.gain *= (max_abs_log_gain * (2.0 * rng.random::<f64>() - 1.0)).exp();
        }
        let conn = Connectome::build(&s);
        let sampling = Sampling {
            every_steps: bin_steps,
            channels: false,
            input_bin_steps: bin_steps,
        };
        let res = simulate_with_input(&s, &conn, None, sampling, &mut |_, _| {})?;
        let cells: Vec<usize> = pops
            .iter()
            .flat_map(|&p| conn.pop_offsets[p]..conn.pop_offsets[p + 1])
            .collect();
        let take = per_run.min(cells.len()).min((total - done) as usize);
        let chosen: Vec<usize> = sample(&mut rng, cells.len(), take)
            .into_iter()
            .map(|k| cells[k])
            .collect();
        let mut inputs = Vec::with_capacity(take * bins * nch);
        for &c in &chosen {
            for b in 0..bins.min(res.input_bins) {
                let row = &res.binned_inputs[(c * res.input_bins + b) * res.input_channels..];
                inputs.extend_from_slice(&row[..nch]);
            }
        }
        let (voltage, spikes) = simulate_inputs(cfg, take, &inputs)?;
        let duration_s = bins as f64 * cfg.dataset.bin_ms / 1000.0;
        let traces: Vec<Trace> = (0..take)
            .map(|k| Trace {
                index: done + k as u64,
                regime: Regime::Network,
                inputs: inputs[k * bins * nch..(k + 1) * bins * nch].to_vec(),
                rate_hz: (spikes[k].iter().map(|&x| x as f64).sum::<f64>() / duration_s) as f32,
                voltage: voltage[k].clone(),
                spikes: spikes[k].clone(),
                activation_p: vec![f32::NAN; nch],
                n_active: vec![0; nch],
                input_rate_hz: vec![f32::NAN; nch],
                weight_mean: vec![f32::NAN; nch],
                modulation_hz: 0.0,
            })
            .collect();
        writer.append(&traces)?;
        done += take as u64;
        run += 1;
        progress(done, total);
    }
    writer.finish()
}
