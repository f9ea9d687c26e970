//! `surge optimize`: gradient descent over connection gains through the surrogate network, then the
//! exact re-check on held-out instances; prints what the run wrote (metrics.json, gains.json, figures).

use super::ui::{Backend, bar, hz, in_out_dir};
use anyhow::Result;
use std::path::{Path, PathBuf};
use surge::netopt::job::{self, Control, Event, Job, Outcome};

/// Controls of `surge optimize`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ControlArg {
    /// Steps of the same size in random directions.
    RandomSign,
}

#[derive(clap::Args)]
pub struct Args {
    /// Optimisation experiment (network, cell types, objective, optimizer, re-check).
    #[arg(long)]
    pub config: PathBuf,
    /// Folder with one surrogate checkpoint per cell type (`<checkpoint>/<type>/`).
    #[arg(long, default_value = "checkpoints/lif-default")]
    pub checkpoint: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// Output folder [default: experiments/out/<config name>/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the number of iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Continue the run in --out from its last iteration.
    #[arg(long)]
    pub resume: bool,
    /// Start over even if --out holds a run.
    #[arg(long)]
    pub force: bool,
    /// `random-sign`: the control run. Same loop, windows, step sizes and selection, but every
    /// parameter steps in a random direction; it must do clearly worse than the gradient.
    #[arg(long, value_enum)]
    pub control: Option<ControlArg>,
    /// Optimiser seed (the iterations' drive noise and the control's signs) [default: the file's].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Draw the held-out instances of the exact re-check from this seed (instead of the file's
    /// recheck.seeds): fresh instances, never seen while choosing settings.
    #[arg(long)]
    pub heldout_seed: Option<u64>,
    /// How many held-out instances --heldout-seed draws.
    #[arg(long, default_value_t = 10, requires = "heldout_seed")]
    pub heldout: usize,
    /// Override optimizer.spike_beta (the surrogate gradient's scale, in calibrated logit widths).
    #[arg(long)]
    pub spike_beta: Option<f32>,
    /// Override optimizer.engine: `exact` differentiates the exact engine itself (no checkpoint
    /// needed); `auto`, `fused` or `burn` the surrogate network.
    #[arg(long)]
    pub engine: Option<String>,
}

pub fn run(args: Args) -> Result<Outcome> {
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .config
            .file_stem()
            .map_or("optimize".into(), |s| s.to_string_lossy().into_owned());
        Path::new("experiments/out").join(stem)
    });
    let job = Job {
        config: args.config,
        checkpoint: args.checkpoint,
        backend: args.backend.name().into(),
        out,
        iterations: args.iterations,
        control: args.control.map(|ControlArg::RandomSign| Control::RandomSign),
        seed: args.seed,
        heldout: args.heldout_seed.map(|s| (s, args.heldout)),
        spike_beta: args.spike_beta,
        engine: args.engine,
        resume: args.resume,
        force: args.force,
    };
    let o = in_out_dir(
        &job.out,
        |d| d.join("progress.json").exists(),
        || Ok(job::run(&job, &mut progress())?),
    )?;
    print(&o);
    Ok(o)
}

/// A progress bar over the iterations, then over the exact re-check.
fn progress() -> impl FnMut(Event) {
    let mut pb = bar(0, "optimize");
    move |e| match e {
        Event::Resumed(done) => {
            pb.println(format!("resuming after iteration {done}"));
            pb.set_position(done as u64);
        }
        Event::Iterations(n) => pb.set_length(n as u64),
        Event::Iteration(rec) => {
            pb.set_message(format!("score {:.3} peak {}", rec.band_score, hz(rec.peak_hz)));
            pb.set_position(rec.iteration as u64 + 1);
        }
        Event::ExactCheck(done, total) => {
            if done == 1 {
                pb.finish_and_clear();
                pb = bar(total as u64, "exact check");
            }
            pb.set_position(done as u64);
            if done == total {
                pb.finish_and_clear();
            }
        }
    }
}

fn print(o: &Outcome) {
    if let Some(s) = &o.selected {
        println!(
            "selected iteration {} of {}: exact validation loss {:.3}, band fraction {:.3} (seeds {:?})",
            s.iteration + 1,
            s.of,
            s.validation_loss,
            s.validation_band_fraction,
            s.validation_seeds
        );
    }
    if let Some(p) = &o.per_synapse {
        println!(
            "per-synapse weights: {} synapses, rms log-weight {:.3} ({}); the exact engine re-ran this connectome",
            p.n,
            p.rms_log_weight,
            p.path.display()
        );
    }
    let (lo, hi) = o.config.objective.band_hz;
    let descended = if o.config.optimizer.engine == "exact" {
        "exact engine, differentiated"
    } else {
        "surrogate engine"
    };
    println!(
        "{descended} ({} iterations, {:.0} s): band score {:.3} -> {:.3}, peak {} -> {}",
        o.iterations,
        o.optimize_s,
        o.surrogate_before.band_score,
        o.surrogate_after.band_score,
        hz(o.surrogate_before.peak_hz),
        hz(o.surrogate_after.peak_hz)
    );
    println!(
        "exact engine, held-out seeds ({:.0} s), band {lo}-{hi} Hz:",
        o.exact_s
    );
    println!(
        "{:>6} {:>14} {:>14} {:>10} {:>10}  rates after (Hz)",
        "seed", "fraction before", "fraction after", "peak bef.", "peak aft."
    );
    for ((b, a), ok) in o.exact_before.iter().zip(&o.exact_after).zip(&o.passed) {
        println!(
            "{:>6} {:>14.3} {:>14.3} {:>10} {:>10}  {:?} {}",
            b.seed,
            b.band_fraction,
            a.band_fraction,
            hz(b.peak_hz),
            hz(a.peak_hz),
            a.rates_hz
                .iter()
                .map(|r| (r * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            if *ok { "passes" } else { "fails" }
        );
    }
    println!(
        "bar met on {} of {} held-out seeds",
        o.seeds_passing(),
        o.passed.len()
    );
    println!(
        "metrics: {}\ngains:   {}",
        o.metrics.display(),
        o.gains.display()
    );
}
