//! `surge eval`: held-out metrics of a checkpoint, written to metrics.json, with trace figures.

use super::ui::{Backend, OutDir};
use anyhow::Result;
use std::path::PathBuf;
use surge::surrogate::eval::EvalMetrics;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// Folder for metrics.json and figures [default: <checkpoint>/eval].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
}

pub fn run(args: Args) -> Result<EvalMetrics> {
    let Args {
        checkpoint,
        data,
        out,
        backend,
    } = args;
    let device = backend.device()?;
    let (m, examples) = surge::surrogate::eval::evaluate(&checkpoint, &data, &device)?;
    let dir = out.unwrap_or_else(|| checkpoint.join("eval"));
    let out_dir = OutDir::create(&dir)?;
    surge::results::atomic_write(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )?;
    println!("{} held-out traces", m.traces);
    println!(
        "voltage RMSE {:.3} mV (subthreshold bins {:.3} mV), r {:.4}",
        m.voltage_rmse_mv, m.subthreshold_rmse_mv, m.voltage_r
    );
    println!(
        "spikes: precision {:.3}, recall {:.3}, F1 {:.3} at +-{} ms; coincidence factor {:.3}",
        m.spike_precision,
        m.spike_recall,
        m.spike_f1,
        surge::surrogate::eval::SPIKE_TOL_MS,
        m.coincidence_gamma
    );
    println!(
        "rate: exact {:.2} Hz, predicted {:.2} Hz, mean |error| {:.2} Hz",
        m.rate_exact_hz, m.rate_predicted_hz, m.rate_abs_error_hz
    );
    for (k, (t, p)) in examples.iter().enumerate() {
        let fig = surge::plot::reports::trace_vs_surrogate(&dir.join(format!("trace_{k}")), t, p, m.bin_ms)?;
        println!("figure: {}", fig.display());
    }
    out_dir.keep();
    println!("metrics: {}", dir.join("metrics.json").display());
    Ok(m)
}

