//! `surge export sonata`: the network instance Surge would simulate, in SONATA for NEST.

use super::ui::{ExchangeFormat, OutDir};
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use surge::spec::{Connectome, NetworkSpec};

#[derive(clap::Args)]
pub struct Args {
    /// The format (only `sonata`).
    #[arg(value_enum)]
    format: ExchangeFormat,
    /// Experiment file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Apply the connection gains of an optimisation (its gains.json).
    #[arg(long)]
    gains: Option<PathBuf>,
    /// Apply the per-synapse weights of an exact-engine optimisation (its synapses.json).
    #[arg(long)]
    synapses: Option<PathBuf>,
    /// Override the experiment's seed (the connectome and initial voltages follow it).
    #[arg(long)]
    seed: Option<u64>,
    /// Map features NEST has no model for to the closest one (listed in the export's README).
    #[arg(long)]
    approximate: bool,
    /// Output folder (must not exist unless --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing output folder.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    let (mut spec, _) = NetworkSpec::load(&args.config)?;
    if let Some(s) = args.seed {
        spec.simulation.seed = Some(s);
    }
    if let Some(g) = &args.gains {
        let gains = surge::netopt::job::read_gains(g, spec.connections.len())?;
        spec = surge::netopt::optimize::apply_gains(&spec, &gains);
    }
    spec.validate().context("after applying command-line overrides")?;
    if args.out.exists() {
        if !args.force {
            bail!(
                "{} exists. Fix: choose another --out, or pass --force to replace it",
                args.out.display()
            );
        }
        std::fs::remove_dir_all(&args.out)
            .with_context(|| format!("cannot remove {}", args.out.display()))?;
    }
    let guard = OutDir::guard(&args.out);
    let mut conn = Connectome::build(&spec);
    if let Some(p) = &args.synapses {
        conn = surge::netopt::job::apply_synapses_file(p, &conn)?;
    }
    let e = surge::sonata::export(&spec, &conn, &args.out, args.approximate)?;
    guard.keep();
    println!(
        "{}: {} nodes, {} edges in SONATA under {}",
        spec.name,
        e.nodes,
        e.edges,
        e.dir.display()
    );
    for c in &e.changes {
        println!("changed for NEST: {c}");
    }
    Ok(())
}
