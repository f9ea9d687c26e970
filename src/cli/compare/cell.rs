//! `surge compare cell`: one surrogate checkpoint against the exact neuron on the same inputs. The
//! exact cell is re-run from the inputs stored in the data file (so both sides are timed on the same
//! work, and the replay is checked against the stored voltage), the surrogate predicts from the same
//! inputs; the report puts traces, rates, ISI variability, voltage spectra and wall times side by side.

use super::super::ui::{Backend, OutDir, print_outputs};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;
use surge::data::DatasetConfig;
use surge::data::h5::TraceData;
use surge::surrogate::eval::{self, Prediction, Scorer};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "checkpoints/lif-default/pyramidal")]
    pub checkpoint: PathBuf,
    /// Data file(s) written by `surge gen` (held-out traces).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// How many traces (from the first).
    #[arg(long, default_value_t = 64)]
    pub traces: usize,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// Output folder [default: <checkpoint>/compare-cell/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(
        args.traces > 0,
        "--traces 0 compares nothing. Fix: give at least 1"
    );
    let device = args.backend.device()?;
    let (model, meta) = surge::surrogate::train::load_checkpoint(&args.checkpoint, &device)?;
    let reader = surge::data::DatasetReader::open(&args.data)?;
    eval::check_compatible(&meta, &reader, &args.checkpoint)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.checkpoint.join("compare-cell"));
    let report_path = dir.join("report.json");
    if report_path.exists() && !args.force {
        anyhow::bail!(
            "{} already holds a comparison. Fix: --force to overwrite, or another --out",
            dir.display()
        );
    }
    let cfg = DatasetConfig::from_toml_str(&reader.config, "the data file's stored config")
        .with_context(|| {
            format!(
                "{} does not carry a config Surge can re-run. Fix: use a file written by `surge gen`",
                args.data[0].display()
            )
        })?;
    anyhow::ensure!(
        cfg.bins() == reader.bins && (cfg.dataset.bin_ms - reader.bin_ms).abs() < 1e-12,
        "the stored config gives {} bins of {} ms, the file holds {} of {} ms. Fix: use an unmodified file written by `surge gen`",
        cfg.bins(),
        cfg.dataset.bin_ms,
        reader.bins,
        reader.bin_ms
    );
    let n = args.traces.min(reader.n_traces());
    let traces: Vec<TraceData> = (0..n)
        .map(|i| reader.read(i))
        .collect::<surge::error::Result<_>>()?;
    let out_dir = OutDir::create(&dir)?;

    // The exact neuron on the stored inputs, all traces in one run (one cell per trace).
    let inputs: Vec<f32> = traces.iter().flat_map(|t| t.inputs.clone()).collect();
    let t0 = Instant::now();
    let (voltage, _) = surge::data::generate::simulate_inputs(&cfg, n, &inputs)?;
    let exact_s = t0.elapsed().as_secs_f64();
    let replay_dv = voltage
        .iter()
        .zip(&traces)
        .flat_map(|(v, t)| v.iter().zip(&t.voltage).map(|(a, b)| (a - b).abs()))
        .fold(0.0f32, f32::max);

    let t1 = Instant::now();
    let mut preds: Vec<Prediction> = Vec::with_capacity(n);
    for chunk in traces.chunks(16) {
        preds.extend(eval::predict(&model, &meta, chunk, &device));
    }
    let surrogate_s = t1.elapsed().as_secs_f64();

    let mut scorer = Scorer::new(&meta);
    let skip = scorer.skip();
    let (mut exact_trains, mut model_trains) = (Vec::new(), Vec::new());
    for (t, p) in traces.iter().zip(&preds) {
        scorer.add(t, p);
        let (e, m) = scorer.scored_spikes(t, p);
        exact_trains.push(e);
        model_trains.push(m);
    }
    let metrics = scorer.finish();
    let cv = |trains: &[Vec<f64>]| surge::signal::mean_cv_isi(trains, 3);
    let scored =
        |v: &[f32]| -> Vec<f64> { v[skip.min(v.len())..].iter().map(|&x| x as f64).collect() };
    let surge::signal::Psd {
        freqs_hz: freqs,
        power: p_exact,
    } = surge::signal::mean_welch_psd(
        &traces
            .iter()
            .map(|t| scored(&t.voltage))
            .collect::<Vec<_>>(),
        meta.bin_ms,
    );
    let p_model = surge::signal::mean_welch_psd(
        &preds.iter().map(|p| scored(&p.voltage)).collect::<Vec<_>>(),
        meta.bin_ms,
    )
    .power;
    let simulated_s = n as f64 * reader.bins as f64 * reader.bin_ms / 1000.0;

    println!(
        "{n} traces of {:.0} ms from {}",
        reader.bins as f64 * reader.bin_ms,
        args.data[0].display()
    );
    println!("{:<26} {:>12} {:>12}", "", "exact", "surrogate");
    println!(
        "{:<26} {:>9.2} Hz {:>9.2} Hz",
        "mean rate", metrics.rate_exact_hz, metrics.rate_predicted_hz
    );
    let fmt_cv = |c: Option<f64>| c.map_or("-".into(), |c| format!("{c:.3}"));
    println!(
        "{:<26} {:>12} {:>12}",
        "CV of ISI",
        fmt_cv(cv(&exact_trains)),
        fmt_cv(cv(&model_trains))
    );
    println!(
        "{:<26} {:>10.3} s {:>10.3} s",
        "wall time", exact_s, surrogate_s
    );
    println!(
        "voltage RMSE {:.3} mV (subthreshold {:.3} mV), r {:.4}; spikes F1 {:.3}, coincidence factor {:.3}",
        metrics.voltage_rmse_mv,
        metrics.subthreshold_rmse_mv,
        metrics.voltage_r,
        metrics.spike_f1,
        metrics.coincidence_gamma
    );
    println!(
        "the exact replay of the stored inputs matches the stored voltage within {replay_dv:.2e} mV"
    );

    let report = serde_json::json!({
        "checkpoint": args.checkpoint.display().to_string(),
        "data": args.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "data_seed": reader.seed,
        "traces": n,
        "simulated_s": simulated_s,
        "metrics": metrics,
        "exact": {"rate_hz": metrics.rate_exact_hz, "cv_isi": cv(&exact_trains), "wall_s": exact_s},
        "surrogate": {"rate_hz": metrics.rate_predicted_hz, "cv_isi": cv(&model_trains), "wall_s": surrogate_s, "backend": args.backend.name()},
        "replay_max_abs_dv_mv": replay_dv,
        "voltage_psd": {"freqs_hz": freqs, "exact": p_exact, "surrogate": p_model},
    });
    surge::results::atomic_write(
        &report_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let mut figures = surge::plot::save(
        &surge::plot::Lines {
            title: format!("Voltage spectrum, mean of {n} traces"),
            x_desc: "frequency (Hz)".into(),
            y_desc: "power (mV^2/Hz)".into(),
            series: vec![
                ("exact".into(), freqs.as_slice(), p_exact.as_slice()),
                ("surrogate".into(), freqs.as_slice(), p_model.as_slice()),
            ],
            log_y: true,
            x_range: Some((0.0, 200.0)),
        },
        &dir.join("voltage_spectra"),
    )?;
    for (k, (t, p)) in traces.iter().zip(&preds).take(2).enumerate() {
        figures.push(surge::plot::reports::trace_vs_surrogate(
            &dir.join(format!("trace_{k}")),
            t,
            p,
            meta.bin_ms,
        )?);
    }
    out_dir.keep();
    print_outputs(&report_path, &figures);
    Ok(())
}
