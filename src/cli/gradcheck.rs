//! `surge gradcheck`: the surrogate's gradient of the optimisation objective against an estimate of
//! the exact engine's, per checkpoint, spike-surrogate scale and window length; writes report.json and
//! a figure of the cosine similarity.

use super::ui::{Backend, bar, in_out_dir};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use surge::netopt::gradcheck::{self, Agreement, GradientEstimate};
use surge::netopt::optimize::{self, OptimizeConfig};
use surge::plot::{self, Lines};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// One or more checkpoint folders (`<checkpoint>/<type>/` per cell type).
    #[arg(long = "checkpoint", num_args = 1.., default_value = "checkpoints/lif-accurate")]
    pub checkpoints: Vec<PathBuf>,
    /// Network instances (connectome, drive noise) both gradients are averaged over.
    #[arg(long, default_value_t = 16)]
    pub instances: usize,
    /// Instance k has seed `seed + k`.
    #[arg(long, default_value_t = 900)]
    pub seed: u64,
    /// gains.json written by `surge optimize` [default: the initial gains, all log-gains 0].
    #[arg(long)]
    pub gains: Option<PathBuf>,
    /// Spike-surrogate scales to measure (calibrated logit widths).
    #[arg(long = "spike-beta", value_delimiter = ',', default_value = "1")]
    pub spike_betas: Vec<f32>,
    /// Scored window lengths (ms) [default: the experiment's].
    #[arg(long = "window-ms", value_delimiter = ',')]
    pub windows_ms: Vec<f64>,
    /// The exact engine's scored window for its finite differences (ms): longer windows resolve
    /// its gradient with fewer instances [default: each surrogate window].
    #[arg(long)]
    pub exact_ms: Option<f64>,
    /// Finite-difference step in log-gain.
    #[arg(long, default_value_t = 0.2)]
    pub h: f64,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// Output folder [default: experiments/out/gradcheck/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub force: bool,
    }

/// One surrogate (checkpoint, beta) at one window against the exact estimate.
#[derive(serde::Serialize)]
pub struct Row {
    pub window_ms: f64,
    pub checkpoint: String,
    pub spike_beta: f32,
    pub surrogate: GradientEstimate,
    pub agreement: Agreement,
    pub wall_s: f64,
}

/// Measures, prints and writes the report; returns its rows.
pub fn run(mut args: Args) -> Result<Vec<Row>> {
    let (cfg, spec, text) = OptimizeConfig::load(&args.config)?;
    if args.windows_ms.is_empty() {
        args.windows_ms = vec![cfg.optimizer.window_ms];
    }
    anyhow::ensure!(
        args.instances >= 2,
        "--instances {} is too few for a standard error. Fix: --instances 16 (at least 2)",
        args.instances
    );
    anyhow::ensure!(
        args.h > 0.0 && args.h.is_finite(),
        "--h {} is not a finite-difference step. Fix: e.g. --h 0.1 (log-gain units)",
        args.h
    );
    anyhow::ensure!(
        !args.checkpoints.is_empty() && !args.spike_betas.is_empty() && !args.windows_ms.is_empty(),
        "give at least one --checkpoint, --spike-beta and --window-ms"
    );
    if let Some(b) = args
        .spike_betas
        .iter()
        .find(|b| !(**b > 0.0 && b.is_finite()))
    {
        anyhow::bail!("--spike-beta {b} must be > 0. Fix: e.g. --spike-beta 0.5,1,2");
    }
    if let Some(w) = args
        .windows_ms
        .iter()
        .chain(args.exact_ms.as_ref())
        .find(|w| !(**w >= 50.0 && w.is_finite()))
    {
        anyhow::bail!("--window-ms {w} is shorter than 50 ms. Fix: e.g. --window-ms 250,500");
    }
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("experiments/out/gradcheck"));
    anyhow::ensure!(
        args.force || !dir.join("report.json").exists(),
        "{} already holds a report. Fix: --force or another --out",
        dir.display()
    );
    let n_groups = spec.connections.len();
    let log_gains = match &args.gains {
        None => vec![0.0f32; n_groups],
        Some(p) => surge::netopt::job::read_gains(p, n_groups)?,
    };
    let device = args.backend.device()?.autodiff();
    // Every checkpoint loads before any work starts: a wrong path fails at once.
    for c in &args.checkpoints {
        let conn = surge::spec::Connectome::build(&spec);
        optimize::build_network(&cfg, &spec, &conn, c, &device)
            .with_context(|| format!("loading surrogates from {}", c.display()))?;
    }
    let seeds: Vec<u64> = (0..args.instances as u64).map(|k| args.seed + k).collect();
    if let Some(s) = seeds
        .iter()
        .find(|s| cfg.recheck.seeds.contains(s) || cfg.optimizer.validation_seeds.contains(s))
    {
        anyhow::bail!(
            "instance seed {s} is a re-check or validation seed of the experiment. Fix: another --seed"
        );
    }
    let names = optimize::group_names(&spec);
    let mut rows = Vec::new();
    let mut exacts = Vec::new();
    for &window in &args.windows_ms {
        let t = std::time::Instant::now();
        let exact_ms = args.exact_ms.unwrap_or(window);
        println!(
            "window {window} ms: exact gradient over {exact_ms} ms from {} runs ({} instances x {n_groups} groups x 2)",
            2 * n_groups * seeds.len(),
            seeds.len()
        );
        let exact = gradcheck::exact_gradient(
            &spec,
            &cfg,
            &log_gains,
            cfg.optimizer.warmup_ms,
            exact_ms,
            &seeds,
            args.h,
        )?;
        let exact_s = t.elapsed().as_secs_f64();
        for ckpt in &args.checkpoints {
            let t = std::time::Instant::now();
            let pb = bar(
                (seeds.len() * args.spike_betas.len()) as u64,
                &format!("surrogate {}", ckpt.display()),
            );
            let est = gradcheck::surrogate_gradient(
                &spec,
                &cfg,
                ckpt,
                &log_gains,
                window,
                &args.spike_betas,
                &seeds,
                &device,
                &mut || pb.inc(1),
            )?;
            pb.finish_and_clear();
            let wall = t.elapsed().as_secs_f64() / args.spike_betas.len() as f64;
            for (sur, &beta) in est.into_iter().zip(&args.spike_betas) {
                let agreement = gradcheck::agreement(&sur, &exact, args.seed);
                rows.push(Row {
                    window_ms: window,
                    checkpoint: ckpt.display().to_string(),
                    spike_beta: beta,
                    surrogate: sur,
                    agreement,
                    wall_s: wall,
                });
            }
        }
        exacts.push(serde_json::json!({
            "window_ms": window,
            "exact_window_ms": exact_ms,
            "estimate": exact,
            "exact_runs": 2 * n_groups * seeds.len(),
            "wall_s": exact_s,
        }));
    }
    print_table(&rows);
    in_out_dir(&dir, |_| false, || {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let report = serde_json::json!({
            "what": "cosine similarity between the surrogate network's back-propagated gradient of the optimisation loss and the exact engine's (central differences of step h with common random numbers), both averaged over the same network instances",
            "config": cfg,
            "config_text": text,
            "groups": names,
            "log_gains": log_gains,
            "instance_seeds": seeds,
            "h": args.h,
            "exact": exacts,
            "rows": rows,
        });
        surge::results::atomic_write(
            &dir.join("report.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        figure(&dir, &rows)?;
        Ok(())
    })?;
    println!("report: {}", dir.join("report.json").display());
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:>7}  {:<28} {:>5}  {:>14}  {:>12}  {:>10}  {:>16}",
        "window", "checkpoint", "beta", "cosine +- se", "exact split", "signs", "signs (resolved)"
    );
    for r in rows {
        let a = &r.agreement;
        println!(
            "{:>5} ms  {:<28} {:>5}  {:>7.3} +- {:<5.3}  {:>12.3}  {:>9.0}%  {:>16}",
            r.window_ms,
            r.checkpoint,
            r.spike_beta,
            a.cosine,
            a.cosine_se,
            a.exact_split_half,
            100.0 * a.sign_agreement,
            a.sign_agreement_resolved.map_or("-".into(), |f| format!(
                "{:.0}% of {}",
                100.0 * f,
                a.exact_resolved.iter().filter(|&&x| x).count()
            )),
        );
    }
}

/// Cosine against spike_beta, one line per (checkpoint, window).
fn figure(dir: &Path, rows: &[Row]) -> Result<()> {
    let mut keys: Vec<(String, f64)> = Vec::new();
    for r in rows {
        let k = (r.checkpoint.clone(), r.window_ms);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let data: Vec<(String, Vec<f64>, Vec<f64>)> = keys
        .iter()
        .map(|(c, w)| {
            let sel: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.checkpoint == c && r.window_ms == *w)
                .collect();
            (
                format!("{c}, {w} ms"),
                sel.iter().map(|r| r.spike_beta as f64).collect(),
                sel.iter().map(|r| r.agreement.cosine).collect(),
            )
        })
        .collect();
    plot::save(
        &Lines {
            title: "surrogate vs exact-engine gradient".into(),
            x_desc: "spike_beta (calibrated logit widths)".into(),
            y_desc: "cosine similarity".into(),
            series: data
                .iter()
                .map(|(n, x, y)| (n.clone(), x.as_slice(), y.as_slice()))
                .collect(),
            log_y: false,
            x_range: None,
        },
        &dir.join("gradcheck"),
    )?;
    Ok(())
}
