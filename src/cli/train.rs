//! `surge train`: trains (or fine-tunes) a surrogate, prints the learning curve, draws it.

use super::ui::{Backend, OutDir, bar};
use anyhow::Result;
use std::path::PathBuf;
use surge::surrogate::train::{SurrogateMeta, TrainHow};

#[derive(clap::Args)]
pub struct Args {
    /// Dataset files, read as one set.
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// Checkpoint folder to write (model.bpk, surrogate.json, learning curve).
    #[arg(long)]
    pub out: PathBuf,
    /// Surrogate experiment file ([arch], [training]) [default: built-in defaults, seed 1].
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// Override the number of epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Overwrite an existing checkpoint folder.
    #[arg(long)]
    pub force: bool,
    /// Continue an interrupted run in --out from its last finished epoch.
    #[arg(long)]
    pub resume: bool,
    /// Fine-tune this checkpoint folder (its architecture, scaling and weights) instead of starting
    /// from a fresh model; the data must have its channels and bin width.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// On a CPU backend, take each step's gradient from burn's autodiff instead of the fused
    /// CPU step (same loss and gradient, several times slower; GPU backends always use autodiff).
    #[arg(long)]
    pub autodiff: bool,
}

pub fn run(args: Args) -> Result<SurrogateMeta> {
    let Args {
        data,
        out,
        config,
        backend,
        epochs,
        force,
        resume,
        init,
        autodiff,
    } = args;
    let (arch, mut tc) = match &config {
        Some(p) => {
            let e = surge::surrogate::train::SurrogateExperiment::load(p)?;
            (e.arch, e.training)
        }
        None => (None, surge::surrogate::train::TrainConfig::new(1)),
    };
    if let Some(e) = epochs {
        tc.epochs = e;
    }
    if init.is_some() {
        tc.init = init;
    }
    tc.validate()?;
    if out.join("model.bpk").exists() && !force && !resume {
        anyhow::bail!(
            "{} already holds a checkpoint. Fix: choose another --out or pass --force",
            out.display()
        );
    }
    let device = backend.device()?;
    // A failed first run leaves no folder; an interrupted one keeps its state to resume.
    let out_dir = OutDir::guard(&out);
    let pb = bar(tc.epochs as u64, "train");
    let result = surge::surrogate::train::train(
        &data,
        arch,
        &tc,
        &out,
        &device,
        TrainHow {
            fused: !autodiff && backend.is_cpu(),
            resume,
        },
        &mut |e, _, vl| {
            pb.set_position(e as u64);
            pb.set_message(format!("val {vl:.4}"));
            true
        },
    );
    pb.finish_and_clear();
    // A finished epoch's checkpoint is worth keeping even when a later one fails.
    if result.is_ok() || out.join("model.bpk").exists() {
        out_dir.keep();
    }
    let meta = result?;
    let figs = surge::plot::reports::learning_curve(&meta, &out.join("learning_curve"))?;
    println!(
        "{:>6} {:>11} {:>11} {:>13} {:>13}",
        "epoch", "train loss", "val loss", "val V MSE", "val spike BCE"
    );
    for e in &meta.epochs {
        println!(
            "{:>6} {:>11.4} {:>11.4} {:>13.4} {:>13.4}",
            e.epoch, e.train_loss, e.val_loss, e.val_voltage_mse, e.val_spike_bce
        );
    }
    println!(
        "best epoch {}; checkpoint {}",
        meta.best_epoch,
        out.display()
    );
    for f in figs {
        println!("figure: {}", f.display());
    }
    Ok(meta)
}

