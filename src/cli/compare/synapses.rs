//! `surge compare methods` on a per-synapse experiment (`per_synapse = true`, `train_gains =
//! false`): the many-parameter task. Gradient descent through the exact engine, separable CMA-ES and
//! random search on the same 22,500 log-weights of one network instance, with the shuffled-weights
//! control, over several optimiser seeds; every result judged by the exact engine on held-out drive
//! noise and initial states, every method's cost counted in exact-engine runs.

use super::super::ui::{OutDir, bar};
use super::methods::Args;
use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;
use surge::netopt::descent::OnExact;
use surge::netopt::optimize::{self, ExactCheck, OptimizeConfig, median};
use surge::netopt::synapses::{SynapseTask, Trace, shuffled_within_groups};
use surge::plot::{self, Lines};
use surge::spec::{Connectome, NetworkSpec};

/// One method on one optimiser seed.
#[derive(Serialize, Clone)]
struct Outcome {
    seed: u64,
    exact_runs: usize,
    wall_s: f64,
    heldout_band_fraction: f64,
    heldout_peak_hz: f64,
    passes_bar: bool,
    trace: Trace,
    #[serde(skip)]
    log_w: Vec<f32>,
}

fn judge(
    cfg: &OptimizeConfig,
    task: &SynapseTask,
    before: &[ExactCheck],
    seed: u64,
    (log_w, trace, exact_runs, wall_s): (Vec<f32>, Trace, usize, f64),
) -> surge::Result<Outcome> {
    let after = task.heldout(&log_w)?;
    Ok(Outcome {
        seed,
        exact_runs,
        wall_s,
        heldout_band_fraction: median(&after.iter().map(|c| c.band_fraction).collect::<Vec<_>>()),
        heldout_peak_hz: median(
            &after
                .iter()
                .map(|c| c.peak_hz.unwrap_or(0.0))
                .collect::<Vec<_>>(),
        ),
        passes_bar: optimize::passes_bar_median(cfg, before, &after),
        trace,
        log_w,
    })
}

/// The surrogate network the surrogate arm descends on (the experiment's cells, `checkpoint`).
struct SurrogateArm {
    net: surge::netopt::SurrogateNetwork,
    plain: surge::netopt::SurrogateNetwork,
    device: burn::tensor::Device,
    plain_device: burn::tensor::Device,
}

/// Descent with the experiment's optimiser, seed `seed`: through the exact engine, or through the
/// surrogate network of `surrogate` (its per-synapse entries mapped onto the connectome's synapses
/// for the exact engine's trace and re-check; it spends no exact runs).
fn gradient(
    task: &SynapseTask,
    seed: u64,
    trace_every: usize,
    surrogate: Option<&SurrogateArm>,
) -> surge::Result<(Vec<f32>, Trace, usize, f64)> {
    let mut cfg = task.cfg.clone();
    cfg.optimizer.seed = seed;
    let exact = OnExact {
        spec: task.spec,
        conn: task.conn,
        bptt: cfg.optimizer.bptt_config_at(task.spec.simulation.dt_ms),
    };
    let on_surrogate = surrogate.map(|s| surge::netopt::descent::OnSurrogate {
        net: &s.net,
        device: &s.device,
        plain: &s.plain,
        plain_device: &s.plain_device,
    });
    let model: &dyn surge::netopt::descent::Descent = match &on_surrogate {
        Some(m) => m,
        None => &exact,
    };
    let per_conn = |w: &[f32]| -> Vec<f32> {
        match surrogate {
            Some(s) => s.net.log_w_per_synapse(w),
            None => w.to_vec(),
        }
    };
    let per_iter = cfg.optimizer.batch.max(1);
    let zeros = vec![0f32; task.spec.connections.len()];
    let mut trace = Trace::default();
    trace.runs.push(0);
    trace.band_fraction.push(task.trace_fraction(&vec![0.0; task.conn.weights.len()])?);
    let t = std::time::Instant::now();
    let mut traced = 0.0;
    // The surrogate arm spends no exact runs: its trace is placed by iterations.
    let (_, w) = optimize::optimize(model, &cfg, &zeros, None, None, 0, &mut |rec| {
        let runs = (rec.iteration + 1) * per_iter;
        if runs.is_multiple_of(trace_every.max(1)) || rec.iteration + 1 == cfg.optimizer.iterations {
            let t0 = std::time::Instant::now();
            trace.runs.push(runs);
            let w = rec.synapse_log_w.as_deref().expect("per-synapse run");
            trace.band_fraction.push(task.trace_fraction(&per_conn(w))?);
            traced += t0.elapsed().as_secs_f64();
        }
        Ok(())
    })?;
    let runs = if surrogate.is_some() {
        0
    } else {
        cfg.optimizer.iterations * per_iter
    };
    let w = per_conn(&w.expect("per-synapse run"));
    Ok((w, trace, runs, t.elapsed().as_secs_f64() - traced))
}

/// Runs the comparison; called by `surge compare methods` for a per-synapse experiment.
/// The methods of the many-parameter comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SynapseMethod {
    /// Gradient descent through the exact engine.
    Exact,
    /// Gradient descent through the surrogate network (`--checkpoint`).
    Surrogate,
    SepCmaes,
    RandomSearch,
}

pub fn run(args: &Args, cfg: OptimizeConfig, spec: NetworkSpec, text: String) -> Result<()> {
    anyhow::ensure!(
        !args.methods.is_empty(),
        "--methods is empty. Fix: e.g. --methods exact,sep-cmaes,random-search"
    );
    let mut cfg = cfg;
    cfg.recheck.seeds = optimize::heldout_seeds(args.heldout_seed, args.heldout);
    let dir = args.out.clone().unwrap_or_else(|| {
        std::path::Path::new("experiments/out/compare-methods").join(
            args.config
                .file_stem()
                .map_or("synapses".into(), |s| s.to_string_lossy().into_owned()),
        )
    });
    anyhow::ensure!(
        args.force || !dir.join("report.json").exists(),
        "{} already holds a comparison. Fix: --force to overwrite, or another --out",
        dir.display()
    );
    anyhow::ensure!(
        args.seeds >= 1 && args.budget_factor >= 1,
        "--seeds {} and --budget-factor {} must each be at least 1. Fix: e.g. --seeds 10 --budget-factor 20",
        args.seeds,
        args.budget_factor
    );
    let out_dir = OutDir::create(&dir)?;
    let conn = Connectome::build(&spec);
    let task = SynapseTask {
        spec: &spec,
        cfg: &cfg,
        conn: &conn,
    };
    let n = conn.weights.len();
    let grad_runs = cfg.optimizer.iterations * cfg.optimizer.batch.max(1);
    let budget = args.budget_factor * grad_runs;
    let seeds: Vec<u64> = (0..args.seeds as u64).map(|k| args.first_seed + k).collect();
    println!(
        "{n} synapse log-weights of one instance (seed {}), group gains frozen; {} optimiser seeds; held-out: {} noise seeds from {}",
        spec.seed(),
        seeds.len(),
        cfg.recheck.seeds.len(),
        args.heldout_seed
    );
    let before = task.heldout(&vec![0.0; n])?;
    let before_frac = median(&before.iter().map(|c| c.band_fraction).collect::<Vec<_>>());

    type Method<'a> = (
        &'a str,
        Box<dyn Fn(u64) -> surge::Result<(Vec<f32>, Trace, usize, f64)> + Sync + 'a>,
    );
    let task_ref = &task;
    let arm = if args.methods.contains(&SynapseMethod::Surrogate) {
        let plain_device = args.backend.device()?;
        let device = plain_device.clone().autodiff();
        let mut c = cfg.clone();
        c.optimizer.engine = "auto".into();
        Some(SurrogateArm {
            net: optimize::build_network(&c, &spec, &conn, &args.checkpoint, &device)?,
            plain: optimize::build_network(&c, &spec, &conn, &args.checkpoint, &plain_device)?,
            device,
            plain_device,
        })
    } else {
        None
    };
    let arm_ref = arm.as_ref();
    let mut methods: Vec<(SynapseMethod, Method)> = vec![
        (
            SynapseMethod::Exact,
            (
                "gradient through the exact engine",
                Box::new(move |s| gradient(task_ref, s, (grad_runs / 10).max(1), None)),
            ),
        ),
        (
            SynapseMethod::Surrogate,
            (
                "gradient through the surrogate network",
                Box::new(move |s| gradient(task_ref, s, (grad_runs / 10).max(1), arm_ref)),
            ),
        ),
        (
            SynapseMethod::SepCmaes,
            (
            "separable CMA-ES",
            Box::new(move |s| {
                let t = std::time::Instant::now();
                let (w, tr, runs) =
                    task_ref.sep_cmaes(budget, args.synapse_sigma0, s, budget / 20, &mut |_| {})?;
                Ok((w, tr, runs, t.elapsed().as_secs_f64()))
            }),
            ),
        ),
        (
            SynapseMethod::RandomSearch,
            (
            "random search",
            Box::new(move |s| {
                let t = std::time::Instant::now();
                let (w, tr, runs) = task_ref.random_search(
                    budget,
                    args.synapse_sigma0 / 2.0,
                    s,
                    budget / 20,
                    &mut |_| {},
                )?;
                Ok((w, tr, runs, t.elapsed().as_secs_f64()))
            }),
            ),
        ),
    ];
    methods.retain(|(m, _)| args.methods.contains(m));
    let mut results: Vec<(String, Vec<Outcome>)> = Vec::new();
    for (kind, (name, f)) in &methods {
        // The surrogate network uses both cores itself.
        let parallel = *kind != SynapseMethod::Surrogate;
        println!("== {name}");
        let pb = bar(seeds.len() as u64, name);
        let one = |&s: &u64| {
            let r = judge(&cfg, &task, &before, s, f(s)?);
            pb.inc(1);
            r
        };
        let outs: Vec<Outcome> = if parallel {
            seeds.par_iter().map(one).collect::<surge::Result<_>>()?
        } else {
            seeds.iter().map(one).collect::<surge::Result<_>>()?
        };
        pb.finish_and_clear();
        results.push((name.to_string(), outs));
    }
    // The control: the first gradient's weights permuted within each group, re-checked.
    let shuffled: Vec<Outcome> = results[0]
        .1
        .par_iter()
        .map(|o| {
            let w = shuffled_within_groups(&conn, &o.log_w, o.seed);
            judge(&cfg, &task, &before, o.seed, (w, Trace::default(), 0, 0.0))
        })
        .collect::<surge::Result<_>>()?;
    let kept: Vec<f64> = results[0]
        .1
        .iter()
        .zip(&shuffled)
        .map(|(g, s)| (s.heldout_band_fraction - before_frac) / (g.heldout_band_fraction - before_frac))
        .collect();
    let control = format!("control: {}, weights shuffled within groups", results[0].0);
    results.push((control, shuffled));

    // Where each gradient-free search's median trace first reaches the gradient's final median.
    let median_trace = |outs: &[Outcome]| -> (Vec<f64>, Vec<f64>) {
        let len = outs.iter().map(|o| o.trace.runs.len()).min().unwrap_or(0);
        let runs = (0..len).map(|i| outs[0].trace.runs[i] as f64).collect();
        let frac = (0..len)
            .map(|i| median(&outs.iter().map(|o| o.trace.band_fraction[i]).collect::<Vec<_>>()))
            .collect();
        (runs, frac)
    };
    let grad_final = median_trace(&results[0].1).1.last().copied().unwrap_or(f64::NAN);
    println!(
        "\n{:<52} {:>9} {:>9} {:>10} {:>9} {:>10} {:>12}",
        "method (exact engine, held-out noise)", "bar met", "fraction", "peak Hz", "runs", "wall s", "runs to match"
    );
    println!(
        "{:<52} {:>9} {:>9.3} {:>10} {:>9} {:>10} {:>12}",
        "initial weights", "-", before_frac, "-", "-", "-", "-"
    );
    let mut rows = Vec::new();
    for (name, outs) in &results {
        let (r, f) = median_trace(outs);
        let to_match = r
            .iter()
            .zip(&f)
            .find(|&(_, &x)| x >= grad_final)
            .map(|(r, _)| *r as usize);
        let pass = outs.iter().filter(|o| o.passes_bar).count();
        let med = |g: &dyn Fn(&Outcome) -> f64| median(&outs.iter().map(g).collect::<Vec<_>>());
        let runs = med(&|o| o.exact_runs as f64);
        println!(
            "{:<52} {:>9} {:>9.3} {:>10.0} {:>9.0} {:>10.1} {:>12}",
            name,
            format!("{pass} of {}", outs.len()),
            med(&|o| o.heldout_band_fraction),
            med(&|o| o.heldout_peak_hz),
            runs,
            med(&|o| o.wall_s),
            if r.is_empty() {
                "-".into()
            } else {
                to_match.map_or("not reached".into(), |m| m.to_string())
            },
        );
        rows.push(serde_json::json!({
            "method": name, "seeds_passing_bar": pass, "seeds": outs.len(),
            "median_heldout_band_fraction": med(&|o| o.heldout_band_fraction),
            "median_heldout_peak_hz": med(&|o| o.heldout_peak_hz),
            "median_exact_runs": runs, "median_wall_s": med(&|o| o.wall_s),
            "median_trace": {"runs": r, "band_fraction": f},
            "runs_to_match_gradient": to_match, "per_seed": outs,
        }));
    }
    let kept_median = median(&kept);
    println!(
        "shuffled control keeps {:.0}% of the gain of `{}` in band fraction (median over seeds; the bar: under 50%)",
        100.0 * kept_median,
        results[0].0
    );
    let report = serde_json::json!({
        "config": args.config.display().to_string(),
        "config_text": text,
        "what": "per-synapse log-weights of one network instance (group gains frozen), by gradient descent through the exact engine, separable CMA-ES and random search, judged by the exact engine on held-out drive noise and initial states; budgets in exact-engine runs (a gradient step is one forward and backward pass)",
        "synapses": n,
        "instance_seed": spec.seed(),
        "heldout_seeds": cfg.recheck.seeds,
        "budget_gradient_free": budget,
        "before_median_band_fraction": before_frac,
        "gradient_final_median_trace": grad_final,
        "shuffled_gain_kept": kept, "shuffled_gain_kept_median": kept_median,
        "methods": rows,
        "optimizer": cfg.optimizer,
    });
    surge::results::atomic_write(
        &dir.join("report.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let traces: Vec<(String, Vec<f64>, Vec<f64>)> = results[..results.len() - 1]
        .iter()
        .map(|(name, outs)| {
            let (r, f) = median_trace(outs);
            (name.clone(), r, f)
        })
        .collect();
    let fig = plot::save(
        &Lines {
            title: "per-synapse task: band fraction (median over seeds) against exact-engine runs".into(),
            x_desc: "exact-engine runs".into(),
            y_desc: format!(
                "{:.0}-{:.0} Hz fraction (trace noise)",
                cfg.objective.band_hz.0, cfg.objective.band_hz.1
            ),
            series: traces
                .iter()
                .map(|(n, x, y)| (n.clone(), x.as_slice(), y.as_slice()))
                .collect(),
            log_y: false,
            x_range: None,
        },
        &dir.join("synapse_methods"),
    )?;
    out_dir.keep();
    println!("report: {}", dir.join("report.json").display());
    for f in fig {
        println!("figure: {}", f.display());
    }
    Ok(())
}
