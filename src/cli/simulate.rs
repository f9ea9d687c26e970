//! `surge simulate`: an experiment in the exact engine (results.h5, metrics.json, figures), or a network
//! trained by `surge rls balanced` re-run from its trained.h5.

use super::ui::{self, OutDir, bar};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use surge::experiment::{self, Metrics};
use surge::spec::NetworkSpec;

#[derive(clap::Args)]
pub struct Args {
    /// Experiment file (TOML).
    #[arg(long, required_unless_present = "weights")]
    config: Option<PathBuf>,
    /// Re-run a network trained by `surge rls balanced` from its trained.h5 (config and weights
    /// come from the file): test trials of both types, correlation with the targets, rates.
    #[arg(long, conflicts_with = "config")]
    weights: Option<PathBuf>,
    /// Output folder [default: experiments/out/<name>/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override the experiment's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the simulated duration (ms).
    #[arg(long)]
    duration_ms: Option<f64>,
    /// Overwrite the results of a previous run in the output folder.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(w) = args.weights {
        anyhow::ensure!(
            args.seed.is_none() && args.duration_ms.is_none(),
            "--seed and --duration-ms do not apply to --weights (the trained network's config is fixed). Fix: drop them"
        );
        return rerun(&w, args.out, args.force);
    }
    let config = args.config.expect("clap requires --config without --weights");
    let (spec, text) = load(&config, args.seed, args.duration_ms)?;
    let dir = args
        .out
        .unwrap_or_else(|| Path::new("experiments/out").join(&spec.name));
    run_experiment(&spec, &text, &dir, args.force)
}

/// Loads an experiment and applies command-line overrides, re-validating the result.
fn load(path: &Path, seed: Option<u64>, duration_ms: Option<f64>) -> Result<(NetworkSpec, String)> {
    let (mut spec, text) = NetworkSpec::load(path)?;
    if let Some(s) = seed {
        spec.simulation.seed = Some(s);
    }
    if let Some(d) = duration_ms {
        spec.simulation.duration_ms = d;
    }
    spec.validate()
        .context("after applying command-line overrides")?;
    Ok((spec, text))
}


/// `--weights DIR/trained.h5`: writes `rerun.json` into `out` (default: the file's folder).
fn rerun(weights: &Path, out: Option<PathBuf>, force: bool) -> Result<()> {
    let dir = out.unwrap_or_else(|| weights.parent().unwrap_or(Path::new(".")).to_path_buf());
    let target = dir.join("rerun.json");
    anyhow::ensure!(
        force || !target.exists(),
        "{} exists. Fix: pass --force or another --out",
        target.display()
    );
    let pb = bar(1, "rebuild");
    let r = surge::rls::balanced_files::rerun(weights, &mut |m| pb.set_message(m.to_string()))?;
    pb.finish_and_clear();
    let out_dir = OutDir::create(&dir)?;
    surge::results::atomic_write(&target, serde_json::to_string_pretty(&r)?.as_bytes())?;
    out_dir.keep();
    println!(
        "re-ran {}: test-trial mean r {:.3} (100 ms average {:.3}), rates E {:.2} Hz, I {:.2} Hz\nwrote {}",
        weights.display(),
        r.test_mean_r,
        r.test_mean_r_100ms_average,
        r.rates_hz["E"],
        r.rates_hz["I"],
        target.display()
    );
    Ok(())
}

fn run_experiment(spec: &NetworkSpec, source_text: &str, dir: &Path, force: bool) -> Result<()> {
    let out_dir = OutDir::guard(dir);
    experiment::prepare_out_dir(dir, force)?;
    // The stored config is the effective one (overrides applied), followed by the file as written.
    let effective = toml::to_string(spec).context("serialising the experiment")?;
    let stored = format!(
        "{effective}\n# ---- source file as written ----\n# {}\n",
        source_text.replace('\n', "\n# ")
    );
    let pb = bar(spec.steps() as u64, "simulate");
    let (conn, res, build_s, sim_s) =
        experiment::build_and_simulate(spec, &mut |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    let mut metrics = experiment::analyse(spec, &conn, &res, build_s, sim_s);
    let outputs = experiment::write_outputs(dir, spec, &stored, &conn, &res, &mut metrics)?;
    out_dir.keep();
    print_summary(&metrics);
    println!("results: {}", outputs.results.display());
    println!("metrics: {}", outputs.metrics.display());
    for f in &outputs.figures {
        println!("figure:  {}", f.display());
    }
    Ok(())
}

fn print_summary(m: &Metrics) {
    println!(
        "{}: {} cells, {} synapses, {:.0} ms; build {:.2} s, simulate {:.2} s ({:.2e} synaptic events/s), write {:.2} s",
        m.name,
        m.n_cells,
        m.n_synapses,
        m.duration_ms,
        m.wall_clock.build_s,
        m.wall_clock.simulate_s,
        m.synaptic_events as f64 / m.wall_clock.simulate_s.max(1e-9),
        m.wall_clock.write_s
    );
    println!(
        "{:<12} {:>7} {:>9} {:>8} {:>8} {:>9} {:>12}",
        "population", "cells", "rate Hz", "CV ISI", "Fano", "peak Hz", "mean-field Hz"
    );
    for p in &m.populations {
        println!(
            "{:<12} {:>7} {:>9.2} {:>8} {:>8} {:>9} {:>12}",
            p.name,
            p.size,
            p.rate_hz,
            ui::opt(p.cv_isi, 2),
            ui::opt(p.fano_100ms, 2),
            ui::opt(p.rate_peak_hz, 1),
            ui::opt(p.mean_field_rate_hz, 2)
        );
    }
    for s in &m.signals {
        println!(
            "signal {:<14} mean {:>10.3}  peak {:>6} Hz  alpha {:.2} beta {:.2} gamma {:.2}",
            s.name,
            s.mean,
            ui::opt(s.peak_hz, 1),
            s.band_fraction.alpha_8_12,
            s.band_fraction.beta_15_30,
            s.band_fraction.gamma_30_60
        );
    }
}

