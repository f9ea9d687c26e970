//! `surge sweep`: optimiser seeds x held-out instances for several routes to the same target (the
//! gradient through given checkpoints or through the exact engine, its random-sign control, CMA-ES on
//! the exact engine), judged the same way; writes sweep.json, a table and a figure. Each run lands in
//! its own folder and a finished run is read back instead of repeated, so an interrupted sweep
//! continues where it stopped.

use super::ui::{Backend, bar, in_out_dir};
use anyhow::{Context, Result};
use surge::netopt::job::{self, Control, Event, Job};
use std::path::{Path, PathBuf};
use surge::netopt::optimize::{self, ExactCheck, OptimizeConfig, median, passes_bar_median};
use surge::netopt::search::{CmaesConfig, cmaes_exact};
use surge::plot::{self, Lines};

/// What a gradient arm differentiates.
#[derive(Debug, Clone, PartialEq)]
pub enum Through {
    /// The surrogate network built from this checkpoint folder.
    Checkpoint(PathBuf),
    /// The exact engine itself (`optimizer.engine = "exact"`): the gradient the surrogates approximate.
    Exact,
}

impl Through {
    fn parse(s: &str) -> Through {
        if s == "exact" {
            Through::Exact
        } else {
            Through::Checkpoint(s.into())
        }
    }

    fn name(&self) -> String {
        match self {
            Through::Exact => "exact engine".into(),
            Through::Checkpoint(c) => c.file_name().map_or(c.display().to_string(), |n| {
                n.to_string_lossy().into_owned()
            }),
        }
    }
}

/// One route of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub enum Arm {
    /// Gradient descent through the surrogates in a checkpoint folder, or through the exact engine.
    Gradient(Through),
    /// The same loop with random-sign steps.
    RandomSign(Through),
    /// CMA-ES on the exact engine.
    Cmaes,
}

impl Arm {
    /// `gradient:<checkpoint>`, `random-sign:<checkpoint>` (`exact` for the exact engine) or `cmaes`.
    pub fn parse(s: &str) -> std::result::Result<Arm, String> {
        match s.split_once(':') {
            Some(("gradient", c)) if !c.is_empty() => Ok(Arm::Gradient(Through::parse(c))),
            Some(("random-sign", c)) if !c.is_empty() => Ok(Arm::RandomSign(Through::parse(c))),
            None if s == "cmaes" => Ok(Arm::Cmaes),
            _ => Err(format!(
                "`{s}` is not an arm. Fix: gradient:<checkpoint>, random-sign:<checkpoint> (`exact` \
                 in place of a checkpoint differentiates the exact engine) or cmaes"
            )),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Arm::Gradient(t) => format!("gradient {}", t.name()),
            Arm::RandomSign(t) => format!("random-sign {}", t.name()),
            Arm::Cmaes => "CMA-ES (exact engine)".into(),
        }
    }

    fn folder(&self) -> String {
        self.label()
            .replace([' ', '(', ')'], "_")
            .replace("__", "_")
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// Routes: gradient:<checkpoint>, random-sign:<checkpoint>, cmaes; `exact` in place of a
    /// checkpoint steps on the exact engine's own gradient.
    #[arg(long, value_delimiter = ',', required = true, value_parser = Arm::parse)]
    pub arms: Vec<Arm>,
    /// Optimiser seeds per route.
    #[arg(long, default_value_t = 10)]
    pub seeds: usize,
    /// The first optimiser seed.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Held-out instances are drawn from this seed.
    #[arg(long)]
    pub heldout_seed: u64,
    #[arg(long, default_value_t = 10)]
    pub heldout: usize,
    /// Override the experiment's iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// CMA-ES's exact-run budget [default: the gradient's windows, iterations x batch].
    #[arg(long)]
    pub cmaes_evals: Option<usize>,
    /// Output folder [default: experiments/out/sweep/].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
}

/// One optimiser seed of one arm, judged on the held-out instances.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SeedResult {
    pub seed: u64,
    pub passes: bool,
    pub median_band_fraction: f64,
    pub median_peak_hz: f64,
    pub exact_runs: usize,
    pub wall_s: f64,
}

/// One arm over all seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArmResult {
    pub arm: String,
    pub seeds: Vec<SeedResult>,
    pub success: usize,
    pub median_band_fraction: f64,
    pub median_peak_hz: f64,
    pub median_exact_runs: f64,
    pub median_wall_s: f64,
}

fn check_from_json(v: &serde_json::Value) -> ExactCheck {
    ExactCheck {
        seed: v["seed"].as_u64().unwrap_or(0),
        band_fraction: v["band_fraction"].as_f64().unwrap_or(f64::NAN),
        peak_hz: v["peak_hz"].as_f64(),
        rates_hz: v["rates_hz"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default(),
        freqs_hz: Vec::new(),
        power: Vec::new(),
        spikes: (Vec::new(), Vec::new()),
    }
}

fn judge(
    cfg: &OptimizeConfig,
    seed: u64,
    before: &[ExactCheck],
    after: &[ExactCheck],
    exact_runs: usize,
    wall_s: f64,
) -> SeedResult {
    SeedResult {
        seed,
        passes: passes_bar_median(cfg, before, after),
        median_band_fraction: median(&after.iter().map(|c| c.band_fraction).collect::<Vec<_>>()),
        median_peak_hz: median(
            &after
                .iter()
                .map(|c| c.peak_hz.unwrap_or(f64::NAN))
                .collect::<Vec<_>>(),
        ),
        exact_runs,
        wall_s,
    }
}

/// Runs (or reads back) one gradient or control optimisation.
fn gradient_seed(
    args: &Args,
    arm: &Arm,
    cfg: &OptimizeConfig,
    seed: u64,
    dir: &Path,
) -> Result<SeedResult> {
    let metrics = dir.join("metrics.json");
    if !metrics.exists() {
        let (through, control) = match arm {
            Arm::Gradient(t) => (t, None),
            Arm::RandomSign(t) => (t, Some(Control::RandomSign)),
            Arm::Cmaes => unreachable!("not a gradient arm"),
        };
        let (checkpoint, engine) = match through {
            Through::Checkpoint(c) => (c.clone(), None),
            Through::Exact => (PathBuf::new(), Some("exact".to_string())),
        };
        let resume = dir.join("progress.json").exists();
        let pb = bar(0, "optimize");
        job::run(
            &Job {
                config: args.config.clone(),
                checkpoint,
                backend: args.backend.name().into(),
                out: dir.to_path_buf(),
                iterations: args.iterations,
                control,
                seed: Some(seed),
                heldout: Some((args.heldout_seed, args.heldout)),
                spike_beta: None,
                engine,
                resume,
                force: !resume,
            },
            &mut |e| match e {
                Event::Iterations(n) => pb.set_length(n as u64),
                Event::Iteration(r) => pb.set_position(r.iteration as u64 + 1),
                _ => {}
            },
        )?;
        pb.finish_and_clear();
    }
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&metrics)
            .with_context(|| format!("cannot read {}", metrics.display()))?,
    )?;
    let list = |k: &str| -> Vec<ExactCheck> {
        m["exact"][k]
            .as_array()
            .map(|a| a.iter().map(check_from_json).collect())
            .unwrap_or_default()
    };
    let wall = m["wall_clock_s"]["optimize"].as_f64().unwrap_or(f64::NAN);
    // Through the exact engine every window is an exact forward-and-backward run.
    let runs = (m["exact_runs_for_selection"].as_u64().unwrap_or(0)
        + m["exact_gradient_runs"].as_u64().unwrap_or(0)) as usize;
    Ok(judge(
        cfg,
        seed,
        &list("before"),
        &list("after"),
        runs,
        wall,
    ))
}

/// Runs (or reads back) one CMA-ES search and its held-out check.
fn cmaes_seed(
    cfg: &OptimizeConfig,
    spec: &surge::spec::NetworkSpec,
    seed: u64,
    evals: usize,
    before: &[ExactCheck],
    dir: &Path,
) -> Result<SeedResult> {
    let path = dir.join("result.json");
    if let Ok(t) = std::fs::read_to_string(&path)
        && let Ok(r) = serde_json::from_str::<SeedResult>(&t)
    {
        return Ok(r);
    }
    std::fs::create_dir_all(dir)?;
    let budget = CmaesConfig {
        evaluations: evals,
        sigma0: 0.5,
        population: None,
        seed,
    };
    let t = std::time::Instant::now();
    let (gains, gens) = cmaes_exact(spec, cfg, &budget, &mut |_| {})?;
    let wall = t.elapsed().as_secs_f64();
    let after: Vec<ExactCheck> = cfg
        .recheck
        .seeds
        .iter()
        .map(|&s| optimize::exact_check(spec, cfg, &gains, s))
        .collect::<surge::error::Result<_>>()?;
    let runs = gens.last().map_or(0, |g| g.evaluations);
    let r = judge(cfg, seed, before, &after, runs, wall);
    let json = serde_json::json!({
        "seed": r.seed, "passes": r.passes, "median_band_fraction": r.median_band_fraction,
        "median_peak_hz": r.median_peak_hz, "exact_runs": r.exact_runs, "wall_s": r.wall_s,
        "log_gains": gains,
        "after": after.iter().map(|c| serde_json::json!({"seed": c.seed, "band_fraction": c.band_fraction, "peak_hz": c.peak_hz, "rates_hz": c.rates_hz})).collect::<Vec<_>>(),
    });
    let names = optimize::group_names(spec);
    surge::results::atomic_write(
        &dir.join("gains.json"),
        serde_json::to_string_pretty(&job::gains_json(&names, &gains))?.as_bytes(),
    )?;
    surge::results::atomic_write(&path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    Ok(r)
}

pub fn run(args: Args) -> Result<Vec<ArmResult>> {
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("experiments/out/sweep"));
    // Finished runs are worth keeping: the sweep continues from them.
    in_out_dir(
        &dir,
        |d| d.read_dir().is_ok_and(|mut r| r.next().is_some()),
        || sweep(&args, &dir),
    )
}

fn sweep(args: &Args, dir: &Path) -> Result<Vec<ArmResult>> {
    let (mut cfg, spec, _) = OptimizeConfig::load(&args.config)?;
    anyhow::ensure!(
        !args.arms.is_empty(),
        "--arms is empty. Fix: e.g. --arms gradient:checkpoints/lif-accurate,random-sign:checkpoints/lif-accurate,cmaes"
    );
    anyhow::ensure!(
        args.seeds >= 1 && args.heldout >= 1,
        "--seeds and --heldout must be at least 1"
    );
    if let Some(i) = args.iterations {
        cfg.optimizer.iterations = i;
    }
    cfg.recheck.seeds = optimize::heldout_seeds(args.heldout_seed, args.heldout);
    cfg.validate(&spec)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    println!(
        "held-out instances (seed {}): {:?}",
        args.heldout_seed, cfg.recheck.seeds
    );
    let before: Vec<ExactCheck> = cfg
        .recheck
        .seeds
        .iter()
        .map(|&s| optimize::exact_check(&spec, &cfg, &vec![0.0; spec.connections.len()], s))
        .collect::<surge::error::Result<_>>()?;
    let evals = args
        .cmaes_evals
        .unwrap_or(cfg.optimizer.iterations * cfg.optimizer.batch.max(1));
    let mut results = Vec::new();
    for arm in &args.arms {
        let mut seeds = Vec::new();
        for k in 0..args.seeds as u64 {
            let seed = args.first_seed + k;
            let sub = dir.join(arm.folder()).join(format!("seed-{seed}"));
            println!("== {} , optimiser seed {seed}", arm.label());
            let r = match arm {
                Arm::Cmaes => cmaes_seed(&cfg, &spec, seed, evals, &before, &sub)?,
                _ => gradient_seed(args, arm, &cfg, seed, &sub)?,
            };
            println!(
                "   {}: median band fraction {:.3}, median peak {:.0} Hz",
                if r.passes { "passes" } else { "fails" },
                r.median_band_fraction,
                r.median_peak_hz
            );
            seeds.push(r);
        }
        let med = |f: &dyn Fn(&SeedResult) -> f64| median(&seeds.iter().map(f).collect::<Vec<_>>());
        results.push(ArmResult {
            arm: arm.label(),
            success: seeds.iter().filter(|r| r.passes).count(),
            median_band_fraction: med(&|r| r.median_band_fraction),
            median_peak_hz: med(&|r| r.median_peak_hz),
            median_exact_runs: med(&|r| r.exact_runs as f64),
            median_wall_s: med(&|r| r.wall_s),
            seeds,
        });
    }
    let before_median = median(&before.iter().map(|c| c.band_fraction).collect::<Vec<_>>());
    let table = table(&results, args.seeds, args.heldout, before_median);
    println!("{table}");
    let json = serde_json::json!({
        "config": cfg,
        "heldout_seed": args.heldout_seed,
        "heldout_instances": cfg.recheck.seeds,
        "optimiser_seeds": (0..args.seeds as u64).map(|k| args.first_seed + k).collect::<Vec<_>>(),
        "before_median_band_fraction": before_median,
        "bar": "per optimiser seed, on the medians over its held-out instances: peak in the band, band fraction at least doubled, every population rate within 0.5-50 Hz",
        "arms": results,
    });
    surge::results::atomic_write(
        &dir.join("sweep.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    surge::results::atomic_write(&dir.join("table.md"), table.as_bytes())?;
    figure(dir, &results, before_median)?;
    println!("sweep: {}", dir.join("sweep.json").display());
    Ok(results)
}

fn table(results: &[ArmResult], seeds: usize, heldout: usize, before: f64) -> String {
    let mut t = format!(
        "{seeds} optimiser seeds x {heldout} held-out instances; initial median band fraction {before:.3}\n\n\
         | route | bar met | median band fraction | median peak | exact runs | wall s |\n\
         |---|---|---|---|---|---|\n"
    );
    for r in results {
        t.push_str(&format!(
            "| {} | {} of {} | {:.3} | {:.0} Hz | {:.0} | {:.0} |\n",
            r.arm,
            r.success,
            r.seeds.len(),
            r.median_band_fraction,
            r.median_peak_hz,
            r.median_exact_runs,
            r.median_wall_s
        ));
    }
    t
}

/// Per arm, its seeds' median held-out band fractions in increasing order.
fn figure(dir: &Path, results: &[ArmResult], before: f64) -> Result<()> {
    let data: Vec<(String, Vec<f64>, Vec<f64>)> = results
        .iter()
        .map(|r| {
            let mut f: Vec<f64> = r.seeds.iter().map(|s| s.median_band_fraction).collect();
            f.sort_by(f64::total_cmp);
            (r.arm.clone(), (1..=f.len()).map(|i| i as f64).collect(), f)
        })
        .collect();
    let n = data.iter().map(|d| d.1.len()).max().unwrap_or(1) as f64;
    let base = (vec![1.0, n], vec![before, before]);
    let mut series: Vec<(String, &[f64], &[f64])> = data
        .iter()
        .map(|(a, x, y)| (a.clone(), x.as_slice(), y.as_slice()))
        .collect();
    series.push(("initial gains".into(), &base.0, &base.1));
    plot::save(
        &Lines {
            title: "held-out band fraction per optimiser seed (median over instances)".into(),
            x_desc: "optimiser seed, sorted".into(),
            y_desc: "band fraction".into(),
            series,
            log_y: false,
            x_range: None,
        },
        &dir.join("sweep"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arms_parse_checkpoints_the_exact_engine_and_refuse_the_rest() {
        assert_eq!(
            Arm::parse("gradient:checkpoints/lif-default"),
            Ok(Arm::Gradient(Through::Checkpoint(
                "checkpoints/lif-default".into()
            )))
        );
        assert_eq!(
            Arm::parse("random-sign:exact"),
            Ok(Arm::RandomSign(Through::Exact))
        );
        assert_eq!(Arm::parse("cmaes"), Ok(Arm::Cmaes));
        assert_eq!(
            Arm::parse("gradient:exact").unwrap().label(),
            "gradient exact engine"
        );
        for bad in ["gradient:", "newton", "cmaes:x"] {
            let e = Arm::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("Fix"), "{e}");
        }
    }
}
