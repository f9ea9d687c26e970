//! `surge bench hnn`: hnn-core's 270-cell column (experiments/hnn_column.toml) in the exact engine
//! on one thread, and with `--reference hnn` the same column in hnn-core/NEURON
//! (benches/reference/hnn_column.py) on the same drive statistics and seeds: wall time, population
//! rates and the dipole's spectral peak, side by side, all analysed by the same code.

use super::{Row, python_reference};
use anyhow::{Result, bail};
use serde::Serialize;
use std::time::Instant;
use surge::experiment::{PEAK_RANGE_HZ, psd_segment, signal_psd};
use surge::signal;
use surge::spec::{Connectome, NetworkSpec};

/// One run of the column: wall time of the simulation, rate per population (Hz), dipole peak (Hz).
#[derive(Debug, Clone, Serialize)]
pub struct ColumnRun {
    pub seed: u64,
    pub simulate_s: f64,
    pub rates_hz: Vec<f64>,
    pub dipole_peak_hz: Option<f64>,
    /// The dipole's spectrum (1 ms bins, Welch): frequencies and power.
    pub dipole_psd: (Vec<f64>, Vec<f64>),
}

/// The populations of the column, in the reference's names.
pub const POPULATIONS: [(&str, &str); 4] = [
    ("L2_pyr", "L2_pyramidal"),
    ("L2_basket", "L2_basket"),
    ("L5_pyr", "L5_pyramidal"),
    ("L5_basket", "L5_basket"),
];

fn column(duration_ms: f64, seed: u64) -> Result<NetworkSpec> {
    let mut spec = NetworkSpec::from_toml_str(
        surge::shipped::HNN_COLUMN,
        "shipped experiments/hnn_column.toml",
    )?;
    spec.simulation.duration_ms = duration_ms;
    spec.simulation.seed = Some(seed);
    spec.recording.spikes = Some(Vec::new());
    spec.recording.signals.retain(|s| s.name == "dipole");
    spec.validate()?;
    Ok(spec)
}

/// Surge's run of the column.
pub fn surge_run(duration_ms: f64, seed: u64) -> Result<ColumnRun> {
    let spec = column(duration_ms, seed)?;
    let conn = Connectome::build(&spec);
    let pb = super::bar(spec.steps() as u64, &format!("hnn column, seed {seed}"));
    let t0 = Instant::now();
    let res = surge::exact::simulate(&spec, &conn, &mut |d, _| pb.set_position(d))?;
    let simulate_s = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let rates_hz = (0..spec.populations.len())
        .map(|p| {
            signal::mean_rate_hz(
                &res.spike_counts,
                conn.pop_offsets[p]..conn.pop_offsets[p + 1],
                duration_ms,
            )
        })
        .collect();
    let psd = signal_psd(&res.signals[0].values, res.dt_ms);
    Ok(ColumnRun {
        seed,
        simulate_s,
        rates_hz,
        dipole_peak_hz: psd.peak_hz(PEAK_RANGE_HZ.0, PEAK_RANGE_HZ.1),
        dipole_psd: (psd.freqs_hz, psd.power),
    })
}

/// hnn-core's run of the same column and drives (`$SURGE_PYTHON`, default python3).
pub fn hnn_run(duration_ms: f64, seed: u64) -> Result<ColumnRun> {
    let python = std::env::var("SURGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let spec = column(duration_ms, seed)?;
    let drive = &spec.drives[0];
    let v = python_reference(
        &python,
        "hnn_column.py",
        &[
            format!("--duration-ms={duration_ms}"),
            format!("--seed={seed}"),
            format!("--rate-hz={}", drive.rate_hz.unwrap_or(0.0)),
            format!("--weight-us={}", drive.weight.unwrap_or(0.0) * 1e-3),
        ],
        "install hnn-core in a Python environment (`pip install hnn-core`) and point \
         SURGE_PYTHON at its python",
    )?;
    let rates_hz = POPULATIONS
        .iter()
        .zip(&spec.populations)
        .map(|((_, theirs), p)| {
            v["counts"][theirs].as_f64().unwrap_or(f64::NAN) / p.size as f64
                / (duration_ms / 1000.0)
        })
        .collect();
    let dipole: Vec<f64> = v["dipole_1ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    if dipole.is_empty() {
        bail!("the hnn-core reference returned no dipole");
    }
    let psd = signal::welch_psd(&dipole, 1000.0, psd_segment(dipole.len()));
    Ok(ColumnRun {
        seed,
        simulate_s: v["simulate_s"].as_f64().unwrap_or(f64::NAN),
        rates_hz,
        dipole_peak_hz: psd.peak_hz(PEAK_RANGE_HZ.0, PEAK_RANGE_HZ.1),
        dipole_psd: (psd.freqs_hz, psd.power),
    })
}

fn mean(x: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = x.collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// A timing row for the table of `surge bench`.
fn row(what: &str, runs: &[ColumnRun], duration_ms: f64) -> Row {
    let wall = mean(runs.iter().map(|r| r.simulate_s));
    Row {
        case: what.into(),
        setup_s: 0.0,
        wall_s: wall,
        biological_s: duration_ms / 1000.0,
        realtime_factor: wall / (duration_ms / 1000.0),
        throughput: 270.0 * duration_ms / 0.025 / wall,
        throughput_unit: "cell-steps/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    }
}

/// The report `--json` prints and the comparison table.
#[derive(Serialize)]
pub struct Report {
    pub duration_ms: f64,
    pub surge: Vec<ColumnRun>,
    pub hnn_core: Vec<ColumnRun>,
}

/// Runs the case for `seeds`; returns the timing rows and the report.
pub fn run(duration_ms: f64, seeds: u64, reference: bool) -> Result<(Vec<Row>, Report)> {
    let mut surge = Vec::new();
    let mut hnn = Vec::new();
    for seed in 1..=seeds {
        surge.push(surge_run(duration_ms, seed)?);
        if reference {
            hnn.push(hnn_run(duration_ms, seed)?);
        }
    }
    let mut rows = vec![row(
        "hnn column, exact engine (270 cells, 1 thread)",
        &surge,
        duration_ms,
    )];
    if reference {
        rows.push(row("hnn-core + NEURON (1 process)", &hnn, duration_ms));
    }
    Ok((
        rows,
        Report {
            duration_ms,
            surge,
            hnn_core: hnn,
        },
    ))
}

/// Prints rates and dipole peaks side by side (means over seeds).
pub fn print_comparison(r: &Report) {
    let fmt_peaks = |runs: &[ColumnRun]| {
        runs.iter()
            .map(|x| x.dipole_peak_hz.map_or("-".into(), |p| format!("{p:.0}")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("{:<12} {:>14} {:>14} {:>10}", "population", "Surge Hz", "hnn-core Hz", "diff");
    for (k, (name, _)) in POPULATIONS.iter().enumerate() {
        let ours = mean(r.surge.iter().map(|x| x.rates_hz[k]));
        if r.hnn_core.is_empty() {
            println!("{name:<12} {ours:>14.2}");
            continue;
        }
        let theirs = mean(r.hnn_core.iter().map(|x| x.rates_hz[k]));
        println!(
            "{name:<12} {ours:>14.2} {theirs:>14.2} {:>9.1}%",
            100.0 * (ours - theirs) / theirs
        );
    }
    println!(
        "dipole peak Hz per seed: Surge {}; of the mean spectrum {}",
        fmt_peaks(&r.surge),
        mean_peak(&r.surge).map_or("-".into(), |p| format!("{p:.0}"))
    );
    if !r.hnn_core.is_empty() {
        println!(
            "                      hnn-core {}; of the mean spectrum {}",
            fmt_peaks(&r.hnn_core),
            mean_peak(&r.hnn_core).map_or("-".into(), |p| format!("{p:.0}"))
        );
    }
}

/// The peak of the dipole spectrum averaged over the runs.
pub fn mean_peak(runs: &[ColumnRun]) -> Option<f64> {
    let first = runs.first()?;
    let psd = signal::Psd {
        freqs_hz: first.dipole_psd.0.clone(),
        power: (0..first.dipole_psd.1.len())
            .map(|i| mean(runs.iter().map(|r| r.dipole_psd.1[i])))
            .collect(),
    };
    psd.peak_hz(PEAK_RANGE_HZ.0, PEAK_RANGE_HZ.1)
}
