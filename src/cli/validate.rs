//! `surge validate`: check an experiment file and print what it describes, without running it.

use anyhow::Result;
use std::path::PathBuf;
use surge::spec::{Connectome, NetworkSpec};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    config: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let (spec, _) = NetworkSpec::load(&args.config)?;
    let conn = Connectome::build(&spec);
    println!(
        "{}: {} populations, {} cells, {} connection groups, {} synapses, {} drives, {} steps of {} ms; seed {}",
        spec.name,
        spec.populations.len(),
        conn.n_cells,
        spec.connections.len(),
        conn.n_synapses(),
        spec.drives.len(),
        spec.steps(),
        spec.simulation.dt_ms,
        spec.seed()
    );
    Ok(())
}
