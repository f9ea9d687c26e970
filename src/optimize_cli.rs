//! `surge optimize`: gradient descent over connection gains through the surrogate network, then the exact re-check
//! on held-out seeds; writes metrics.json (one record per iteration, before/after in both engines),
//! gains.json, and figures (objective curve, spectra before/after in both engines, gains).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use surge::netopt::optimize::{self, ExactCheck, IterationRecord, OptimizeConfig};
use surge::plot::{self, Lines};
use surge::spec::Connectome;

pub struct Args {
    pub config: PathBuf,
    pub checkpoint: PathBuf,
    pub backend: String,
    pub out: Option<PathBuf>,
    pub iterations: Option<usize>,
    pub resume: bool,
    pub force: bool,
    /// The random-sign control instead of the gradient (`optimizer.control`).
    pub control: Option<String>,
    /// Optimiser seed (`optimizer.seed`: the iterations' drive noise, the control's signs).
    pub seed: Option<u64>,
    /// Held-out instances drawn from this seed instead of `recheck.seeds`...
    pub heldout_seed: Option<u64>,
    /// ...this many of them.
    pub heldout: usize,
    /// Override `optimizer.spike_beta`.
    pub spike_beta: Option<f32>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Progress {
    iterations_done: usize,
    log_gains: Vec<f32>,
    records: serde_json::Value,
    /// Per-synapse log-weights (with `optimizer.per_synapse`).
    #[serde(default)]
    synapse_log_w: Option<Vec<f32>>,
    /// Adam's moments (with `optimizer.method = "adam"`).
    #[serde(default)]
    adam: Option<optimize::AdamState>,
}

/// What an optimisation found, for the demo's summary table.
pub struct OptimizeSummary {
    pub iterations: usize,
    pub surrogate_before: (f64, Option<f64>),
    pub surrogate_after: (f64, Option<f64>),
    pub exact_before: Vec<ExactCheck>,
    pub exact_after: Vec<ExactCheck>,
    pub seeds_passing: usize,
    pub optimize_s: f64,
    pub exact_s: f64,
    pub gains: PathBuf,
}

/// Both engines on one network instance, for the demo's summary table.
pub struct CompareSummary {
    pub populations: Vec<String>,
    pub exact: ExactCheck,
    pub surrogate: ExactCheck,
    pub exact_s: f64,
    pub surrogate_s: f64,
}

/// The bar on one held-out seed: the exact engine's peak moves into the target band, the band
/// fraction at least doubles, and every population rate stays within 0.5-50 Hz.
pub fn passes_bar(cfg: &OptimizeConfig, before: &ExactCheck, after: &ExactCheck) -> bool {
    let (lo, hi) = cfg.objective.band_hz;
    after.peak_hz.is_some_and(|p| p >= lo && p <= hi)
        && after.band_fraction >= 2.0 * before.band_fraction
        && after.rates_hz.iter().all(|&r| (0.5..=50.0).contains(&r))
}

pub use surge::netopt::optimize::group_names;

pub fn run(args: Args) -> Result<OptimizeSummary> {
    let (mut cfg, spec, text) = OptimizeConfig::load(&args.config)?;
    if let Some(i) = args.iterations {
        cfg.optimizer.iterations = i;
    }
    if let Some(c) = &args.control {
        cfg.optimizer.control = c.replace('-', "_");
    }
    if let Some(s) = args.seed {
        cfg.optimizer.seed = s;
    }
    if let Some(b) = args.spike_beta {
        cfg.optimizer.spike_beta = b;
    }
    if let Some(h) = args.heldout_seed {
        cfg.recheck.seeds = optimize::heldout_seeds(h, args.heldout);
    }
    cfg.validate(&spec)?;
    let dir = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .config
            .file_stem()
            .map_or("optimize".into(), |s| s.to_string_lossy().into_owned());
        Path::new("experiments/out").join(stem)
    });
    let progress_path = dir.join("progress.json");
    if !args.resume && (dir.join("metrics.json").exists() || progress_path.exists()) && !args.force
    {
        anyhow::bail!(
            "{} already holds an optimisation. Fix: --resume to continue it, --force to start over, or another --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Forward-only evaluations run on the plain device: a forward graph on the autodiff device that is
    // never back-propagated is freed by burn 0.22 one layer of roots at a time, quadratically.
    let plain = surge::surrogate::backend::device(&args.backend)?;
    let device = plain.clone().autodiff();
    let conn = Connectome::build(&spec);
    let net = optimize::build_network(&cfg, &spec, &conn, &args.checkpoint, &device)
        .with_context(|| format!("loading surrogates from {}", args.checkpoint.display()))?;
    let net_eval = optimize::build_network(&cfg, &spec, &conn, &args.checkpoint, &plain)?;
    let n_groups = spec.connections.len();
    let mut start = vec![0.0f32; n_groups];
    let mut start_w: Option<Vec<f32>> = None;
    let mut start_adam: Option<optimize::AdamState> = None;
    let mut records = Vec::<IterationRecord>::new();
    let mut first = 0usize;
    let mut prior: Vec<serde_json::Value> = Vec::new();
    if args.resume {
        let t = std::fs::read_to_string(&progress_path).with_context(|| {
            format!(
                "{} has no progress.json to resume from. Fix: drop --resume",
                dir.display()
            )
        })?;
        let p: Progress = serde_json::from_str(&t)
            .context("progress.json is corrupt; start over with --force")?;
        anyhow::ensure!(
            p.log_gains.len() == n_groups,
            "progress.json has {} gains, the network {n_groups} groups. Fix: start over with --force",
            p.log_gains.len()
        );
        start = p.log_gains;
        start_w = p.synapse_log_w;
        start_adam = p.adam;
        first = p.iterations_done;
        prior = serde_json::from_value(p.records).unwrap_or_default();
        println!("resuming {} after iteration {first}", dir.display());
    }
    let t0 = std::time::Instant::now();
    // Surrogate before: the initial gains on a fixed evaluation noise stream.
    let eval_noise = u64::MAX - 3;
    let zeros = vec![0.0f32; n_groups];
    let (_, before_sur, before_psd, _) = optimize::evaluate(
        &net_eval,
        &cfg,
        &surge::netopt::Gains::new(&zeros, &plain),
        eval_noise,
        &plain,
        false,
    );
    let pb = crate::cli::bar(cfg.optimizer.iterations as u64, "optimize");
    pb.set_position(first as u64);
    let optimized = optimize::optimize(
        &net,
        &cfg,
        &start,
        start_w.as_deref(),
        start_adam,
        first,
        &device,
        &mut |rec| {
            pb.set_message(format!(
                "score {:.3} peak {}",
                rec.band_score,
                rec.peak_hz.map_or("-".into(), |p| format!("{p:.0} Hz"))
            ));
            pb.set_position(rec.iteration as u64 + 1);
            records.push(rec.clone());
            let mut all = prior.clone();
            all.extend(
                records
                    .iter()
                    .map(|r| serde_json::to_value(r).expect("record")),
            );
            let p = Progress {
                iterations_done: rec.iteration + 1,
                log_gains: rec.log_gains.clone(),
                records: serde_json::Value::Array(all),
                synapse_log_w: rec.synapse_log_w.clone(),
                adam: rec.adam.clone(),
            };
            surge::results::atomic_write(
                &progress_path,
                serde_json::to_string(&p).expect("json").as_bytes(),
            )?;
            Ok(())
        },
    )?;
    let (mut final_gains, final_w) = optimized;
    pb.finish_and_clear();
    // With select = "validation", the iterate the exact engine scored best on the validation instances.
    let selected = if cfg.optimizer.select == "validation" {
        let mut all = prior.clone();
        all.extend(
            records
                .iter()
                .map(|r| serde_json::to_value(r).expect("record")),
        );
        let (it, gains, loss, frac) = optimize::select_by_validation(&all).ok_or_else(|| {
            anyhow::anyhow!(
                "no iteration has a finite validation loss, so none can be selected. Fix: check the exact network (surge validate --config ...) or set select = \"last\""
            )
        })?;
        println!(
            "selected iteration {} of {}: exact validation loss {loss:.3}, band fraction {frac:.3} (seeds {:?})",
            it + 1,
            all.len(),
            cfg.optimizer.validation_seeds
        );
        final_gains = gains;
        Some(
            serde_json::json!({"iteration": it, "validation_loss": loss, "validation_band_fraction": frac, "validation_seeds": cfg.optimizer.validation_seeds}),
        )
    } else {
        None
    };
    let opt_s = t0.elapsed().as_secs_f64();
    let gains_net = match &final_w {
        Some(w) => surge::netopt::Gains::with_synapses(&final_gains, w, &plain),
        None => surge::netopt::Gains::new(&final_gains, &plain),
    };
    // Per-synapse weights belong to this network instance: the exact engine re-checks it (before and
    // after) with the held-out seeds' drive noise and initial state, on the optimised connectome.
    let fixed = match &final_w {
        Some(w) => {
            let with_gains = Connectome::build(&optimize::apply_gains(&spec, &final_gains));
            anyhow::ensure!(
                with_gains.targets == conn.targets,
                "the connectome drawn with the optimised gains differs from the one optimised, so the per-synapse weights cannot be mapped onto it (a bug: please report it with the experiment file)"
            );
            Some((conn.clone(), net.apply_synapse_weights(&with_gains, w)))
        }
        None => None,
    };
    let (_, after_sur, after_psd, _) =
        optimize::evaluate(&net_eval, &cfg, &gains_net, eval_noise, &plain, false);
    // Exact engine, held-out seeds, before and after.
    let t1 = std::time::Instant::now();
    let pb = crate::cli::bar(2 * cfg.recheck.seeds.len() as u64, "exact check");
    let mut before_exact = Vec::new();
    let mut after_exact = Vec::new();
    for &seed in &cfg.recheck.seeds {
        let (r, w) = (cfg.recheck.duration_ms, cfg.recheck.warmup_ms);
        match &fixed {
            Some((c0, c1)) => {
                before_exact.push(optimize::exact_run_with_hook(
                    &spec,
                    &cfg,
                    &zeros,
                    seed,
                    r,
                    w,
                    None,
                    Some(c0),
                )?);
                pb.inc(1);
                after_exact.push(optimize::exact_run_with_hook(
                    &spec,
                    &cfg,
                    &final_gains,
                    seed,
                    r,
                    w,
                    None,
                    Some(c1),
                )?);
                pb.inc(1);
            }
            None => {
                before_exact.push(optimize::exact_check(&spec, &cfg, &zeros, seed)?);
                pb.inc(1);
                after_exact.push(optimize::exact_check(&spec, &cfg, &final_gains, seed)?);
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();
    let exact_s = t1.elapsed().as_secs_f64();
    let (lo, hi) = cfg.objective.band_hz;
    let passed: Vec<bool> = before_exact
        .iter()
        .zip(&after_exact)
        .map(|(b, a)| passes_bar(&cfg, b, a))
        .collect();
    let group_names = group_names(&spec);
    let summary = |c: &ExactCheck| serde_json::json!({"seed": c.seed, "band_fraction": c.band_fraction, "peak_hz": c.peak_hz, "rates_hz": c.rates_hz});
    let mut all_records = prior;
    all_records.extend(
        records
            .iter()
            .map(|r| serde_json::to_value(r).expect("record")),
    );
    let metrics = serde_json::json!({
        "config": cfg,
        "config_text": text,
        "checkpoint": args.checkpoint.display().to_string(),
        "backend": args.backend,
        "band_hz": [lo, hi],
        "iterations": all_records,
        "groups": group_names,
        "log_gains": final_gains,
        "surrogate": {
            "before": { "band_score": before_sur.band_score, "peak_hz": before_sur.peak_hz, "rates_hz": before_sur.rates_hz },
            "after": { "band_score": after_sur.band_score, "peak_hz": after_sur.peak_hz, "rates_hz": after_sur.rates_hz },
        },
        "exact": {
            "before": before_exact.iter().map(summary).collect::<Vec<_>>(),
            "after": after_exact.iter().map(summary).collect::<Vec<_>>(),
            "seeds_passing_bar": passed.iter().filter(|&&p| p).count(),
            "bar": "peak moves into the band, band fraction at least doubles, all population rates within 0.5-50 Hz",
        },
        "wall_clock_s": { "optimize": opt_s, "exact_check": exact_s },
        "selected": selected,
        "exact_runs_for_selection": all_records.iter().filter(|r| r.get("validation_loss").is_some_and(|v| !v.is_null())).count() * cfg.optimizer.validation_seeds.len(),
        "per_synapse": final_w.is_some(),
        "exact_network_instance": if final_w.is_some() {
            "fixed: the optimised connectome (spec seed); held-out seeds vary the drive noise and initial state"
        } else {
            "new per held-out seed (connectome, drive noise and initial state)"
        },
        "populations": spec.populations.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
    });
    surge::results::atomic_write(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)?.as_bytes(),
    )?;
    let gains_json = serde_json::json!(
        group_names
            .iter()
            .zip(&final_gains)
            .map(|(n, g)| serde_json::json!({"group": n, "log_gain": g, "gain": (*g as f64).exp()}))
            .collect::<Vec<_>>()
    );
    surge::results::atomic_write(
        &dir.join("gains.json"),
        serde_json::to_string_pretty(&gains_json)?.as_bytes(),
    )?;
    if let Some(w) = &final_w {
        let table = net.synapse_table();
        let rms = optimize::rms(w);
        let syn = serde_json::json!({
            "what": "per-synapse log-weights: synapse weight = connectome weight x group gain x exp(log_weight); contacts of one cell onto the same (cell, channel) through one group and delay share one entry",
            "connectome_seed": spec.seed(),
            "config": cfg,
            "n": w.len(),
            "rms_log_weight": rms,
            "pre": table.iter().map(|t| t.0).collect::<Vec<_>>(),
            "post": table.iter().map(|t| t.1).collect::<Vec<_>>(),
            "channel": table.iter().map(|t| t.2.clone()).collect::<Vec<_>>(),
            "group": table.iter().map(|t| group_names[t.3].clone()).collect::<Vec<_>>(),
            "log_weight": w,
        });
        surge::results::atomic_write(
            &dir.join("synapses.json"),
            serde_json::to_string(&syn)?.as_bytes(),
        )?;
        println!(
            "per-synapse weights: {} synapses, rms log-weight {rms:.3} ({}); the exact engine re-ran this connectome",
            w.len(),
            dir.join("synapses.json").display()
        );
    }
    figures(
        &dir,
        &cfg,
        &spec,
        &all_records,
        &before_psd,
        &after_psd,
        &before_exact,
        &after_exact,
        &group_names,
        &final_gains,
    )?;
    println!(
        "surrogate engine ({} iterations, {opt_s:.0} s): band score {:.3} -> {:.3}, peak {} -> {}",
        cfg.optimizer.iterations,
        before_sur.band_score,
        after_sur.band_score,
        fmt_hz(before_sur.peak_hz),
        fmt_hz(after_sur.peak_hz)
    );
    println!("exact engine, held-out seeds ({exact_s:.0} s), band {lo}-{hi} Hz:");
    println!(
        "{:>6} {:>14} {:>14} {:>10} {:>10}  rates after (Hz)",
        "seed", "fraction before", "fraction after", "peak bef.", "peak aft."
    );
    for ((b, a), ok) in before_exact.iter().zip(&after_exact).zip(&passed) {
        println!(
            "{:>6} {:>14.3} {:>14.3} {:>10} {:>10}  {:?} {}",
            b.seed,
            b.band_fraction,
            a.band_fraction,
            fmt_hz(b.peak_hz),
            fmt_hz(a.peak_hz),
            a.rates_hz
                .iter()
                .map(|r| (r * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            if *ok { "passes" } else { "fails" }
        );
    }
    println!(
        "bar met on {} of {} held-out seeds",
        passed.iter().filter(|&&p| p).count(),
        passed.len()
    );
    println!(
        "metrics: {}\ngains:   {}",
        dir.join("metrics.json").display(),
        dir.join("gains.json").display()
    );
    Ok(OptimizeSummary {
        iterations: cfg.optimizer.iterations,
        surrogate_before: (before_sur.band_score, before_sur.peak_hz),
        surrogate_after: (after_sur.band_score, after_sur.peak_hz),
        seeds_passing: passed.iter().filter(|&&p| p).count(),
        exact_before: before_exact,
        exact_after: after_exact,
        optimize_s: opt_s,
        exact_s,
        gains: dir.join("gains.json"),
    })
}

/// The log-gains of a gains.json written by `surge optimize`, checked against the network's groups.
pub fn read_gains(p: &Path, n_groups: usize) -> Result<Vec<f32>> {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
    )
    .with_context(|| {
        format!(
            "{} is not JSON. Fix: pass the gains.json written by `surge optimize`",
            p.display()
        )
    })?;
    let g: Vec<f32> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["log_gain"].as_f64())
                .map(|x| x as f32)
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(
        g.len() == n_groups,
        "{} holds {} gains but the network has {n_groups} connection groups. Fix: pass the gains.json of an optimisation of this network",
        p.display(),
        g.len()
    );
    Ok(g)
}

fn fmt_hz(p: Option<f64>) -> String {
    p.map_or("-".into(), |p| format!("{p:.0} Hz"))
}

#[allow(clippy::too_many_arguments)]
fn figures(
    dir: &Path,
    cfg: &OptimizeConfig,
    spec: &surge::spec::NetworkSpec,
    records: &[serde_json::Value],
    before_psd: &(Vec<f64>, Vec<f64>),
    after_psd: &(Vec<f64>, Vec<f64>),
    before_exact: &[ExactCheck],
    after_exact: &[ExactCheck],
    names: &[String],
    gains: &[f32],
) -> Result<()> {
    let it: Vec<f64> = records
        .iter()
        .filter_map(|r| r["iteration"].as_f64())
        .collect();
    let score: Vec<f64> = records
        .iter()
        .filter_map(|r| r["band_score"].as_f64())
        .collect();
    let loss: Vec<f64> = records.iter().filter_map(|r| r["loss"].as_f64()).collect();
    plot::save(
        &Lines {
            title: format!(
                "Optimisation: {} in {:?} Hz (surrogate engine)",
                cfg.objective.kind, cfg.objective.band_hz
            ),
            x_desc: "iteration".into(),
            y_desc: "value".into(),
            series: vec![
                ("band score".into(), it.as_slice(), score.as_slice()),
                ("loss".into(), it.as_slice(), loss.as_slice()),
            ],
            log_y: false,
            x_range: None,
        },
        &dir.join("objective"),
    )?;
    plot::save(
        &Lines {
            title: "Surrogate engine: spectrum of the population signal".into(),
            x_desc: "frequency (Hz)".into(),
            y_desc: "power (mV^2/Hz)".into(),
            series: vec![
                (
                    "before".into(),
                    before_psd.0.as_slice(),
                    before_psd.1.as_slice(),
                ),
                (
                    "after".into(),
                    after_psd.0.as_slice(),
                    after_psd.1.as_slice(),
                ),
            ],
            log_y: true,
            x_range: Some((1.0, 100.0)),
        },
        &dir.join("spectrum_surrogate"),
    )?;
    let mut series = Vec::new();
    for (b, a) in before_exact.iter().zip(after_exact) {
        series.push((
            format!("seed {} before", b.seed),
            b.freqs_hz.as_slice(),
            b.power.as_slice(),
        ));
        series.push((
            format!("seed {} after", a.seed),
            a.freqs_hz.as_slice(),
            a.power.as_slice(),
        ));
    }
    plot::save(
        &Lines {
            title: "Exact engine, held-out seeds: spectrum of the population signal".into(),
            x_desc: "frequency (Hz)".into(),
            y_desc: "power (mV^2/Hz)".into(),
            series,
            log_y: true,
            x_range: Some((1.0, 100.0)),
        },
        &dir.join("spectrum_exact"),
    )?;
    let idx: Vec<f64> = (0..gains.len()).map(|i| i as f64).collect();
    let g: Vec<f64> = gains.iter().map(|&x| x as f64).collect();
    let zero = vec![0.0; gains.len()];
    plot::save(
        &Lines {
            title: format!(
                "Log-gains per connection group (0..{}: {})",
                names.len().saturating_sub(1),
                names.join(", ")
            ),
            x_desc: "group".into(),
            y_desc: "log gain".into(),
            series: vec![
                ("optimised".into(), idx.as_slice(), g.as_slice()),
                ("start".into(), idx.as_slice(), zero.as_slice()),
            ],
            log_y: false,
            x_range: None,
        },
        &dir.join("gains"),
    )?;
    // Exact-engine rasters on the first held-out seed, before and after: what the spectra summarise.
    let pops: Vec<String> = spec.populations.iter().map(|p| p.name.clone()).collect();
    let mut offsets = vec![0usize];
    for p in &spec.populations {
        offsets.push(offsets.last().copied().unwrap_or(0) + p.size);
    }
    for (when, check) in [
        ("before", before_exact.first()),
        ("after", after_exact.first()),
    ] {
        let Some(check) = check else { continue };
        let (times, cells) = &check.spikes;
        plot::save(
            &surge::plot::Raster {
                title: format!(
                    "Exact engine, held-out seed {}, {when} ({:.0}-{:.0} Hz fraction {:.2})",
                    check.seed,
                    cfg.objective.band_hz.0,
                    cfg.objective.band_hz.1,
                    check.band_fraction
                ),
                times_ms: times,
                cells,
                pop_names: &pops,
                pop_offsets: &offsets,
                duration_ms: cfg.recheck.duration_ms,
                max_per_pop: 100,
            },
            &dir.join(format!("raster_exact_{when}")),
        )?;
    }
    Ok(())
}

/// `surge compare network`: the same spec and connectome (the network's own seed) in both engines, with
/// optional gains; rates, spectral peak and band fractions side by side, wall times, figures.
pub fn compare_network(
    config: &Path,
    checkpoint: &Path,
    backend: &str,
    gains: Option<&Path>,
    out: Option<PathBuf>,
    force: bool,
) -> Result<CompareSummary> {
    let (cfg, spec, _) = OptimizeConfig::load(config)?;
    let dir = out.unwrap_or_else(|| Path::new("experiments/out").join("compare-network"));
    anyhow::ensure!(
        force || !dir.join("report.json").exists(),
        "{} already holds a report. Fix: --force or another --out",
        dir.display()
    );
    std::fs::create_dir_all(&dir)?;
    let n_groups = spec.connections.len();
    let log_gains: Vec<f32> = match gains {
        None => vec![0.0; n_groups],
        Some(p) => read_gains(p, n_groups)?,
    };
    let plain = surge::surrogate::backend::device(backend)?;
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
    plot::save(
        &Lines {
            title: "Population signal spectrum: exact vs surrogate engine".into(),
            x_desc: "frequency (Hz)".into(),
            y_desc: "power (mV^2/Hz)".into(),
            series: vec![
                (
                    "exact".into(),
                    exact.freqs_hz.as_slice(),
                    exact.power.as_slice(),
                ),
                (
                    "surrogate".into(),
                    sur.freqs_hz.as_slice(),
                    sur.power.as_slice(),
                ),
            ],
            log_y: true,
            x_range: Some((1.0, 100.0)),
        },
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
        fmt_hz(exact.peak_hz),
        fmt_hz(sur.peak_hz)
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
