//! One experiment run end to end in the exact engine: instantiate, simulate, analyse, write
//! `results.h5`, `metrics.json` and figures. Library code so that tests run it without the CLI.

use crate::error::{Result, SurgeError};
use crate::exact::{self, SimResult, siegert};
use crate::plot::{self, Lines, Raster};
use crate::results::{atomic_write, write_results_h5};
use crate::signal::{self, Psd};
use crate::spec::{Connectome, NetworkSpec};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Frequency range searched for spectral peaks (Hz).
pub const PEAK_RANGE_HZ: (f64, f64) = (2.0, 200.0);
/// Bin of the population-rate traces used for figures and spectra (ms).
pub const RATE_BIN_MS: f64 = 1.0;

#[derive(Debug, Clone, Serialize)]
pub struct PopulationMetrics {
    pub name: String,
    pub size: usize,
    pub rate_hz: f64,
    /// Mean CV of inter-spike intervals over cells with at least 3 spikes (null if none).
    pub cv_isi: Option<f64>,
    /// Mean Fano factor of spike counts in 100 ms windows (null if too short or silent).
    pub fano_100ms: Option<f64>,
    /// Peak of the population-rate spectrum in [2, 200] Hz.
    pub rate_peak_hz: Option<f64>,
    /// Diffusion-approximation rate (current-based networks only).
    pub mean_field_rate_hz: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalMetrics {
    pub name: String,
    pub kind: crate::spec::SignalKind,
    pub mean: f64,
    pub peak_hz: Option<f64>,
    /// Fraction of spectral power (above DC) in the classic bands.
    pub band_fraction: BandFractions,
}

#[derive(Debug, Clone, Serialize)]
pub struct BandFractions {
    pub theta_4_8: f64,
    pub alpha_8_12: f64,
    pub beta_15_30: f64,
    pub gamma_30_60: f64,
    pub beta_gamma_15_60: f64,
}

impl BandFractions {
    fn of(psd: &Psd) -> Self {
        BandFractions {
            theta_4_8: psd.band_fraction(4.0, 8.0),
            alpha_8_12: psd.band_fraction(8.0, 12.0),
            beta_15_30: psd.band_fraction(15.0, 30.0),
            gamma_30_60: psd.band_fraction(30.0, 60.0),
            beta_gamma_15_60: psd.band_fraction(15.0, 60.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WallClock {
    pub build_s: f64,
    pub simulate_s: f64,
    pub write_s: f64,
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub name: String,
    pub seed: u64,
    pub dt_ms: f64,
    pub duration_ms: f64,
    pub n_cells: usize,
    pub n_synapses: usize,
    pub synaptic_events: u64,
    pub populations: Vec<PopulationMetrics>,
    pub signals: Vec<SignalMetrics>,
    pub wall_clock: WallClock,
    pub surge_version: String,
}

/// Analyses a finished run.
pub fn analyse(
    spec: &NetworkSpec,
    conn: &Connectome,
    res: &SimResult,
    build_s: f64,
    simulate_s: f64,
) -> Metrics {
    let duration = res.steps as f64 * res.dt_ms;
    let mf = siegert::mean_field_rates(spec);
    let populations = spec
        .populations
        .iter()
        .enumerate()
        .map(|(p, pop)| {
            let cells = conn.pop_offsets[p]..conn.pop_offsets[p + 1];
            let trains = signal::spike_trains(&res.spike_times_ms, &res.spike_cells, cells.clone());
            let recorded = spec
                .recording
                .spikes
                .as_ref()
                .is_none_or(|l| l.contains(&pop.name));
            let rate = signal::population_rate_hz(
                &res.spike_times_ms,
                &res.spike_cells,
                cells.clone(),
                RATE_BIN_MS,
                duration,
            );
            let psd = signal::welch_psd(&rate, 1000.0 / RATE_BIN_MS, psd_segment(rate.len()));
            PopulationMetrics {
                name: pop.name.clone(),
                size: pop.size,
                rate_hz: signal::mean_rate_hz(&res.spike_counts, cells, duration),
                cv_isi: if recorded {
                    signal::mean_cv_isi(&trains, 3)
                } else {
                    None
                },
                fano_100ms: if recorded {
                    signal::mean_fano(&trains, 100.0, duration)
                } else {
                    None
                },
                rate_peak_hz: if recorded {
                    psd.peak_hz(PEAK_RANGE_HZ.0, PEAK_RANGE_HZ.1)
                } else {
                    None
                },
                mean_field_rate_hz: mf.as_ref().map(|r| r[p]),
            }
        })
        .collect();
    let signals = res
        .signals
        .iter()
        .map(|s| {
            let psd = signal_psd(&s.values, res.dt_ms);
            SignalMetrics {
                name: s.name.clone(),
                kind: s.kind,
                mean: s.values.iter().sum::<f64>() / s.values.len().max(1) as f64,
                peak_hz: psd.peak_hz(PEAK_RANGE_HZ.0, PEAK_RANGE_HZ.1),
                band_fraction: BandFractions::of(&psd),
            }
        })
        .collect();
    Metrics {
        name: spec.name.clone(),
        seed: spec.seed(),
        dt_ms: res.dt_ms,
        duration_ms: duration,
        n_cells: conn.n_cells,
        n_synapses: conn.n_synapses(),
        synaptic_events: res.synaptic_events,
        populations,
        signals,
        wall_clock: WallClock {
            build_s,
            simulate_s,
            write_s: 0.0,
        },
        surge_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Welch segments of half a second (2 Hz resolution), or the whole signal when shorter.
pub fn psd_segment(samples_at_1khz: usize) -> usize {
    samples_at_1khz.min(500)
}

/// A per-step signal averaged into 1 ms bins (the last bin may be shorter): the bins, the steps
/// per bin and the sampling rate (Hz) of the bins.
pub fn bin_signal(values: &[f64], dt_ms: f64) -> (Vec<f64>, usize, f64) {
    let per_bin = (RATE_BIN_MS / dt_ms).round().max(1.0) as usize;
    let binned = values
        .chunks(per_bin)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    (binned, per_bin, 1000.0 / (per_bin as f64 * dt_ms))
}

/// PSD of a per-step signal, averaged into 1 ms bins first (the engines' signals are sampled every dt).
pub fn signal_psd(values: &[f64], dt_ms: f64) -> Psd {
    let (binned, _, fs) = bin_signal(values, dt_ms);
    signal::welch_psd(&binned, fs, psd_segment(binned.len()))
}

/// Where a run's files went.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub results: PathBuf,
    pub metrics: PathBuf,
    pub figures: Vec<PathBuf>,
}

/// Checks that `dir` can take a run's outputs: creates it, refuses to overwrite a previous run unless `force`.
pub fn prepare_out_dir(dir: &Path, force: bool) -> Result<()> {
    let results = dir.join("results.h5");
    if results.exists() && !force {
        return Err(SurgeError::Exists { path: results });
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| SurgeError::io("cannot create output folder", dir, e))?;
    let probe = dir.join(".surge-write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| SurgeError::io("cannot write into output folder", dir, e))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Writes results, metrics and figures of a finished run into `dir` (which must exist).
pub fn write_outputs(
    dir: &Path,
    spec: &NetworkSpec,
    config_text: &str,
    conn: &Connectome,
    res: &SimResult,
    metrics: &mut Metrics,
) -> Result<Outputs> {
    let t0 = Instant::now();
    let results = dir.join("results.h5");
    write_results_h5(&results, spec, config_text, conn, res)?;
    let mut figures = Vec::new();
    let duration = res.steps as f64 * res.dt_ms;
    let names: Vec<String> = spec.populations.iter().map(|p| p.name.clone()).collect();
    figures.extend(plot::save(
        &Raster {
            title: format!("{}: spikes", spec.name),
            times_ms: &res.spike_times_ms,
            cells: &res.spike_cells,
            pop_names: &names,
            pop_offsets: &conn.pop_offsets,
            duration_ms: duration,
            max_per_pop: 100,
        },
        &dir.join("raster"),
    )?);
    let rates: Vec<Vec<f64>> = (0..names.len())
        .map(|p| {
            signal::population_rate_hz(
                &res.spike_times_ms,
                &res.spike_cells,
                conn.pop_offsets[p]..conn.pop_offsets[p + 1],
                RATE_BIN_MS,
                duration,
            )
        })
        .collect();
    let t_axis: Vec<f64> = (0..rates.first().map_or(0, |r| r.len()))
        .map(|i| (i as f64 + 0.5) * RATE_BIN_MS)
        .collect();
    figures.extend(plot::save(
        &Lines {
            title: format!("{}: population rate ({} ms bins)", spec.name, RATE_BIN_MS),
            x_desc: "time (ms)".into(),
            y_desc: "rate (Hz)".into(),
            series: names
                .iter()
                .zip(&rates)
                .map(|(n, r)| (n.clone(), t_axis.as_slice(), r.as_slice()))
                .collect(),
            log_y: false,
            x_range: None,
        },
        &dir.join("rates"),
    )?);
    let mut psds: Vec<(String, Psd)> = names
        .iter()
        .zip(&rates)
        .map(|(n, r)| {
            (
                format!("rate {n}"),
                signal::welch_psd(r, 1000.0 / RATE_BIN_MS, psd_segment(r.len())),
            )
        })
        .collect();
    for s in &res.signals {
        psds.push((
            format!("signal {}", s.name),
            signal_psd(&s.values, res.dt_ms),
        ));
    }
    figures.extend(plot::save(
        &Lines {
            title: format!("{}: power spectra (Welch, Hann)", spec.name),
            x_desc: "frequency (Hz)".into(),
            y_desc: "power / Hz".into(),
            series: psds
                .iter()
                .map(|(n, p)| (n.clone(), p.freqs_hz.as_slice(), p.power.as_slice()))
                .collect(),
            log_y: true,
            x_range: Some((1.0, PEAK_RANGE_HZ.1)),
        },
        &dir.join("psd"),
    )?);
    metrics.wall_clock.write_s = t0.elapsed().as_secs_f64();
    let metrics_path = dir.join("metrics.json");
    let json = serde_json::to_string_pretty(metrics).expect("metrics serialise");
    atomic_write(&metrics_path, json.as_bytes())?;
    Ok(Outputs {
        results,
        metrics: metrics_path,
        figures,
    })
}

/// Builds the connectome and simulates; returns the result and the wall-clock seconds of both phases.
pub fn build_and_simulate(
    spec: &NetworkSpec,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Connectome, SimResult, f64, f64)> {
    let t0 = Instant::now();
    let conn = Connectome::build(spec);
    let build_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let res = exact::simulate(spec, &conn, progress)?;
    Ok((conn, res, build_s, t1.elapsed().as_secs_f64()))
}
