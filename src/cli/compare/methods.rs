//! `surge compare methods`: the surrogate gradient (gradient descent through the surrogate column) against a
//! gradient-free search on the exact engine (CMA-ES over the same log-gains, same objective, window and
//! bounds) and RLS (FORCE) on the exact network, all judged the same way: the exact engine on the
//! held-out seeds of the experiment.

use super::super::ui::{Backend, OutDir, bar, print_outputs};
use anyhow::Result;
use surge::netopt::job::{self, Event, Job};
use std::path::{Path, PathBuf};
use surge::compare::{self, heldout, mean_fraction};
use surge::netopt::optimize::{
    self, ExactCheck, OptimizeConfig, exact_check,
};
use surge::netopt::search::{CmaesConfig, Generation, cmaes_exact};
use surge::plot::{self, Lines};

#[derive(clap::Args)]
pub struct Args {
    /// Optimisation experiment naming the network, its cell types and the target.
    #[arg(long)]
    pub config: PathBuf,
    /// Folder with one surrogate checkpoint per cell type (`<checkpoint>/<type>/`).
    #[arg(long, default_value = "checkpoints/lif-default")]
    pub checkpoint: PathBuf,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    /// A finished `surge optimize` folder to take the surrogate result from [default: run it].
    #[arg(long)]
    pub surrogate_run: Option<PathBuf>,
    /// Exact-engine evaluations CMA-ES may spend.
    #[arg(long, default_value_t = 400)]
    pub evals: usize,
    /// CMA-ES's initial step in log-gain units.
    #[arg(long, default_value_t = 0.5)]
    pub sigma0: f64,
    /// CMA-ES candidates per generation [default: 4 + 3 ln(groups)].
    #[arg(long)]
    pub population: Option<usize>,
    /// CMA-ES seed [default: the experiment's optimizer seed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder [default: experiments/out/compare-methods/<config>/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub force: bool,
    /// Per-synapse experiments: optimiser seeds per method...
    #[arg(long, default_value_t = 10)]
    pub seeds: usize,
    /// ...the first of them...
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// ...the held-out drive-noise seeds are drawn from this seed...
    #[arg(long, default_value_t = 2026)]
    pub heldout_seed: u64,
    /// ...this many...
    #[arg(long, default_value_t = 10)]
    pub heldout: usize,
    /// ...the gradient-free searches get this many times the gradient's exact-engine runs...
    #[arg(long, default_value_t = 20)]
    pub budget_factor: usize,
    /// ...separable CMA-ES starts with this step in log-weight units (random search: half)...
    #[arg(long, default_value_t = 0.1)]
    pub synapse_sigma0: f64,
    /// ...and these methods run (the shuffled control follows the first); `surrogate` descends
    /// through the surrogates of `--checkpoint` (slow: about 3 s per step on 2 cores).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "exact,sep-cmaes,random-search")]
    pub methods: Vec<super::synapses::SynapseMethod>,
}

/// What the comparison found, for the demo's summary table.
pub struct MethodsSummary {
    pub before: f64,
    /// (method, exact-engine runs, search wall s, held-out mean band fraction, seeds passing the bar)
    pub methods: Vec<(String, usize, f64, f64, usize)>,
    pub seeds: usize,
}

pub fn run(args: Args) -> Result<MethodsSummary> {
    let (cfg, spec, text) = OptimizeConfig::load(&args.config)?;
    if cfg.optimizer.per_synapse && !cfg.optimizer.train_gains {
        super::synapses::run(&args, cfg, spec, text)?;
        return Ok(MethodsSummary {
            before: f64::NAN,
            methods: Vec::new(),
            seeds: 0,
        });
    }
    let cmaes = CmaesConfig {
        evaluations: args.evals,
        sigma0: args.sigma0,
        population: args.population,
        seed: args.seed.unwrap_or(cfg.optimizer.seed),
    };
    let stem = args
        .config
        .file_stem()
        .map_or("methods".into(), |s| s.to_string_lossy().into_owned());
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("experiments/out/compare-methods").join(&stem));
    let report_path = dir.join("report.json");
    if report_path.exists() && !args.force {
        anyhow::bail!(
            "{} already holds a comparison. Fix: --force to overwrite, or another --out",
            dir.display()
        );
    }
    anyhow::ensure!(
        cmaes.evaluations >= 8,
        "--evals {} leaves CMA-ES no room. Fix: give it at least 8 exact evaluations (hundreds are cheap)",
        cmaes.evaluations
    );
    anyhow::ensure!(
        cmaes.population.is_none_or(|p| p >= 2),
        "--population {} is too small for CMA-ES. Fix: give 2 or more, or leave it out for CMA-ES's default",
        cmaes.population.unwrap_or(0)
    );
    anyhow::ensure!(
        cmaes.sigma0 > 0.0 && cmaes.sigma0.is_finite(),
        "--sigma0 {} is not a step size. Fix: give a positive step in log-gain units, e.g. 0.5",
        cmaes.sigma0
    );
    let n_groups = spec.connections.len();
    let seeds = &cfg.recheck.seeds;
    let check_all = |gains: &[f32]| -> Result<Vec<ExactCheck>> {
        seeds
            .iter()
            .map(|&s| exact_check(&spec, &cfg, gains, s).map_err(Into::into))
            .collect()
    };
    // Everything the run can refuse is checked before the long parts start.
    let given = match &args.surrogate_run {
        Some(d) => Some(compare::read_surrogate_run(d, n_groups)?),
        None => None,
    };
    let out_dir = OutDir::create(&dir)?;
    let before = check_all(&vec![0.0; n_groups])?;

    println!("== surrogate gradient: descent through the surrogate column");
    let sg = match given {
        Some(g) => {
            println!(
                "taken from {} ({} iterations, {:.0} s)",
                args.surrogate_run.as_ref().expect("given").display(),
                g.iterations,
                g.wall_s
            );
            g
        }
        None => {
            let pb = bar(0, "optimize");
            let summary = job::run(
                &Job {
                    config: args.config.clone(),
                    checkpoint: args.checkpoint.clone(),
                    backend: args.backend.name().into(),
                    out: dir.join("surrogate-gd"),
                    iterations: None,
                    control: None,
                    seed: None,
                    heldout: None,
                    spike_beta: None,
                    engine: None,
                    resume: false,
                    force: args.force,
                },
                &mut |e| match e {
                    Event::Iterations(n) => pb.set_length(n as u64),
                    Event::Iteration(r) => pb.set_position(r.iteration as u64 + 1),
                    _ => {}
                },
            )?;
            pb.finish_and_clear();
            println!(
                "band score in the surrogate engine {:.3} -> {:.3} in {} iterations ({:.0} s)",
                summary.surrogate_before.band_score,
                summary.surrogate_after.band_score,
                summary.iterations,
                summary.optimize_s
            );
            compare::read_surrogate_run(&dir.join("surrogate-gd"), n_groups)?
        }
    };
    let sg_after = check_all(&sg.log_gains)?;

    println!(
        "== CMA-ES on the exact engine: {} evaluations of {:.0} ms (+{:.0} ms warm-up), one noise seed each",
        cmaes.evaluations, cfg.optimizer.window_ms, cfg.optimizer.warmup_ms
    );
    let pb = bar(cmaes.evaluations as u64, "cma-es");
    let (cm_gains, generations) = cmaes_exact(&spec, &cfg, &cmaes, &mut |g: &Generation| {
        pb.set_position(g.evaluations as u64);
        pb.set_message(format!(
            "median band fraction {:.3}",
            g.median_band_fraction
        ));
    })?;
    pb.finish_and_clear();
    let cm_evals = generations.last().map_or(0, |g| g.evaluations);
    let cm_wall = generations.last().map_or(0.0, |g| g.wall_s);
    let cm_after = check_all(&cm_gains)?;

    println!(
        "== RLS (FORCE) on the exact network: {} learns an in-phase {:.0} Hz current from the filtered spikes of {}, {} trials of {:.0} ms",
        cfg.rls.trained.join(", "),
        cfg.rls.freq_hz,
        cfg.rls.presynaptic.join(", "),
        cfg.rls.loops,
        cfg.rls.train_ms
    );
    let pb = bar(cfg.rls.loops as u64, "rls");
    let rls = compare::rls_route(&cfg, &spec, &mut |done, rms| {
        pb.set_position(done as u64);
        pb.set_message(format!("readout RMS error {rms:.2}"));
    })?;
    pb.finish_and_clear();
    println!(
        "readout RMS error per training trial: {}",
        rls.errors
            .iter()
            .map(|e| format!("{e:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let methods = [
        compare::judge(
            &cfg,
            "surrogate gradient (BPTT through surrogates)",
            // The exact runs it spent choosing among its iterates (validation instances only).
            sg.selection_runs,
            sg.wall_s,
            sg.log_gains.clone(),
            &before,
            &sg_after,
        ),
        compare::judge(
            &cfg,
            "CMA-ES on the exact engine",
            cm_evals,
            cm_wall,
            cm_gains.clone(),
            &before,
            &cm_after,
        ),
        compare::judge(
            &cfg,
            "RLS (FORCE) on the exact network",
            cfg.rls.loops,
            rls.wall_s,
            vec![0.0; n_groups],
            &rls.before,
            &rls.after,
        ),
    ];
    // How much of the exact budget CMA-ES needed to match the surrogate result (its generation median on
    // single noisy windows; the held-out figures above are the fair comparison).
    let sg_mean = methods[0].mean_band_fraction;
    let matched = generations
        .iter()
        .find(|g| g.median_band_fraction >= sg_mean);

    println!(
        "\n{:<52} {:>10} {:>9} {:>14} {:>10}",
        "method (exact engine, held-out seeds)", "exact runs", "wall s", "band fraction", "bar met"
    );
    println!(
        "{:<52} {:>10} {:>9} {:>14.3} {:>10}",
        "initial gains",
        "-",
        "-",
        mean_fraction(&before),
        "-"
    );
    for m in &methods {
        println!(
            "{:<52} {:>10} {:>9.1} {:>14.3} {:>10}",
            m.method,
            m.exact_evaluations,
            m.search_wall_s,
            m.mean_band_fraction,
            format!("{} of {}", m.seeds_passing_bar, seeds.len())
        );
    }
    println!(
        "RLS is judged on the network instance it was trained on (held-out drive noise): {:.3} there without the learned current",
        mean_fraction(&rls.before)
    );
    match matched {
        Some(g) => println!(
            "CMA-ES's generation median first reached the surrogate result ({sg_mean:.3}) after {} exact runs, {:.1} s",
            g.evaluations, g.wall_s
        ),
        None => println!(
            "CMA-ES's generation median never reached the surrogate result ({sg_mean:.3}) within {cm_evals} exact runs"
        ),
    }

    let report = serde_json::json!({
        "config": args.config.display().to_string(),
        "config_text": text,
        "checkpoint": args.checkpoint.display().to_string(),
        "band_hz": cfg.objective.band_hz,
        "objective": cfg.objective,
        "window_ms": cfg.optimizer.window_ms,
        "warmup_ms": cfg.optimizer.warmup_ms,
        "heldout_seeds": seeds,
        "surrogate_iterations": sg.iterations,
        "cmaes": cmaes,
        "groups": optimize::group_names(&spec),
        "before": heldout(&before),
        "before_mean_band_fraction": mean_fraction(&before),
        "methods": methods,
        "cmaes_generations": generations,
        "cmaes_matched_surrogate_after": matched.map(|g| serde_json::json!({"evaluations": g.evaluations, "wall_s": g.wall_s})),
        "rls": {"config": cfg.rls, "training_rms_error": rls.errors, "wall_s": rls.wall_s,
                "judged_on": "the trained network instance with the held-out seeds' drive noise",
                "before": heldout(&rls.before), "before_mean_band_fraction": mean_fraction(&rls.before)},
    });
    surge::results::atomic_write(
        &report_path,
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    // CMA-ES's result in gains.json form, for `surge compare network --gains` and `surge landscape --to`.
    surge::results::atomic_write(
        &dir.join("cmaes_gains.json"),
        serde_json::to_string_pretty(&surge::netopt::job::gains_json(
            &optimize::group_names(&spec),
            &cm_gains,
        ))?
        .as_bytes(),
    )?;

    let evals: Vec<f64> = generations.iter().map(|g| g.evaluations as f64).collect();
    let med: Vec<f64> = generations.iter().map(|g| g.median_band_fraction).collect();
    let best: Vec<f64> = generations.iter().map(|g| g.best_band_fraction).collect();
    let flat = |v: f64| vec![v; evals.len()];
    let (sg_line, before_line) = (flat(sg_mean), flat(mean_fraction(&before)));
    let mut figures = plot::save(
        &Lines {
            title: "CMA-ES on the exact engine: band fraction per generation".into(),
            x_desc: "exact-engine evaluations".into(),
            y_desc: format!(
                "{:.0}-{:.0} Hz fraction",
                cfg.objective.band_hz.0, cfg.objective.band_hz.1
            ),
            series: vec![
                ("generation median".into(), evals.as_slice(), med.as_slice()),
                ("generation best".into(), evals.as_slice(), best.as_slice()),
                (
                    "surrogate gradient, held-out mean".into(),
                    evals.as_slice(),
                    sg_line.as_slice(),
                ),
                (
                    "initial gains, held-out mean".into(),
                    evals.as_slice(),
                    before_line.as_slice(),
                ),
            ],
            log_y: false,
            x_range: None,
        },
        &dir.join("cmaes_progress"),
    )?;
    if let (Some(b), Some(s), Some(c)) = (before.first(), sg_after.first(), cm_after.first()) {
        figures.extend(surge::plot::reports::spectra(
            &format!("Exact engine, held-out seed {}: spectra", b.seed),
            &[
                ("initial gains", b),
                ("surrogate gradient", s),
                ("CMA-ES", c),
            ],
            (0.0, 100.0),
            &dir.join("spectra"),
        )?);
    }
    print_outputs(&report_path, &figures);
    out_dir.keep();
    Ok(MethodsSummary {
        before: mean_fraction(&before),
        methods: methods
            .iter()
            .map(|m| {
                (
                    m.method.clone(),
                    m.exact_evaluations,
                    m.search_wall_s,
                    m.mean_band_fraction,
                    m.seeds_passing_bar,
                )
            })
            .collect(),
        seeds: seeds.len(),
    })
}
