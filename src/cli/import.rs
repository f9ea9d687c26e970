//! `surge import sonata`: a SONATA circuit of NEST point neurons as an experiment file and the
//! connectome file it names.

use super::ui::ExchangeFormat;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use surge::sonata::Import;

#[derive(clap::Args)]
pub struct Args {
    /// The format (only `sonata`).
    #[arg(value_enum)]
    format: ExchangeFormat,
    /// The circuit config (circuit_config.json).
    #[arg(long)]
    circuit: PathBuf,
    /// The simulation config, for the time step and duration. Default: `simulation_config.json`
    /// beside the circuit config when it names that circuit; else dt 0.1 ms, 1000 ms.
    #[arg(long)]
    simulation: Option<PathBuf>,
    /// The experiment file to write; the synapses go beside it as `<stem>.connectome.h5`.
    #[arg(long)]
    out: PathBuf,
    /// The experiment's name. Default: the name a Surge export recorded in the simulation config,
    /// else the circuit config's folder name.
    #[arg(long)]
    name: Option<String>,
    /// The experiment's seed (initial voltages and drive noise; the synapses are the circuit's).
    /// Default: the seed a Surge export recorded in the simulation config, else 1.
    #[arg(long)]
    seed: Option<u64>,
    /// Replace existing output files.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    let h5 = Import::connectome_path(&args.out);
    for p in [&args.out, &h5] {
        if p.exists() && !args.force {
            bail!(
                "{} exists. Fix: choose another --out, or pass --force to replace it",
                p.display()
            );
        }
    }
    let simulation = args.simulation.clone().or_else(|| {
        let beside = args.circuit.with_file_name("simulation_config.json");
        let names_circuit = std::fs::read_to_string(&beside)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("network")?.as_str().map(String::from))
            .is_some_and(|n| {
                args.circuit
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy() == n.trim_start_matches("./"))
            });
        names_circuit.then_some(beside)
    });
    // What a Surge export recorded of the experiment it came from.
    let recorded = simulation
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("surge").cloned());
    let name = args
        .name
        .clone()
        .or_else(|| Some(recorded.as_ref()?.get("name")?.as_str()?.to_string()))
        .unwrap_or_else(|| {
            args.circuit
                .canonicalize()
                .ok()
                .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "imported".into())
        });
    let seed = args
        .seed
        .or_else(|| recorded.as_ref()?.get("seed")?.as_u64())
        .unwrap_or(1);
    let imported = surge::sonata::import(&args.circuit, simulation.as_deref(), &name, seed)?;
    let notes = imported.notes.clone();
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let spec = imported.write(&args.out)?;
    let synapses: usize = spec
        .connections
        .iter()
        .map(|c| c.synapses.as_ref().map_or(0, |e| e.len()))
        .sum();
    println!(
        "{}: {} populations ({} cells), {} connections ({synapses} synapses), {} drives -> {}{}",
        spec.name,
        spec.populations.len(),
        spec.n_cells(),
        spec.connections.len(),
        spec.drives.len(),
        args.out.display(),
        if synapses > 0 {
            format!(" and {}", h5.display())
        } else {
            String::new()
        }
    );
    if let Some(s) = &simulation {
        println!("time step and duration from {}", s.display());
    }
    for n in notes {
        println!("changed: {n}");
    }
    Ok(())
}
