//! `surge landscape`: the band fraction along the straight line from one set of group gains to
//! another, in the exact engine and through surrogate checkpoints, on the same network instances;
//! report.json and a figure.

use super::ui::{Backend, bar, in_out_dir, report_dir};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use surge::netopt::job::read_gains;
use surge::netopt::gradcheck;
use surge::netopt::landscape::{self, Profile};
use surge::netopt::optimize::{self, OptimizeConfig};
use surge::plot::{self, Lines};

#[derive(clap::Args)]
pub struct Args {
    /// Optimisation experiment (network, objective, cell types, optimiser warm-up).
    #[arg(long)]
    pub config: PathBuf,
    /// gains.json of the line's far end (e.g. a CMA-ES result: `surge sweep` writes one per seed).
    #[arg(long)]
    pub to: PathBuf,
    /// gains.json of the line's start [default: the initial gains, all log-gains 0].
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Surrogate checkpoint folders to profile beside the exact engine (none: the exact engine only).
    #[arg(long = "checkpoint", num_args = 0..)]
    pub checkpoints: Vec<PathBuf>,
    /// Points on the line, evenly spaced from 0 (`from`) to --t-max (1 is `to`).
    #[arg(long, default_value_t = 11)]
    pub points: usize,
    /// The last point's t: past 1 the line runs on beyond `to`.
    #[arg(long, default_value_t = 1.0)]
    pub t_max: f64,
    /// Network instances (connectome, drive noise, initial state) every point is run on.
    #[arg(long, default_value_t = 4)]
    pub instances: usize,
    /// Instance k has seed `seed + k`.
    #[arg(long, default_value_t = 900)]
    pub seed: u64,
    /// Scored window per run (ms), after the optimiser's warm-up.
    #[arg(long, default_value_t = 1000.0)]
    pub window_ms: f64,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// Output folder [default: experiments/out/landscape/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub force: bool,
}

/// Profiles the line, prints a table and writes the report; returns the profiles (exact first).
pub fn run(args: Args) -> Result<Vec<Profile>> {
    let (cfg, spec, text) = OptimizeConfig::load(&args.config)?;
    anyhow::ensure!(
        args.points >= 2,
        "--points {} gives no line. Fix: --points 11 (at least 2)",
        args.points
    );
    anyhow::ensure!(
        args.instances >= 1,
        "--instances 0 runs nothing. Fix: --instances 4"
    );
    anyhow::ensure!(
        args.t_max > 0.0 && args.t_max.is_finite(),
        "--t-max {} must be > 0. Fix: --t-max 1 (the far end)",
        args.t_max
    );
    anyhow::ensure!(
        args.window_ms >= 100.0 && args.window_ms.is_finite(),
        "--window-ms {} is too short for a spectrum. Fix: --window-ms 1000",
        args.window_ms
    );
    let dir = report_dir(args.out.as_deref(), "experiments/out/landscape", args.force)?;
    let n_groups = spec.connections.len();
    let to = read_gains(&args.to, n_groups)?;
    let from = match &args.from {
        Some(p) => read_gains(p, n_groups)?,
        None => vec![0.0; n_groups],
    };
    let seeds = gradcheck::instance_seeds(&cfg, args.seed, args.instances)?;
    let device = args.backend.device()?;
    optimize::check_checkpoints(&cfg, &spec, &args.checkpoints, &device)?;
    let ts: Vec<f64> = (0..args.points)
        .map(|k| args.t_max * k as f64 / (args.points - 1) as f64)
        .collect();
    let points = landscape::line(&from, &to, &ts);
    let warm = cfg.optimizer.warmup_ms;
    println!(
        "exact engine: {} points x {} instances of {} ms",
        ts.len(),
        seeds.len(),
        warm + args.window_ms
    );
    let mut profiles = vec![landscape::exact_profile(
        &spec,
        &cfg,
        &points,
        &seeds,
        warm,
        args.window_ms,
    )?];
    for c in &args.checkpoints {
        let pb = bar(
            (ts.len() * seeds.len()) as u64,
            &format!("surrogate {}", c.display()),
        );
        profiles.push(landscape::surrogate_profile(
            &spec,
            &cfg,
            c,
            &points,
            &seeds,
            args.window_ms,
            &device,
            &mut || pb.inc(1),
        )?);
        pb.finish_and_clear();
    }
    print_table(&ts, &profiles);
    in_out_dir(&dir, |_| false, || {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let report = serde_json::json!({
            "what": "band fraction, spectral peak and population rates along log_gains = from + t (to - from), per engine, point and network instance",
            "config": cfg,
            "config_text": text,
            "groups": optimize::group_names(&spec),
            "populations": spec.populations.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            "from": from,
            "to": to,
            "t": ts,
            "instance_seeds": seeds,
            "warmup_ms": warm,
            "window_ms": args.window_ms,
            "profiles": profiles,
        });
        surge::results::atomic_write(
            &dir.join("report.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        figure(&dir, &ts, &profiles)
    })?;
    println!("report: {}", dir.join("report.json").display());
    Ok(profiles)
}

fn print_table(ts: &[f64], profiles: &[Profile]) {
    let name = |p: &Profile| {
        Path::new(&p.engine)
            .file_name()
            .map_or(p.engine.clone(), |n| n.to_string_lossy().into_owned())
    };
    println!("mean band fraction and median spectral peak over the instances");
    print!("{:>6}", "t");
    for p in profiles {
        print!("  {:>24}", format!("{} fraction, peak", name(p)));
    }
    println!();
    let means: Vec<Vec<f64>> = profiles.iter().map(Profile::mean_band_fraction).collect();
    for (k, t) in ts.iter().enumerate() {
        print!("{t:>6.2}");
        for (p, m) in profiles.iter().zip(&means) {
            print!(
                "  {:>24}",
                format!("{:.3}, {:.0} Hz", m[k], optimize::median(&p.peak_hz[k]))
            );
        }
        println!();
    }
}

fn figure(dir: &Path, ts: &[f64], profiles: &[Profile]) -> Result<()> {
    let means: Vec<(String, Vec<f64>)> = profiles
        .iter()
        .map(|p| (p.engine.clone(), p.mean_band_fraction()))
        .collect();
    plot::save(
        &Lines {
            title: "band fraction along the line from the start (0) to the far end (1)".into(),
            x_desc: "t".into(),
            y_desc: "band fraction (mean over instances)".into(),
            series: means
                .iter()
                .map(|(n, y)| (n.clone(), ts, y.as_slice()))
                .collect(),
            log_y: false,
            x_range: None,
        },
        &dir.join("landscape"),
    )?;
    Ok(())
}
