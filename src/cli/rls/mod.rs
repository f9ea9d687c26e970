//! `surge rls`: networks trained by recursive least squares (Kim & Chow): `rate` (Part 1), `spiking`
//! (Part 2), `balanced` (Part 3).

pub mod balanced;

use super::ui::{OutDir, bar};
use anyhow::Result;
use std::path::{Path, PathBuf};
use surge::rls::force;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    part: Part,
}

#[derive(clap::Subcommand)]
enum Part {
    /// Part 1: a rate network whose units' recurrent inputs learn phase-shifted sines.
    Rate(SmallArgs),
    /// Part 2: 100 LIF neurons learn slow target inputs.
    Spiking(SmallArgs),
    /// Part 3: a balanced E-I network trained to recorded ALM activity (resumable).
    Balanced(balanced::Args),
}

/// Options of Parts 1 and 2 (they run in seconds).
#[derive(clap::Args)]
pub struct SmallArgs {
    /// TOML file with the part's parameters (any omitted take the published defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder [default: experiments/out/rls-<part>/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the number of training loops.
    #[arg(long)]
    pub loops: Option<usize>,
}

pub fn run(args: Args) -> Result<()> {
    match args.part {
        Part::Rate(a) => small(SmallPart::Rate, a).map(drop),
        Part::Spiking(a) => small(SmallPart::Spiking, a).map(drop),
        Part::Balanced(a) => balanced::run(a),
    }
}

/// Parts 1 and 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmallPart {
    Rate,
    Spiking,
}

/// Runs Part 1 or 2; returns the test-trial mean Pearson r.
pub fn small(part: SmallPart, args: SmallArgs) -> Result<f64> {
    let name = match part {
        SmallPart::Rate => "rate",
        SmallPart::Spiking => "spiking",
    };
    let SmallArgs { config, out, loops } = args;
    let dir = out.unwrap_or_else(|| Path::new("experiments/out").join(format!("rls-{name}")));
    let t0 = std::time::Instant::now();
    let (json, per_loop, test_r) = match part {
        SmallPart::Rate => {
            let c = force::RateRnnConfig::load(config.as_deref(), loops)?;
            let pb = bar(c.loops as u64, "rls rate");
            let r = force::train_rate_rnn(&c, &mut |d, _| pb.set_position(d));
            pb.finish_and_clear();
            (
                serde_json::json!({ "config": c, "result": r }),
                Vec::new(),
                r.mean_test_r,
            )
        }
        SmallPart::Spiking => {
            let c = force::SpikingRlsConfig::load(config.as_deref(), loops)?;
            let pb = bar(c.loops as u64, "rls spiking");
            let r = force::train_spiking(&c, &mut |d, _| pb.set_position(d));
            pb.finish_and_clear();
            let per = r.train_r.clone();
            (
                serde_json::json!({ "config": c, "result": r }),
                per,
                r.mean_test_r,
            )
        }
    };
    let wall = t0.elapsed().as_secs_f64();
    let out_dir = OutDir::create(&dir)?;
    let mut json = json;
    json["wall_clock_s"] = serde_json::json!(wall);
    surge::results::atomic_write(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!("RLS {name}: test-trial mean Pearson r {test_r:.4} ({wall:.1} s)");
    if !per_loop.is_empty() {
        let figs = surge::plot::reports::correlation_per_loop(
            &format!("RLS {name}: training-trial correlation per loop"),
            &per_loop,
            &dir.join("correlation"),
        )?;
        println!("figure:  {}", figs[1].display());
    }
    out_dir.keep();
    println!("metrics: {}", dir.join("metrics.json").display());
    Ok(test_r)
}
