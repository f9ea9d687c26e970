//! `surge compare network`: the same spec and connectome (the network's own seed) in both engines, with
//! optional gains; rates, spectral peak and band fractions side by side, wall times, figures.

use super::super::ui::{Backend, hz, in_out_dir};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use surge::netopt::job;
use surge::netopt::optimize::{self, ExactCheck, OptimizeConfig};
use surge::plot;
use surge::spec::Connectome;

#[derive(clap::Args)]
pub struct Args {
    /// Optimisation experiment naming the network and its cell types.
    #[arg(long)]
    pub config: PathBuf,
    /// Folder with one surrogate checkpoint per cell type (`<checkpoint>/<type>/`).
    #[arg(long, default_value = "checkpoints/lif-default")]
    pub checkpoint: PathBuf,
    /// gains.json written by `surge optimize` [default: the network as written].
    #[arg(long)]
    pub gains: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// Output folder [default: experiments/out/compare-network/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub force: bool,
}

/// Both engines on one network instance.
pub struct CompareSummary {
    pub populations: Vec<String>,
    pub exact: ExactCheck,
    pub surrogate: ExactCheck,
    pub exact_s: f64,
    pub surrogate_s: f64,
}

/// `surge compare network`: the same spec and connectome (the network's own seed) in both engines, with
/// optional gains; rates, spectral peak and band fractions side by side, wall times, figures.
pub fn run(args: Args) -> Result<CompareSummary> {
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("experiments/out").join("compare-network"));
    anyhow::ensure!(
        args.force || !dir.join("report.json").exists(),
        "{} already holds a report. Fix: --force or another --out",
        dir.display()
    );
    in_out_dir(&dir, |_| false, || compare(&args, &dir))
}

fn compare(args: &Args, dir: &Path) -> Result<CompareSummary> {
    let (config, checkpoint, gains) = (&args.config, &args.checkpoint, args.gains.as_deref());
    let (cfg, spec, _) = OptimizeConfig::load(config)?;
    std::fs::create_dir_all(dir)?;
    let n_groups = spec.connections.len();
    let log_gains: Vec<f32> = match gains {
        None => vec![0.0; n_groups],
        Some(p) => job::read_gains(p, n_groups)?,
    };
    let plain = args.backend.device()?;
    let conn = Connectome::build(&spec);
    let net = optimize::build_network(&cfg, &spec, &conn, checkpoint, &plain)
        .with_context(|| format!("loading surrogates from {}", checkpoint.display()))?;
    let seed = spec.seed();
    let t0 = std::time::Instant::now();
    let (sur, _) = optimize::surrogate_check(&net, &cfg, &log_gains, seed, &plain);
    let sur_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let exact = optimize::exact_check(&spec, &cfg, &log_gains, seed)?;
    let exact_s = t1.elapsed().as_secs_f64();
    let alpha = |c: &ExactCheck| {
        surge::signal::Psd {
            freqs_hz: c.freqs_hz.clone(),
            power: c.power.clone(),
        }
        .band_fraction(8.0, 12.0)
    };
    let names: Vec<String> = spec.populations.iter().map(|p| p.name.clone()).collect();
    let side = |c: &ExactCheck, s: f64| {
        serde_json::json!({
            "rates_hz": names.iter().zip(&c.rates_hz).map(|(n, r)| (n.clone(), *r)).collect::<std::collections::BTreeMap<_, _>>(),
            "peak_hz": c.peak_hz, "band_fraction": c.band_fraction, "alpha_fraction_8_12": alpha(c), "wall_s": s,
        })
    };
    let report = serde_json::json!({
        "network": cfg.network, "seed": seed, "duration_ms": cfg.recheck.duration_ms, "analysed_after_ms": cfg.recheck.warmup_ms,
        "band_hz": cfg.objective.band_hz, "log_gains": log_gains,
        "signal": format!("mean somatic voltage of {:?}", cfg.signal),
        "exact": side(&exact, exact_s), "surrogate": side(&sur, sur_s),
    });
    surge::results::atomic_write(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    surge::plot::reports::spectra(
        "Population signal spectrum: exact vs surrogate engine",
        &[("exact", &exact), ("surrogate", &sur)],
        (1.0, 100.0),
        &dir.join("spectra"),
    )?;
    // Surrogate raster in global cell order, for a side-by-side look with the exact engine's.
    let (times, cells) = &sur.spikes;
    plot::save(
        &surge::plot::Raster {
            title: "Surrogate engine raster".into(),
            times_ms: times,
            cells,
            pop_names: &names,
            pop_offsets: &conn.pop_offsets,
            duration_ms: cfg.recheck.duration_ms,
            max_per_pop: 100,
        },
        &dir.join("raster_surrogate"),
    )?;
    println!("{:<12} {:>22} {:>22}", "", "exact", "surrogate");
    for (i, n) in names.iter().enumerate() {
        println!(
            "{:<12} {:>19.2} Hz {:>19.2} Hz",
            n, exact.rates_hz[i], sur.rates_hz[i]
        );
    }
    println!(
        "{:<12} {:>22} {:>22}",
        "peak",
        hz(exact.peak_hz),
        hz(sur.peak_hz)
    );
    println!(
        "{:<12} {:>22.3} {:>22.3}",
        "alpha 8-12",
        alpha(&exact),
        alpha(&sur)
    );
    println!(
        "{:<12} {:>22.3} {:>22.3}",
        format!("{}-{} Hz", cfg.objective.band_hz.0, cfg.objective.band_hz.1),
        exact.band_fraction,
        sur.band_fraction
    );
    println!("{:<12} {:>20.1} s {:>20.1} s", "wall time", exact_s, sur_s);
    println!("report: {}", dir.join("report.json").display());
    Ok(CompareSummary {
        populations: names,
        exact,
        surrogate: sur,
        exact_s,
        surrogate_s: sur_s,
    })
}
