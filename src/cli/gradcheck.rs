//! `surge gradcheck`: the surrogate's gradient of the optimisation objective against an estimate of
//! the exact engine's, per checkpoint, spike-surrogate scale and window length; writes report.json and
//! a figure of the cosine similarity.

use super::ui::{Backend, bar, in_out_dir, report_dir};
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
    /// Which gradients to set against the exact estimate: `surrogate` (the checkpoints'),
    /// `exact` (the exact engine back-propagated with a surrogate spike derivative), or both.
    #[arg(long, value_delimiter = ',', default_value = "surrogate")]
    pub engines: Vec<GradEngine>,
    /// Widths (mV) of the exact engine's surrogate spike derivative to measure.
    #[arg(long = "spike-width-mv", value_delimiter = ',', default_value = "0.5")]
    pub spike_widths_mv: Vec<f64>,
    /// Damping factors on that derivative to measure.
    #[arg(long = "spike-damping", value_delimiter = ',', default_value = "0.03")]
    pub spike_dampings: Vec<f64>,
}

/// The gradients `surge gradcheck` measures.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum GradEngine {
    Surrogate,
    Exact,
}

/// One gradient (a surrogate checkpoint at one beta, or the exact engine at one surrogate width and
/// damping) at one window against the exact estimate.
#[derive(serde::Serialize)]
pub struct Row {
    pub window_ms: f64,
    /// The checkpoint, or `exact-bptt`.
    pub checkpoint: String,
    pub spike_beta: f32,
    /// For `exact-bptt`: the surrogate derivative's width (mV) and damping.
    pub spike_width_mv: Option<f64>,
    pub spike_damping: Option<f64>,
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
    let dir = report_dir(args.out.as_deref(), "experiments/out/gradcheck", args.force)?;
    let n_groups = spec.connections.len();
    let log_gains = match &args.gains {
        None => vec![0.0f32; n_groups],
        Some(p) => surge::netopt::job::read_gains(p, n_groups)?,
    };
    let device = args.backend.device()?.autodiff();
    let with_surrogate = args.engines.contains(&GradEngine::Surrogate);
    if !with_surrogate {
        args.checkpoints.clear();
    }
    if let Some(w) = args
        .spike_widths_mv
        .iter()
        .find(|w| !(**w > 0.0 && w.is_finite()))
    {
        anyhow::bail!("--spike-width-mv {w} is not a positive width. Fix: e.g. --spike-width-mv 0.5");
    }
    if let Some(d) = args
        .spike_dampings
        .iter()
        .find(|d| !(**d >= 0.0 && d.is_finite()))
    {
        anyhow::bail!("--spike-damping {d} is not >= 0. Fix: e.g. --spike-damping 0.01");
    }
    optimize::check_checkpoints(&cfg, &spec, &args.checkpoints, &device)?;
    let seeds = gradcheck::instance_seeds(&cfg, args.seed, args.instances)?;
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
                    spike_width_mv: None,
                    spike_damping: None,
                    surrogate: sur,
                    agreement,
                    wall_s: wall,
                });
            }
        }
        if args.engines.contains(&GradEngine::Exact) {
            let t = std::time::Instant::now();
            let settings: Vec<(f64, f64)> = args
                .spike_widths_mv
                .iter()
                .flat_map(|&w| args.spike_dampings.iter().map(move |&d| (w, d)))
                .collect();
            let configs: Vec<surge::bptt::BpttConfig> = settings
                .iter()
                .map(|&(w, d)| {
                    let mut o = cfg.optimizer.clone();
                    o.spike_width_mv = w;
                    o.spike_damping = d;
                    o.bptt_config_at(spec.simulation.dt_ms)
                })
                .collect();
            println!(
                "exact engine back-propagated: {} settings x {} instances",
                configs.len(),
                seeds.len()
            );
            let est =
                gradcheck::bptt_gradient(&spec, &cfg, &log_gains, window, &configs, &seeds)?;
            let wall = t.elapsed().as_secs_f64() / configs.len() as f64;
            for (g, &(w, d)) in est.into_iter().zip(&settings) {
                rows.push(Row {
                    window_ms: window,
                    checkpoint: "exact-bptt".into(),
                    spike_beta: 0.0,
                    spike_width_mv: Some(w),
                    spike_damping: Some(d),
                    agreement: gradcheck::agreement(&g, &exact, args.seed),
                    surrogate: g,
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
            "what": "cosine similarity between a back-propagated gradient of the optimisation loss (the surrogate network's, or the exact engine's with a surrogate spike derivative: checkpoint exact-bptt) and the exact engine's (central differences of step h with common random numbers), both averaged over the same network instances",
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
        "{:>7}  {:<28} {:>14}  {:>14}  {:>12}  {:>10}  {:>16}",
        "window",
        "gradient",
        "beta | mV,damp",
        "cosine +- se",
        "exact split",
        "signs",
        "signs (resolved)"
    );
    for r in rows {
        let a = &r.agreement;
        let setting = match (r.spike_width_mv, r.spike_damping) {
            (Some(w), Some(d)) => format!("{w} mV, {d}"),
            _ => format!("{}", r.spike_beta),
        };
        println!(
            "{:>5} ms  {:<28} {:>14}  {:>7.3} +- {:<5.3}  {:>12.3}  {:>9.0}%  {:>16}",
            r.window_ms,
            r.checkpoint,
            setting,
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

/// Cosine against spike_beta, one line per (checkpoint, window); for the exact engine, cosine
/// against damping, one line per (width, window).
fn figure(dir: &Path, rows: &[Row]) -> Result<()> {
    type Series = (String, Vec<f64>, Vec<f64>);
    let mut surrogate: Vec<Series> = Vec::new();
    let mut exact: Vec<Series> = Vec::new();
    for r in rows {
        let (list, name, x) = match (r.spike_width_mv, r.spike_damping) {
            (Some(w), Some(d)) => (&mut exact, format!("{w} mV, {} ms", r.window_ms), d),
            _ => (
                &mut surrogate,
                format!("{}, {} ms", r.checkpoint, r.window_ms),
                r.spike_beta as f64,
            ),
        };
        let at = match list.iter().position(|s| s.0 == name) {
            Some(i) => i,
            None => {
                list.push((name, Vec::new(), Vec::new()));
                list.len() - 1
            }
        };
        list[at].1.push(x);
        list[at].2.push(r.agreement.cosine);
    }
    for (data, x_desc, title, file) in [
        (
            surrogate,
            "spike_beta (calibrated logit widths)",
            "surrogate vs exact-engine gradient",
            "gradcheck",
        ),
        (
            exact,
            "damping of the surrogate spike derivative",
            "exact engine back-propagated vs finite differences",
            "gradcheck_exact",
        ),
    ] {
        if data.is_empty() {
            continue;
        }
        plot::save(
            &Lines {
                title: title.into(),
                x_desc: x_desc.into(),
                y_desc: "cosine similarity".into(),
                series: data
                    .iter()
                    .map(|(n, x, y)| (n.clone(), x.as_slice(), y.as_slice()))
                    .collect(),
                log_y: false,
                x_range: None,
            },
            &dir.join(file),
        )?;
    }
    Ok(())
}
