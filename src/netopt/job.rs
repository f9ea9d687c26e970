//! One optimisation run end to end, as `surge optimize`, `surge sweep` and `surge compare methods` run
//! it: overrides applied, resume state in `progress.json`, gradient descent through the surrogate
//! network, the exact re-check on held-out instances, `metrics.json`, `gains.json` and figures.

use super::descent::{Descent, OnExact, OnSurrogate};
use super::optimize::{self, AdamState, ExactCheck, IterationRecord, OptimizeConfig};
use crate::error::{Result, SurgeError};
use crate::spec::{Connectome, NetworkSpec};
use std::path::{Path, PathBuf};

/// The steps of a control run in place of the gradient's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Steps of the same size in random directions.
    RandomSign,
}

impl Control {
    /// The name `optimizer.control` uses.
    pub fn name(self) -> &'static str {
        match self {
            Control::RandomSign => "random_sign",
        }
    }
}

/// What to run and where; `None` keeps the experiment file's value.
#[derive(Clone, Debug)]
pub struct Job {
    pub config: PathBuf,
    pub checkpoint: PathBuf,
    pub backend: String,
    pub out: PathBuf,
    pub iterations: Option<usize>,
    pub control: Option<Control>,
    /// Optimiser seed (the iterations' drive noise, the control's signs).
    pub seed: Option<u64>,
    /// Held-out instances `(seed, count)` drawn fresh instead of `recheck.seeds`.
    pub heldout: Option<(u64, usize)>,
    pub spike_beta: Option<f32>,
    /// `optimizer.engine`.
    pub engine: Option<String>,
    pub resume: bool,
    pub force: bool,
}

/// What the run reports while it goes.
pub enum Event<'a> {
    /// Continuing after this many finished iterations.
    Resumed(usize),
    /// The iterations the run will do in all.
    Iterations(usize),
    Iteration(&'a IterationRecord),
    /// Exact re-check runs done of a total.
    ExactCheck(usize, usize),
}

/// The iterate the exact engine chose on the validation instances (`select = "validation"`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Selected {
    pub iteration: usize,
    pub of: usize,
    pub validation_loss: f64,
    pub validation_band_fraction: f64,
    pub validation_seeds: Vec<u64>,
}

/// The per-synapse result (`optimizer.per_synapse`).
#[derive(Clone, Debug)]
pub struct PerSynapse {
    pub n: usize,
    pub rms_log_weight: f64,
    pub path: PathBuf,
}

/// Surrogate band score and peak on the fixed evaluation noise.
#[derive(Clone, Debug)]
pub struct SurrogateScore {
    pub band_score: f64,
    pub peak_hz: Option<f64>,
}

/// What an optimisation found.
pub struct Outcome {
    pub config: OptimizeConfig,
    pub dir: PathBuf,
    pub iterations: usize,
    pub surrogate_before: SurrogateScore,
    pub surrogate_after: SurrogateScore,
    pub exact_before: Vec<ExactCheck>,
    pub exact_after: Vec<ExactCheck>,
    /// Per held-out instance: whether it meets [`optimize::passes_bar`].
    pub passed: Vec<bool>,
    pub log_gains: Vec<f32>,
    pub selected: Option<Selected>,
    pub per_synapse: Option<PerSynapse>,
    pub optimize_s: f64,
    pub exact_s: f64,
    pub metrics: PathBuf,
    pub gains: PathBuf,
}

impl Outcome {
    pub fn seeds_passing(&self) -> usize {
        self.passed.iter().filter(|&&p| p).count()
    }
}

/// The resume state of a run, rewritten after every iteration.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Progress {
    pub iterations_done: usize,
    pub log_gains: Vec<f32>,
    pub records: serde_json::Value,
    /// Per-synapse log-weights (with `optimizer.per_synapse`).
    #[serde(default)]
    pub synapse_log_w: Option<Vec<f32>>,
    /// Adam's moments (with `optimizer.method = "adam"`).
    #[serde(default)]
    pub adam: Option<AdamState>,
}

impl Progress {
    /// Reads `dir/progress.json`, checked against the network's group count.
    pub fn load(dir: &Path, n_groups: usize) -> Result<Self> {
        let path = dir.join("progress.json");
        let t = std::fs::read_to_string(&path).map_err(|_| {
            SurgeError::usage(
                format!("{} has no progress.json to resume from", dir.display()),
                "drop --resume",
            )
        })?;
        let p: Progress = serde_json::from_str(&t).map_err(|e| {
            SurgeError::usage(
                format!("{} is corrupt ({e})", path.display()),
                "start over with --force",
            )
        })?;
        if p.log_gains.len() != n_groups {
            return Err(SurgeError::usage(
                format!(
                    "progress.json has {} gains, the network {n_groups} groups",
                    p.log_gains.len()
                ),
                "start over with --force",
            ));
        }
        Ok(p)
    }
}

/// The experiment with the job's overrides applied, validated.
pub fn configure(job: &Job) -> Result<(OptimizeConfig, NetworkSpec, String)> {
    let (mut cfg, spec, text) = OptimizeConfig::load(&job.config)?;
    if let Some(i) = job.iterations {
        cfg.optimizer.iterations = i;
    }
    if let Some(c) = job.control {
        cfg.optimizer.control = c.name().into();
    }
    if let Some(s) = job.seed {
        cfg.optimizer.seed = s;
    }
    if let Some(b) = job.spike_beta {
        cfg.optimizer.spike_beta = b;
    }
    if let Some(e) = &job.engine {
        cfg.optimizer.engine = e.clone();
    }
    if let Some((seed, n)) = job.heldout {
        cfg.recheck.seeds = optimize::heldout_seeds(seed, n);
    }
    cfg.validate(&spec)?;
    Ok((cfg, spec, text))
}

fn json_write(path: &Path, v: &serde_json::Value, pretty: bool) -> Result<()> {
    let text = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    }
    .expect("JSON values serialise");
    crate::results::atomic_write(path, text.as_bytes())
}

/// Runs the job; `on` hears of its progress.
pub fn run(job: &Job, on: &mut dyn FnMut(Event)) -> Result<Outcome> {
    let (cfg, spec, text) = configure(job)?;
    let dir = &job.out;
    let progress_path = dir.join("progress.json");
    if !job.resume && !job.force && (dir.join("metrics.json").exists() || progress_path.exists()) {
        return Err(SurgeError::usage(
            format!("{} already holds an optimisation", dir.display()),
            "--resume to continue it, --force to start over, or another --out",
        ));
    }
    let n_groups = spec.connections.len();
    let prior_progress = if job.resume {
        Some(Progress::load(dir, n_groups)?)
    } else {
        None
    };
    // Forward-only evaluations run on the plain device: a forward graph on the autodiff device that is
    // never back-propagated is freed by burn 0.22 one layer of roots at a time, quadratically.
    let conn = Connectome::build(&spec);
    let exact_engine = cfg.optimizer.engine == "exact";
    let devices = if exact_engine {
        None
    } else {
        let plain = crate::surrogate::backend::device(&job.backend)?;
        Some((plain.clone().autodiff(), plain))
    };
    let nets = match &devices {
        Some((device, plain)) => Some((
            optimize::build_network(&cfg, &spec, &conn, &job.checkpoint, device)?,
            optimize::build_network(&cfg, &spec, &conn, &job.checkpoint, plain)?,
        )),
        None => None,
    };
    let model: Box<dyn Descent + '_> = match (&nets, &devices) {
        (Some((net, net_eval)), Some((device, plain))) => Box::new(OnSurrogate {
            net,
            device,
            plain: net_eval,
            plain_device: plain,
        }),
        _ => Box::new(OnExact {
            spec: &spec,
            conn: &conn,
            bptt: cfg.optimizer.bptt_config_at(spec.simulation.dt_ms),
        }),
    };
    std::fs::create_dir_all(dir).map_err(|e| SurgeError::io("cannot create", dir, e))?;
    let mut start = vec![0.0f32; n_groups];
    let mut start_w: Option<Vec<f32>> = None;
    let mut start_adam: Option<AdamState> = None;
    let mut first = 0usize;
    let mut prior: Vec<serde_json::Value> = Vec::new();
    if let Some(p) = prior_progress {
        start = p.log_gains;
        start_w = p.synapse_log_w;
        start_adam = p.adam;
        first = p.iterations_done;
        prior = serde_json::from_value(p.records).unwrap_or_default();
        on(Event::Resumed(first));
    }
    on(Event::Iterations(cfg.optimizer.iterations));
    let t0 = std::time::Instant::now();
    // Surrogate before: the initial gains on a fixed evaluation noise stream.
    let eval_noise = u64::MAX - 3;
    let zeros = vec![0.0f32; n_groups];
    let no_w = cfg
        .optimizer
        .per_synapse
        .then(|| vec![0.0f32; model.n_synapses()]);
    let (before_sur, before_psd) = model.score(&cfg, &zeros, no_w.as_deref(), eval_noise)?;
    let mut records = Vec::<IterationRecord>::new();
    let record_values = |prior: &[serde_json::Value], records: &[IterationRecord]| {
        let mut all = prior.to_vec();
        all.extend(
            records
                .iter()
                .map(|r| serde_json::to_value(r).expect("records serialise")),
        );
        all
    };
    let (mut final_gains, final_w) = optimize::optimize(
        model.as_ref(),
        &cfg,
        &start,
        start_w.as_deref(),
        start_adam,
        first,
        &mut |rec| {
            on(Event::Iteration(rec));
            records.push(rec.clone());
            let p = Progress {
                iterations_done: rec.iteration + 1,
                log_gains: rec.log_gains.clone(),
                records: serde_json::Value::Array(record_values(&prior, &records)),
                synapse_log_w: rec.synapse_log_w.clone(),
                adam: rec.adam.clone(),
            };
            json_write(
                &progress_path,
                &serde_json::to_value(&p).expect("progress serialises"),
                false,
            )
        },
    )?;
    let all_records = record_values(&prior, &records);
    let selected = if cfg.optimizer.select == "validation" {
        let (it, gains, loss, frac) = optimize::select_by_validation(&all_records).ok_or_else(|| {
            SurgeError::usage(
                "no iteration has a finite validation loss, so none can be selected",
                "check the exact network (surge validate --config ...) or set select = \"last\"",
            )
        })?;
        final_gains = gains;
        Some(Selected {
            iteration: it,
            of: all_records.len(),
            validation_loss: loss,
            validation_band_fraction: frac,
            validation_seeds: cfg.optimizer.validation_seeds.clone(),
        })
    } else {
        None
    };
    let optimize_s = t0.elapsed().as_secs_f64();
    let (after_sur, after_psd) = model.score(&cfg, &final_gains, final_w.as_deref(), eval_noise)?;
    let t1 = std::time::Instant::now();
    let (exact_before, exact_after) = recheck(
        &spec,
        &cfg,
        &conn,
        model.as_ref(),
        &final_gains,
        final_w.as_deref(),
        on,
    )?;
    let exact_s = t1.elapsed().as_secs_f64();
    let passed: Vec<bool> = exact_before
        .iter()
        .zip(&exact_after)
        .map(|(b, a)| optimize::passes_bar(&cfg, b, a))
        .collect();
    let group_names = optimize::group_names(&spec);
    let summary = |c: &ExactCheck| serde_json::json!({"seed": c.seed, "band_fraction": c.band_fraction, "peak_hz": c.peak_hz, "rates_hz": c.rates_hz});
    let metrics = serde_json::json!({
        "config": cfg,
        "config_text": text,
        "engine": model.name(),
        "checkpoint": if exact_engine { None } else { Some(job.checkpoint.display().to_string()) },
        "backend": job.backend,
        "band_hz": cfg.objective.band_hz,
        "iterations": all_records,
        "groups": group_names,
        "log_gains": final_gains,
        "surrogate": {
            "before": { "band_score": before_sur.band_score, "peak_hz": before_sur.peak_hz, "rates_hz": before_sur.rates_hz },
            "after": { "band_score": after_sur.band_score, "peak_hz": after_sur.peak_hz, "rates_hz": after_sur.rates_hz },
        },
        "exact": {
            "before": exact_before.iter().map(summary).collect::<Vec<_>>(),
            "after": exact_after.iter().map(summary).collect::<Vec<_>>(),
            "seeds_passing_bar": passed.iter().filter(|&&p| p).count(),
            "bar": "peak moves into the band, band fraction at least doubles, all population rates within 0.5-50 Hz",
        },
        "wall_clock_s": { "optimize": optimize_s, "exact_check": exact_s },
        "selected": selected,
        "exact_gradient_runs": if exact_engine { all_records.len() * cfg.optimizer.batch.max(1) } else { 0 },
        "exact_runs_for_selection": all_records.iter().filter(|r| r.get("validation_loss").is_some_and(|v| !v.is_null())).count() * cfg.optimizer.validation_seeds.len(),
        "per_synapse": final_w.is_some(),
        "exact_network_instance": if final_w.is_some() {
            "fixed: the optimised connectome (spec seed); held-out seeds vary the drive noise and initial state"
        } else {
            "new per held-out seed (connectome, drive noise and initial state)"
        },
        "populations": spec.populations.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
    });
    let metrics_path = dir.join("metrics.json");
    json_write(&metrics_path, &metrics, true)?;
    let gains_path = dir.join("gains.json");
    json_write(&gains_path, &gains_json(&group_names, &final_gains), true)?;
    let per_synapse = match &final_w {
        Some(w) => Some(write_synapses(
            dir,
            &spec,
            &cfg,
            model.as_ref(),
            &group_names,
            w,
        )?),
        None => None,
    };
    crate::plot::reports::optimisation(
        dir,
        &crate::plot::reports::OptimisationFigures {
            cfg: &cfg,
            spec: &spec,
            records: &all_records,
            before_psd: &before_psd,
            after_psd: &after_psd,
            before_exact: &exact_before,
            after_exact: &exact_after,
            names: &group_names,
            gains: &final_gains,
        },
    )?;
    let score = |s: &IterationRecord| SurrogateScore {
        band_score: s.band_score,
        peak_hz: s.peak_hz,
    };
    Ok(Outcome {
        iterations: cfg.optimizer.iterations,
        surrogate_before: score(&before_sur),
        surrogate_after: score(&after_sur),
        config: cfg,
        dir: dir.clone(),
        exact_before,
        exact_after,
        passed,
        log_gains: final_gains,
        selected,
        per_synapse,
        optimize_s,
        exact_s,
        metrics: metrics_path,
        gains: gains_path,
    })
}

/// The exact engine on the held-out instances, before and after. Per-synapse weights belong to this
/// network instance: then the optimised connectome is re-run with the instances' drive noise and
/// initial state.
fn recheck(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    conn: &Connectome,
    model: &dyn Descent,
    final_gains: &[f32],
    final_w: Option<&[f32]>,
    on: &mut dyn FnMut(Event),
) -> Result<(Vec<ExactCheck>, Vec<ExactCheck>)> {
    let fixed = match final_w {
        Some(w) => {
            let with_gains = Connectome::build(&optimize::apply_gains(spec, final_gains));
            if with_gains.targets != conn.targets {
                return Err(SurgeError::usage(
                    "the connectome drawn with the optimised gains differs from the one optimised, so the per-synapse weights cannot be mapped onto it",
                    "report this with the experiment file (it is a bug)",
                ));
            }
            Some((conn.clone(), model.apply_synapse_weights(&with_gains, w)))
        }
        None => None,
    };
    let zeros = vec![0.0f32; final_gains.len()];
    let total = 2 * cfg.recheck.seeds.len();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let (r, w) = (cfg.recheck.duration_ms, cfg.recheck.warmup_ms);
    let run = |gains: &[f32], c: Option<&Connectome>, seed: u64| match c {
        Some(c) => optimize::exact_run_with_hook(spec, cfg, gains, seed, r, w, None, Some(c)),
        None => optimize::exact_check(spec, cfg, gains, seed),
    };
    for &seed in &cfg.recheck.seeds {
        before.push(run(&zeros, fixed.as_ref().map(|f| &f.0), seed)?);
        on(Event::ExactCheck(before.len() + after.len(), total));
        after.push(run(final_gains, fixed.as_ref().map(|f| &f.1), seed)?);
        on(Event::ExactCheck(before.len() + after.len(), total));
    }
    Ok((before, after))
}

fn write_synapses(
    dir: &Path,
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    model: &dyn Descent,
    group_names: &[String],
    w: &[f32],
) -> Result<PerSynapse> {
    let table = model.synapse_table();
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
    let path = dir.join("synapses.json");
    json_write(&path, &syn, false)?;
    Ok(PerSynapse {
        n: w.len(),
        rms_log_weight: rms,
        path,
    })
}

/// `conn` with the per-synapse log-weights of a synapses.json written by `surge optimize` through
/// the exact engine (one entry per synapse of this connectome, checked synapse by synapse).
pub fn apply_synapses_file(p: &Path, conn: &Connectome) -> Result<Connectome> {
    let text = std::fs::read_to_string(p).map_err(|e| SurgeError::io("cannot read", p, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        SurgeError::usage(
            format!("{} is not JSON", p.display()),
            "pass the synapses.json written by `surge optimize`",
        )
    })?;
    let numbers = |key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    let (log_w, pre, post) = (numbers("log_weight"), numbers("pre"), numbers("post"));
    let n = conn.targets.len();
    if log_w.len() != n || pre.len() != n || post.len() != n {
        return Err(SurgeError::usage(
            format!(
                "{} holds {} per-synapse entries, this connectome has {n} synapses",
                p.display(),
                log_w.len()
            ),
            "pass the synapses.json of an exact-engine optimisation (engine = \"exact\") of this network and seed; a surrogate-engine run shares entries between contacts",
        ));
    }
    let mut out = conn.clone();
    for i in 0..conn.n_cells {
        for seg in &conn.segments[conn.seg_ptr[i]..conn.seg_ptr[i + 1]] {
            for k in seg.start..seg.end {
                if pre[k] as usize != i || post[k] as usize != conn.targets[k] as usize {
                    return Err(SurgeError::usage(
                        format!(
                            "entry {k} of {} joins cells {} -> {}, the connectome's synapse {k} joins {i} -> {}",
                            p.display(),
                            pre[k],
                            post[k],
                            conn.targets[k]
                        ),
                        "pass the synapses.json of this network with the same seed",
                    ));
                }
                out.weights[k] *= (log_w[k] as f32).exp();
            }
        }
    }
    Ok(out)
}

/// The log-gains of a gains.json written by `surge optimize`, checked against the network's groups.
/// The gains.json form: one `{group, log_gain, gain}` per connection group ([`read_gains`] reads it).
pub fn gains_json(group_names: &[String], log_gains: &[f32]) -> serde_json::Value {
    serde_json::json!(
        group_names
            .iter()
            .zip(log_gains)
            .map(|(n, g)| serde_json::json!({"group": n, "log_gain": g, "gain": (*g as f64).exp()}))
            .collect::<Vec<_>>()
    )
}

pub fn read_gains(p: &Path, n_groups: usize) -> Result<Vec<f32>> {
    let text = std::fs::read_to_string(p).map_err(|e| SurgeError::io("cannot read", p, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        SurgeError::usage(
            format!("{} is not JSON", p.display()),
            "pass the gains.json written by `surge optimize`",
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
    if g.len() != n_groups {
        return Err(SurgeError::usage(
            format!(
                "{} holds {} gains but the network has {n_groups} connection groups",
                p.display(),
                g.len()
            ),
            "pass the gains.json of an optimisation of this network",
        ));
    }
    Ok(g)
}
