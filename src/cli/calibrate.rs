//! `surge calibrate`: a checkpoint's spike threshold set so that it calls as many spikes as the exact
//! neuron on training data, and the logit's width at threshold crossings measured (the spike
//! surrogate's unit); both saved in its surrogate.json.

use super::ui::Backend;
use anyhow::Result;
use std::path::PathBuf;
use surge::surrogate::eval::Calibration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Training data (not the held-out set).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// At most this many traces are used.
    #[arg(long, default_value_t = 256)]
    pub traces: usize,
    /// Keep the stored threshold; only measure the logit's width at it.
    #[arg(long)]
    pub keep_threshold: bool,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
}

pub fn run(args: Args) -> Result<Calibration> {
    let device = args.backend.device()?;
    let c = surge::surrogate::eval::calibrate(
        &args.checkpoint,
        &args.data,
        args.traces,
        args.keep_threshold,
        &device,
    )?;
    println!(
        "spike-logit threshold {:.3}{}: {} exact spikes; at threshold 0 the surrogate called {}. \
         Logit rise per bin at threshold crossings (median): {:.3}. Saved in {}",
        c.threshold,
        if args.keep_threshold { " (kept)" } else { "" },
        c.exact_spikes,
        c.at_zero,
        c.width,
        args.checkpoint.join("surrogate.json").display()
    );
    Ok(c)
}
