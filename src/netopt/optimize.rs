//! The gradient-step loop over connection gains (and synapse weights), and the re-check of its
//! result in the exact engine.

use super::descent::Descent;
use super::engine::{CellType, Engine, Gains, SpikeMode, SurrogateNetwork};
use super::objective::{self, ObjectiveConfig, Spectrum};
use crate::error::{Result, SurgeError};
use crate::experiment::signal_psd;
use crate::spec::{Connectome, NetworkSpec};
use crate::surrogate::train::load_checkpoint;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An optimisation experiment (`experiments/alpha_to_beta.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizeConfig {
    /// The network (relative paths: against the working directory, then this file's folder).
    pub network: String,
    /// Cell type -> populations it stands for; the surrogate of type T is `<checkpoint>/T/`.
    pub cells: BTreeMap<String, Vec<String>>,
    /// Populations whose mean somatic voltage is the population signal.
    #[serde(default = "d_signal")]
    pub signal: Vec<String>,
    #[serde(default)]
    pub objective: ObjectiveConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub recheck: RecheckConfig,
    /// The exact RLS (FORCE) route to the same band, for `surge compare methods`.
    #[serde(default)]
    pub rls: crate::rls::band::BandRlsConfig,
}

fn d_signal() -> Vec<String> {
    vec!["L5_pyr".into()]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    pub iterations: usize,
    pub lr: f64,
    /// Scored window per iteration, after a warm-up that is simulated but not scored (ms).
    pub window_ms: f64,
    pub warmup_ms: f64,
    /// Scale of the spike surrogate gradient: `sigmoid(beta * logit)`.
    pub spike_beta: f32,
    /// Largest gradient norm a step sees (per parameter tensor).
    pub clip_norm: f32,
    /// Log-gains are kept within +-this.
    pub max_abs_log_gain: f32,
    /// Seeds the drive noise of the iterations (see [`OptimizerConfig::iteration_noise`]).
    pub seed: u64,
    /// Back-propagation through time runs in chunks of this length (ms), each re-simulated from its
    /// saved start state: memory for one chunk's graph instead of the window's, and the same gradient.
    /// 0 makes the whole window one graph.
    pub bptt_chunk_ms: f64,
    /// `auto` (the fused CPU engine on the flex backend, burn's autodiff on any other), `fused` or
    /// `burn`. Both give the same gradient; the fused one is the fast path on the CPU.
    pub engine: String,
    /// `normalized` (default): after clipping the gradient's norm to `clip_norm`, every parameter
    /// moves by `lr g / (|g| + 1e-5)` against its gradient `g`: about `lr` where the gradient is
    /// resolved, less where it is negligible. This is Adam's first step, taken afresh each iteration
    /// (no moment estimates carried). `adam`: Adam with its moment estimates kept across iterations.
    /// `sgd`: `lr g` after clipping.
    pub method: String,
    /// Noise windows per step: the objective is an expectation over drive noise, and each step's
    /// gradient is the mean over this many windows (each a fresh noise stream).
    pub batch: usize,
    /// Step size over the run: `constant`, or `cosine` from `lr` down to `lr_min`.
    pub lr_schedule: String,
    pub lr_min: f64,
    /// `none`, or `random_sign`: the control that shows whether the gradient is what works. The same
    /// loop, windows, step sizes, bounds and selection, but each parameter moves by the step size in
    /// a random direction (seeded by `seed`) instead of against its gradient.
    pub control: String,
    /// The result is the mean of the parameters after each of the last `average_last` iterations
    /// (1: the last iterate). Each iteration sees fresh drive noise, so single iterates scatter around
    /// the optimum; their average is a steadier estimate.
    pub average_last: usize,
    /// Which parameters are the result: `last` (the last iterate, or the mean of the last
    /// `average_last`), or `validation`: the iterate whose loss in the exact engine, on the network
    /// instances `validation_seeds` (never the held-out `recheck.seeds`), is lowest. Each window's
    /// gradient is noisy and the column's rhythm switches abruptly, so single iterates scatter; the
    /// exact engine is cheap next to a gradient step and says which one to keep, as early stopping
    /// on a validation set does.
    pub select: String,
    pub validation_seeds: Vec<u64>,
    /// Also fit one log-weight per synapse (fused engine only). The network instance is then fixed:
    /// the exact re-check runs the optimised connectome with held-out drive noise.
    pub per_synapse: bool,
    /// Weight of the mean squared per-synapse log-weight in the loss.
    pub synapse_l2: f64,
    /// Per-synapse log-weights are kept within +-this.
    pub max_abs_log_weight: f32,
    /// Whether the group log-gains move (`false` with `per_synapse`: only the synapses do, the test
    /// of many parameters where no group mean can do the work).
    pub train_gains: bool,
    /// With `engine = "exact"`: the surrogate spike derivative's shape (`fast_sigmoid` or
    /// `sigmoid`) and width in mV, and whether the gradient passes through the reset.
    pub spike_shape: crate::bptt::SpikeShape,
    pub spike_width_mv: f64,
    pub reset_gradient: bool,
    /// With `engine = "exact"`: the factor on the surrogate derivative that keeps the
    /// back-propagated gradient of a recurrent network from growing exponentially with the window.
    pub spike_damping: f64,
}

impl OptimizerConfig {
    /// The differentiable exact engine's settings (`engine = "exact"`), chunked as `bptt_chunk_ms`
    /// at time step `dt_ms` (0: one chunk).
    pub fn bptt_config_at(&self, dt_ms: f64) -> crate::bptt::BpttConfig {
        crate::bptt::BpttConfig {
            surrogate: crate::bptt::Surrogate {
                shape: self.spike_shape,
                width_mv: self.spike_width_mv,
            },
            mode: crate::bptt::SpikeMode::Hard,
            damping: self.spike_damping,
            reset_gradient: self.reset_gradient,
            chunk_steps: (self.bptt_chunk_ms / dt_ms).round() as usize,
        }
    }

    /// The drive-noise stream of iteration `it`: fresh noise every iteration, a different sequence for
    /// every optimiser `seed` (the network instance is the spec's).
    pub fn iteration_noise(&self, it: usize) -> u64 {
        (self.seed << 24) ^ it as u64
    }

    /// The noise stream of window `k` of iteration `it`'s batch (with `batch = 1`, iteration `it`'s).
    pub fn window_noise(&self, it: usize, k: usize) -> u64 {
        self.iteration_noise(it * self.batch.max(1) + k)
    }

    /// The step size of iteration `it` under `lr_schedule`.
    pub fn lr_at(&self, it: usize) -> f64 {
        match self.lr_schedule.as_str() {
            "cosine" => {
                let t = it as f64 / (self.iterations.max(2) - 1) as f64;
                self.lr_min
                    + 0.5
                        * (self.lr - self.lr_min)
                        * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
            _ => self.lr,
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            iterations: 40,
            lr: 0.1,
            window_ms: 500.0,
            warmup_ms: 100.0,
            spike_beta: 1.0,
            clip_norm: 1.0,
            max_abs_log_gain: 2.0,
            seed: 17,
            bptt_chunk_ms: 50.0,
            engine: "auto".into(),
            method: "normalized".into(),
            batch: 1,
            lr_schedule: "constant".into(),
            lr_min: 0.01,
            control: "none".into(),
            average_last: 1,
            select: "last".into(),
            validation_seeds: vec![201, 202],
            per_synapse: false,
            synapse_l2: 0.1,
            spike_shape: crate::bptt::SpikeShape::FastSigmoid,
            spike_width_mv: 0.5,
            reset_gradient: false,
            spike_damping: 0.01,
            max_abs_log_weight: 1.0,
            train_gains: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecheckConfig {
    /// Held-out seeds: each is a new instance of the network (connectome and drive).
    pub seeds: Vec<u64>,
    pub duration_ms: f64,
    /// Simulated but not analysed at the start (ms).
    pub warmup_ms: f64,
}

impl Default for RecheckConfig {
    fn default() -> Self {
        RecheckConfig {
            seeds: vec![101, 102, 103],
            duration_ms: 3000.0,
            warmup_ms: 200.0,
        }
    }
}

impl OptimizeConfig {
    pub fn load(path: &Path) -> Result<(Self, NetworkSpec, String)> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
        let cfg: OptimizeConfig = toml::from_str(&text).map_err(|e| SurgeError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let net_path = resolve(&cfg.network, path);
        let (spec, _) = NetworkSpec::load(&net_path)?;
        cfg.validate(&spec)?;
        Ok((cfg, spec, text))
    }

    pub fn validate(&self, spec: &NetworkSpec) -> Result<()> {
        self.rls.validate(spec)?;
        for (t, pops) in &self.cells {
            for p in pops {
                if spec.population_index(p).is_none() {
                    return Err(SurgeError::spec(
                        format!("cells.{t}"),
                        format!("no population `{p}` in the network"),
                        "use the population names of the network file",
                    ));
                }
            }
        }
        for p in &self.signal {
            if spec.population_index(p).is_none() {
                return Err(SurgeError::spec(
                    "signal",
                    format!("no population `{p}` in the network"),
                    "name populations of the network file",
                ));
            }
        }
        let (lo, hi) = self.objective.band_hz;
        if !(lo > 0.0 && hi > lo) {
            return Err(SurgeError::spec(
                "objective.band_hz",
                format!("[{lo}, {hi}] is not a band"),
                "give [low, high] with 0 < low < high (Hz)",
            ));
        }
        if !matches!(
            self.objective.kind.as_str(),
            "band_fraction" | "log_band_power"
        ) {
            return Err(SurgeError::spec(
                "objective.kind",
                format!("unknown objective `{}`", self.objective.kind),
                "use band_fraction or log_band_power",
            ));
        }
        let (plo, phi) = self.objective.peak_range_hz;
        if let Some(t) = self.objective.target_peak_hz
            && !(plo > 0.0 && phi > plo && t >= plo && t <= phi)
        {
            return Err(SurgeError::spec(
                "objective.target_peak_hz",
                format!("{t} Hz is not inside peak_range_hz [{plo}, {phi}]"),
                "give a target inside the range, e.g. target_peak_hz = 20.0 with peak_range_hz = [2.0, 100.0]",
            ));
        }
        if self.objective.peak_weight.is_nan() || self.objective.peak_weight < 0.0 {
            return Err(SurgeError::spec(
                "objective.peak_weight",
                "must be >= 0",
                "e.g. peak_weight = 1.0",
            ));
        }
        let o = &self.optimizer;
        let bad = |x: f64, min: f64| x.is_nan() || x < min;
        if o.iterations == 0
            || bad(o.lr, f64::MIN_POSITIVE)
            || bad(o.window_ms, 50.0)
            || bad(o.warmup_ms, 0.0)
            || bad(o.bptt_chunk_ms, 0.0)
        {
            return Err(SurgeError::spec(
                "optimizer",
                "needs iterations >= 1, lr > 0, window_ms >= 50, warmup_ms >= 0 and bptt_chunk_ms >= 0",
                "fix the [optimizer] table",
            ));
        }
        if o.synapse_l2.is_nan() || o.synapse_l2 < 0.0 {
            return Err(SurgeError::spec(
                "optimizer.synapse_l2",
                format!("{} is not >= 0", o.synapse_l2),
                "e.g. synapse_l2 = 0.1 (0: no penalty on the per-synapse log-weights)",
            ));
        }
        if o.max_abs_log_gain.is_nan() || o.max_abs_log_gain <= 0.0 {
            return Err(SurgeError::spec(
                "optimizer.max_abs_log_gain",
                format!("{} is not > 0", o.max_abs_log_gain),
                "e.g. max_abs_log_gain = 2.0",
            ));
        }
        if !(o.spike_beta > 0.0 && o.spike_beta.is_finite()) {
            return Err(SurgeError::spec(
                "optimizer.spike_beta",
                format!("{} is not > 0", o.spike_beta),
                "e.g. spike_beta = 0.1 (in calibrated logit widths; see surge gradcheck)",
            ));
        }
        if o.max_abs_log_weight.is_nan() || o.max_abs_log_weight <= 0.0 {
            return Err(SurgeError::spec(
                "optimizer.max_abs_log_weight",
                format!("{} is not > 0", o.max_abs_log_weight),
                "e.g. max_abs_log_weight = 1.0",
            ));
        }
        if o.average_last == 0 {
            return Err(SurgeError::spec(
                "optimizer.average_last",
                "must be at least 1",
                "use 1 for the last iterate, or e.g. 10",
            ));
        }
        if !["normalized", "adam", "sgd"].contains(&o.method.as_str()) {
            return Err(SurgeError::spec(
                "optimizer.method",
                format!("unknown method `{}`", o.method),
                "use normalized, adam or sgd",
            ));
        }
        if o.batch == 0 {
            return Err(SurgeError::spec(
                "optimizer.batch",
                "must be at least 1",
                "e.g. batch = 4 (noise windows per step)",
            ));
        }
        if !["constant", "cosine"].contains(&o.lr_schedule.as_str()) {
            return Err(SurgeError::spec(
                "optimizer.lr_schedule",
                format!("unknown schedule `{}`", o.lr_schedule),
                "use constant or cosine",
            ));
        }
        if o.lr_min.is_nan() || o.lr_min < 0.0 || o.lr_min > o.lr {
            return Err(SurgeError::spec(
                "optimizer.lr_min",
                format!("{} is not within [0, lr = {}]", o.lr_min, o.lr),
                "e.g. lr_min = 0.01",
            ));
        }
        if !["none", "random_sign"].contains(&o.control.as_str()) {
            return Err(SurgeError::spec(
                "optimizer.control",
                format!("unknown control `{}`", o.control),
                "use none or random_sign",
            ));
        }
        if o.per_synapse && o.engine == "burn" {
            return Err(SurgeError::spec(
                "optimizer.per_synapse",
                "per-synapse weights are differentiated by the fused engine only",
                "set engine = \"auto\", \"fused\" (CPU, flex backend) or \"exact\", or per_synapse = false",
            ));
        }
        if !["auto", "fused", "burn", "exact"].contains(&o.engine.as_str()) {
            return Err(SurgeError::spec(
                "optimizer.engine",
                format!("unknown engine `{}`", o.engine),
                "use auto, fused, burn (surrogate network) or exact (the exact engine, differentiated)",
            ));
        }
        if !o.train_gains && !o.per_synapse {
            return Err(SurgeError::spec(
                "optimizer.train_gains",
                "false leaves nothing to optimise without per-synapse weights",
                "set per_synapse = true, or train_gains = true",
            ));
        }
        if !(o.spike_damping >= 0.0 && o.spike_damping.is_finite()) {
            return Err(SurgeError::spec(
                "optimizer.spike_damping",
                format!("{} is not >= 0", o.spike_damping),
                "e.g. spike_damping = 0.01 (0: no gradient through spike generation)",
            ));
        }
        if !(o.spike_width_mv > 0.0 && o.spike_width_mv.is_finite()) {
            return Err(SurgeError::spec(
                "optimizer.spike_width_mv",
                format!("{} is not a positive width", o.spike_width_mv),
                "e.g. spike_width_mv = 1.0 (the surrogate spike derivative's width, exact engine)",
            ));
        }
        match o.select.as_str() {
            "last" => {}
            "validation" => {
                if o.validation_seeds.is_empty() {
                    return Err(SurgeError::spec(
                        "optimizer.validation_seeds",
                        "is empty",
                        "give at least one seed, e.g. validation_seeds = [201, 202]",
                    ));
                }
                if let Some(s) = o
                    .validation_seeds
                    .iter()
                    .find(|s| self.recheck.seeds.contains(s))
                {
                    return Err(SurgeError::spec(
                        "optimizer.validation_seeds",
                        format!("seed {s} is also a held-out seed of [recheck]"),
                        "choose validation seeds that the re-check does not use",
                    ));
                }
                if o.per_synapse || o.average_last > 1 {
                    return Err(SurgeError::spec(
                        "optimizer.select",
                        "validation picks one iterate of the group gains; it does not combine with per_synapse or average_last > 1",
                        "set select = \"last\", or per_synapse = false and average_last = 1",
                    ));
                }
            }
            other => {
                return Err(SurgeError::spec(
                    "optimizer.select",
                    format!("unknown selection `{other}`"),
                    "use last or validation",
                ));
            }
        }
        if self.recheck.seeds.is_empty()
            || self.recheck.duration_ms <= self.recheck.warmup_ms + 500.0
        {
            return Err(SurgeError::spec(
                "recheck",
                "needs at least one seed and duration_ms at least 500 ms longer than warmup_ms",
                "fix the [recheck] table",
            ));
        }
        Ok(())
    }
}

impl OptimizeConfig {
    /// Indices of the populations whose mean voltage is the signal (names checked by `validate`).
    pub fn signal_populations(&self, spec: &NetworkSpec) -> Vec<usize> {
        self.signal
            .iter()
            .map(|p| spec.population_index(p).expect("validated"))
            .collect()
    }
}

/// A relative path resolved against the working directory first, then `origin`'s folder.
pub fn resolve(p: &str, origin: &Path) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    origin.parent().map_or(path.to_path_buf(), |d| d.join(path))
}

/// Loads `<checkpoint>/<type>/` for every cell type and wires the surrogate network.
/// Builds the surrogate network of every checkpoint once on `spec`'s own instance, so that a wrong
/// path or a checkpoint that does not fit fails before any long work starts.
pub fn check_checkpoints(
    cfg: &OptimizeConfig,
    spec: &NetworkSpec,
    checkpoints: &[std::path::PathBuf],
    device: &Device,
) -> Result<()> {
    let conn = Connectome::build(spec);
    for c in checkpoints {
        build_network(cfg, spec, &conn, c, device)?;
    }
    Ok(())
}

pub fn build_network(
    cfg: &OptimizeConfig,
    spec: &NetworkSpec,
    conn: &Connectome,
    checkpoint: &Path,
    device: &Device,
) -> Result<SurrogateNetwork> {
    let mut types = Vec::new();
    for (name, pops) in &cfg.cells {
        let dir = checkpoint.join(name);
        let (model, meta) = load_checkpoint(&dir, device)?;
        let populations = pops
            .iter()
            .map(|p| spec.population_index(p).expect("validated"))
            .collect();
        types.push(CellType {
            name: name.clone(),
            model: model.no_grad(),
            meta,
            populations,
        });
    }
    let mut net = SurrogateNetwork::new(spec, conn, types, device)?;
    match cfg.optimizer.engine.as_str() {
        "fused" => net.set_engine(Engine::Fused)?,
        "burn" => net.set_engine(Engine::Burn)?,
        _ => {}
    }
    if cfg.optimizer.per_synapse && device.is_autodiff() && net.engine() != Engine::Fused {
        return Err(SurgeError::spec(
            "optimizer.per_synapse",
            "per-synapse weights are differentiated by the fused engine, which runs on the CPU (flex) backend",
            "use --backend flex, or per_synapse = false",
        ));
    }
    Ok(net)
}

/// One iteration's record.
#[derive(Debug, Clone, Serialize)]
pub struct IterationRecord {
    pub iteration: usize,
    pub loss: f64,
    pub band_score: f64,
    pub peak_hz: Option<f64>,
    pub rates_hz: Vec<f64>,
    pub rate_penalty: f64,
    pub log_gains: Vec<f32>,
    pub seconds: f64,
    /// How far (mV) the chunked back-propagation's re-runs strayed from the forward pass (0: exact).
    pub replay_error_mv: f32,
    /// Root mean square of the per-synapse log-weights (with `per_synapse`).
    pub synapse_log_w_rms: Option<f64>,
    /// With `select = "validation"`: the exact engine's loss and band fraction of `log_gains`,
    /// averaged over the validation seeds.
    pub validation_loss: Option<f64>,
    pub validation_band_fraction: Option<f64>,
    /// The per-synapse log-weights after the step (kept for progress files, not in every record).
    #[serde(skip)]
    pub synapse_log_w: Option<Vec<f32>>,
    /// Adam's moments after the step (`method = "adam"`; for progress files).
    #[serde(skip)]
    pub adam: Option<AdamState>,
}

/// Adam's state, kept across iterations and in progress.json so a resumed run continues it: the step
/// count and, per parameter tensor (group log-gains, then per-synapse log-weights), the first and
/// second moment estimates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AdamState {
    pub t: u64,
    pub m: Vec<Vec<f64>>,
    pub v: Vec<Vec<f64>>,
}

/// `g` scaled to norm at most `clip` (f64, summed in order).
fn clipped(g: &[f32], clip: f32) -> Vec<f64> {
    let norm = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let k = if norm > clip as f64 {
        clip as f64 / norm
    } else {
        1.0
    };
    g.iter().map(|&x| x as f64 * k).collect()
}

/// One step of parameter tensor `which` on plain numbers (see `OptimizerConfig::method`); Adam's
/// constants are burn's defaults (0.9, 0.999, epsilon 1e-5), its gradient clipped like the others.
fn step_tensor(
    method: &str,
    x: &[f32],
    g: &[f32],
    lr: f64,
    clip: f32,
    adam: &mut AdamState,
    which: usize,
) -> Vec<f32> {
    let g = clipped(g, clip);
    let delta: Vec<f64> = match method {
        "adam" => {
            while adam.m.len() <= which {
                adam.m.push(Vec::new());
                adam.v.push(Vec::new());
            }
            let (m, v) = (&mut adam.m[which], &mut adam.v[which]);
            m.resize(g.len(), 0.0);
            v.resize(g.len(), 0.0);
            let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-5f64);
            let t = adam.t as i32;
            g.iter()
                .zip(m.iter_mut().zip(v.iter_mut()))
                .map(|(&gi, (mi, vi))| {
                    *mi = b1 * *mi + (1.0 - b1) * gi;
                    *vi = b2 * *vi + (1.0 - b2) * gi * gi;
                    let mh = *mi / (1.0 - b1.powi(t));
                    let vh = *vi / (1.0 - b2.powi(t));
                    mh / (vh.sqrt() + eps)
                })
                .collect()
        }
        "sgd" => g,
        _ => g.iter().map(|&gi| gi / (gi.abs() + 1e-5)).collect(),
    };
    x.iter()
        .zip(&delta)
        .map(|(&xi, d)| (xi as f64 - lr * d) as f32)
        .collect()
}

/// Loss tensor, record, periodogram (Hz, power) and, if asked, the raster of one evaluation.
pub type Evaluation = (
    Tensor<1>,
    IterationRecord,
    (Vec<f64>, Vec<f64>),
    Option<Vec<Vec<u32>>>,
);

/// Simulates a window in the surrogate network and scores it; returns the loss tensor, the record
/// and the periodogram (Hz, power). On an autodiff device the loss carries the whole window's graph;
/// [`evaluate_with_gradient`] is the way to differentiate long windows.
pub fn evaluate(
    net: &SurrogateNetwork,
    cfg: &OptimizeConfig,
    gains: &Gains,
    noise: u64,
    device: &Device,
    record_raster: bool,
) -> Evaluation {
    let (warm, win) = window_bins(net, cfg);
    let run = net.run(
        gains,
        warm + win,
        noise,
        spike_mode(cfg),
        &cfg.signal_populations(&net.spec),
        record_raster,
        &mut |_, _| {},
    );
    let counts: Vec<f32> = run.pop_spikes.iter().map(|t| scalar(t) as f32).collect();
    let (total, rec, psd) = score(
        net,
        cfg,
        run.signal,
        &run.pop_expected,
        &counts,
        gains,
        device,
    );
    (total, rec, psd, run.raster)
}

/// One step's evaluation: the record, the periodogram (Hz, power) and the gradient.
pub type GradientEvaluation = (IterationRecord, (Vec<f64>, Vec<f64>), GradientsParams);

/// One optimisation step's evaluation: the record, the periodogram and the gradient of the loss with
/// respect to the log-gains, back-propagated through time in chunks of `optimizer.bptt_chunk_ms`.
pub fn evaluate_with_gradient(
    net: &SurrogateNetwork,
    cfg: &OptimizeConfig,
    gains: &Gains,
    noise: u64,
    device: &Device,
    progress: &mut dyn FnMut(u64, u64),
) -> GradientEvaluation {
    let (warm, win) = window_bins(net, cfg);
    // At least one bin per chunk: a chunk shorter than a bin means "as short as possible", not "one graph".
    let chunk = if cfg.optimizer.bptt_chunk_ms > 0.0 {
        ((cfg.optimizer.bptt_chunk_ms / net.bin_ms()).round() as usize).max(1)
    } else {
        0
    };
    if let Some(r) = evaluate_with_gradient_plain(net, cfg, gains, noise, chunk, progress) {
        return r;
    }
    let mut scored = None;
    let run = net.run_with_gradient(
        gains,
        warm + win,
        noise,
        spike_mode(cfg),
        &cfg.signal_populations(&net.spec),
        chunk,
        false,
        &mut |signal, expected, counts| {
            let (total, rec, psd) = score(net, cfg, signal, &expected, counts, gains, device);
            scored = Some((rec, psd));
            total
        },
        progress,
    );
    let (mut rec, psd) = scored.expect("the loss was evaluated");
    rec.replay_error_mv = run.replay_error_mv;
    (rec, psd, run.grads)
}

/// [`evaluate_with_gradient`] on the fused engine with the objective on plain numbers
/// ([`objective::loss_plain`]): the optimiser's trajectory then does not depend on the CPU's SIMD
/// width. `None` on the burn engine.
fn evaluate_with_gradient_plain(
    net: &SurrogateNetwork,
    cfg: &OptimizeConfig,
    gains: &Gains,
    noise: u64,
    chunk: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Option<GradientEvaluation> {
    if net.engine() != Engine::Fused {
        return None;
    }
    let bin = net.bin_ms();
    let (warm, win) = window_bins(net, cfg);
    let secs = (warm + win) as f64 * bin / 1000.0;
    let sizes: Vec<f64> = net.spec.populations.iter().map(|p| p.size as f64).collect();
    let spectrum = objective::PlainSpectrum::new(win, 1000.0 / bin);
    let log_gain = gains.values();
    let log_w = gains.synapse_values();
    let mut scored = None;
    let run = net.run_with_gradient_plain(
        gains,
        warm + win,
        noise,
        spike_mode(cfg),
        &cfg.signal_populations(&net.spec),
        chunk,
        false,
        &mut |signal, expected, counts| {
            let expected_rates: Vec<f64> = expected
                .iter()
                .zip(&sizes)
                .map(|(&e, n)| e as f64 / (n * secs))
                .collect();
            let l = objective::loss_plain(
                &cfg.objective,
                &spectrum,
                &signal[warm..],
                &expected_rates,
                &log_gain,
            );
            let mut d_signal = vec![0f32; warm];
            d_signal.extend(l.d_signal.iter().map(|&d| d as f32));
            let d_expected = l
                .d_rates
                .iter()
                .zip(&sizes)
                .map(|(d, n)| (d / (n * secs)) as f32)
                .collect();
            let mut total = l.total;
            let d_log_w = log_w.as_ref().map(|w| {
                let l2 = cfg.optimizer.synapse_l2;
                total += l2 * w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64;
                w.iter()
                    .map(|&x| (2.0 * l2 * x as f64 / w.len() as f64) as f32)
                    .collect()
            });
            let peak = crate::signal::Psd {
                freqs_hz: spectrum.freqs_hz.clone(),
                power: l.power.clone(),
            }
            .peak_hz(2.0, 100.0);
            let rec = IterationRecord {
                iteration: 0,
                loss: total,
                band_score: l.band_score,
                peak_hz: peak,
                rates_hz: counts
                    .iter()
                    .zip(&sizes)
                    .map(|(&c, n)| c as f64 / (n * secs))
                    .collect(),
                rate_penalty: l.rate_penalty,
                log_gains: log_gain.clone(),
                seconds: 0.0,
                replay_error_mv: 0.0,
                synapse_log_w_rms: None,
                synapse_log_w: None,
                validation_loss: None,
                validation_band_fraction: None,
                adam: None,
            };
            scored = Some((rec, (spectrum.freqs_hz.clone(), l.power.clone())));
            super::engine::PlainWindowLoss {
                loss: total,
                d_signal,
                d_expected,
                d_log_gain: l.d_log_gain.iter().map(|&d| d as f32).collect(),
                d_log_w,
            }
        },
        progress,
    )?;
    let (mut rec, psd) = scored.expect("the loss was evaluated");
    rec.replay_error_mv = run.replay_error_mv;
    Some((rec, psd, run.grads))
}

fn window_bins(net: &SurrogateNetwork, cfg: &OptimizeConfig) -> (usize, usize) {
    let bin = net.bin_ms();
    (
        (cfg.optimizer.warmup_ms / bin).round() as usize,
        (cfg.optimizer.window_ms / bin).round() as usize,
    )
}

fn spike_mode(cfg: &OptimizeConfig) -> SpikeMode {
    SpikeMode::StraightThrough {
        beta: cfg.optimizer.spike_beta,
    }
}

/// The objective on a window's signal (warm-up included, `[bins]`), expected spikes per population
/// (differentiable; the rate penalty) and spike counts (the rates reported).
fn score(
    net: &SurrogateNetwork,
    cfg: &OptimizeConfig,
    signal: Tensor<1>,
    pop_expected: &[Tensor<1>],
    pop_counts: &[f32],
    gains: &Gains,
    device: &Device,
) -> (Tensor<1>, IterationRecord, (Vec<f64>, Vec<f64>)) {
    let bin = net.bin_ms();
    let (warm, win) = window_bins(net, cfg);
    let secs = (warm + win) as f64 * bin / 1000.0;
    let expected_rates: Vec<Tensor<1>> = pop_expected
        .iter()
        .zip(&net.spec.populations)
        .map(|(s, p)| s.clone().div_scalar(p.size as f64 * secs))
        .collect();
    let rates: Vec<f64> = pop_counts
        .iter()
        .zip(&net.spec.populations)
        .map(|(&c, p)| c as f64 / (p.size as f64 * secs))
        .collect();
    let spectrum = Spectrum::new(win, 1000.0 / bin, device);
    let signal = signal.narrow(0, warm, win);
    let psd: Vec<f64> = spectrum
        .psd(signal.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(|x| x as f64)
        .collect();
    let l = objective::loss(
        &cfg.objective,
        &spectrum,
        signal,
        &expected_rates,
        gains.log_gain.val(),
        device,
    );
    let total = match &gains.log_w {
        Some(w) if cfg.optimizer.synapse_l2 > 0.0 => {
            l.total.clone()
                + w.val()
                    .powi_scalar(2)
                    .mean()
                    .mul_scalar(cfg.optimizer.synapse_l2)
        }
        _ => l.total.clone(),
    };
    let peak = crate::signal::Psd {
        freqs_hz: spectrum.freqs_hz.clone(),
        power: psd.clone(),
    }
    .peak_hz(2.0, 100.0);
    let rec = IterationRecord {
        iteration: 0,
        loss: scalar(&total),
        band_score: l.band_score,
        peak_hz: peak,
        rates_hz: rates,
        rate_penalty: l.rate_penalty,
        log_gains: gains.values(),
        seconds: 0.0,
        replay_error_mv: 0.0,
        synapse_log_w_rms: None,
        synapse_log_w: None,
        validation_loss: None,
        validation_band_fraction: None,
        adam: None,
    };
    (total, rec, (spectrum.freqs_hz.clone(), psd))
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_data().try_to_vec::<f32>().expect("f32")[0] as f64
}

/// `pre->post channel` for every connection group, in the order of the log-gains.
pub fn group_names(spec: &NetworkSpec) -> Vec<String> {
    spec.connections
        .iter()
        .map(|c| format!("{}->{} {}", c.pre, c.post, c.channel))
        .collect()
}

/// The first non-finite entry of `v`, as (index, value).
fn first_non_finite(v: &[f32]) -> Option<(usize, f32)> {
    v.iter().copied().enumerate().find(|(_, x)| !x.is_finite())
}

/// One step's gradient: the mean over `optimizer.batch` noise windows, refused if any entry is not
/// finite (named by its group or synapse, with the iteration), and the windows' mean record.
fn batch_gradient(
    model: &dyn Descent,
    cfg: &OptimizeConfig,
    (log_gains, log_w): (&[f32], Option<&[f32]>),
    it: usize,
    names: &[String],
) -> Result<(IterationRecord, Vec<f32>, Option<Vec<f32>>)> {
    let batch = cfg.optimizer.batch.max(1);
    let last_good = if it == 0 {
        "the initial gains".to_string()
    } else {
        format!("the gains after iteration {it}")
    };
    let mut recs = Vec::with_capacity(batch);
    let mut g_sum = vec![0f64; names.len()];
    let mut w_sum: Option<Vec<f64>> = log_w.map(|w| vec![0f64; w.len()]);
    for k in 0..batch {
        let (rec, g, gw) =
            model.gradient(cfg, log_gains, log_w, cfg.optimizer.window_noise(it, k))?;
        if !rec.loss.is_finite() {
            return Err(SurgeError::NotFinite {
                what: format!("the objective at iteration {} ({})", it + 1, rec.loss),
                fix: format!(
                    "{last_good} are kept in progress.json; lower optimizer.lr or optimizer.max_abs_log_gain and continue with --resume"
                ),
            });
        }
        if let Some((i, v)) = first_non_finite(&g) {
            return Err(SurgeError::NotFinite {
                what: format!(
                    "the gradient of the log-gain of group {i} (`{}`) at iteration {} ({v}; window {k})",
                    names.get(i).map_or("?", |s| s.as_str()),
                    it + 1
                ),
                fix: format!(
                    "no step was taken; {last_good} are kept in progress.json. Report this with the experiment file and checkpoint (the {} model produced a non-finite value)",
                    model.name()
                ),
            });
        }
        for (a, b) in g_sum.iter_mut().zip(&g) {
            *a += *b as f64;
        }
        if let (Some(ws), Some(gw)) = (w_sum.as_mut(), gw.as_ref()) {
            if let Some((i, v)) = first_non_finite(gw) {
                return Err(SurgeError::NotFinite {
                    what: format!(
                        "the gradient of synapse log-weight {i} at iteration {} ({v})",
                        it + 1
                    ),
                    fix: format!("no step was taken; {last_good} are kept in progress.json"),
                });
            }
            for (a, b) in ws.iter_mut().zip(gw) {
                *a += *b as f64;
            }
        }
        recs.push(rec);
    }
    let mean =
        |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|x| (x / batch as f64) as f32).collect() };
    let mut rec = recs[0].clone();
    if batch > 1 {
        let avg =
            |f: &dyn Fn(&IterationRecord) -> f64| recs.iter().map(f).sum::<f64>() / batch as f64;
        rec.loss = avg(&|r| r.loss);
        rec.band_score = avg(&|r| r.band_score);
        rec.rate_penalty = avg(&|r| r.rate_penalty);
        rec.replay_error_mv = recs.iter().fold(0f32, |a, r| a.max(r.replay_error_mv));
        for (p, r) in rec.rates_hz.iter_mut().enumerate() {
            *r = recs.iter().map(|x| x.rates_hz[p]).sum::<f64>() / batch as f64;
        }
    }
    Ok((rec, mean(g_sum), w_sum.map(mean)))
}

/// Runs the configured steps (`optimizer.method`, or the `optimizer.control`), calling `on_iter` after
/// each; returns the final group log-gains and, with `optimizer.per_synapse`, the per-synapse
/// log-weights. `start` and `start_w` continue from saved values (resume; `start_w` `None` starts the
/// synapses at 0). A non-finite objective, gradient or parameter stops the run with an error naming
/// the iteration and the parameter; the iterations before it have been passed to `on_iter`.
#[allow(clippy::too_many_arguments)]
pub fn optimize(
    model: &dyn Descent,
    cfg: &OptimizeConfig,
    start: &[f32],
    start_w: Option<&[f32]>,
    start_adam: Option<AdamState>,
    first_iteration: usize,
    on_iter: &mut dyn FnMut(&IterationRecord) -> Result<()>,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    let mut x = start.to_vec();
    let mut xw: Option<Vec<f32>> = if cfg.optimizer.per_synapse {
        let zeros = vec![0f32; model.n_synapses()];
        let w = start_w.unwrap_or(&zeros);
        if w.len() != model.n_synapses() {
            return Err(SurgeError::spec(
                "optimizer.per_synapse",
                format!(
                    "{} saved synapse weights for a network of {}",
                    w.len(),
                    model.n_synapses()
                ),
                "start over with --force",
            ));
        }
        Some(w.to_vec())
    } else {
        None
    };
    let mut adam = start_adam.unwrap_or_default();
    let names = group_names(model.spec());
    let m = cfg.optimizer.max_abs_log_gain;
    let mw = cfg.optimizer.max_abs_log_weight;
    let n_avg = cfg.optimizer.average_last;
    let mut sum_g = vec![0f64; start.len()];
    let mut sum_w: Option<Vec<f64>> = xw.as_ref().map(|w| vec![0f64; w.len()]);
    let mut summed = 0usize;
    for it in first_iteration..cfg.optimizer.iterations {
        let t0 = std::time::Instant::now();
        let lr = cfg.optimizer.lr_at(it);
        let (mut rec, g, gw) = batch_gradient(model, cfg, (&x, xw.as_deref()), it, &names)?;
        // Every step is taken on plain numbers, in a fixed order: the trajectory is the same on every
        // x86-64 CPU whatever its SIMD width.
        let (nx, nxw) = if cfg.optimizer.control == "random_sign" {
            // The control: the same step sizes in directions that ignore the gradient.
            let mut rng = crate::seed::rng_for(cfg.optimizer.seed, &[CONTROL_STREAM, it as u64]);
            let mut walk = |v: &[f32]| -> Vec<f32> {
                use rand::Rng;
                v.iter()
                    .map(|&p| {
                        if rng.random::<bool>() {
                            p - lr as f32
                        } else {
                            p + lr as f32
                        }
                    })
                    .collect()
            };
            let nx = walk(&x);
            (nx, xw.as_deref().map(walk))
        } else {
            let method = cfg.optimizer.method.as_str();
            let clip = cfg.optimizer.clip_norm;
            adam.t += 1;
            let nx = step_tensor(method, &x, &g, lr, clip, &mut adam, 0);
            let nxw = match (xw.as_ref(), gw.as_ref()) {
                (Some(w), Some(gw)) => Some(step_tensor(method, w, gw, lr, clip, &mut adam, 1)),
                _ => None,
            };
            (nx, nxw)
        };
        // Keep the gains in a sane range (the surrogate was trained on a bounded input range).
        let bound =
            |v: Vec<f32>, m: f32| -> Vec<f32> { v.into_iter().map(|p| p.clamp(-m, m)).collect() };
        if cfg.optimizer.train_gains {
            x = bound(nx, m);
        }
        xw = nxw.map(|w| bound(w, mw));
        if cfg.optimizer.method == "adam" {
            rec.adam = Some(adam.clone());
        }
        rec.iteration = it;
        rec.log_gains = x.clone();
        if let Some((i, v)) = first_non_finite(&rec.log_gains) {
            return Err(SurgeError::NotFinite {
                what: format!(
                    "the log-gain of group {i} (`{}`) after the step of iteration {} ({v})",
                    names.get(i).map_or("?", |s| s.as_str()),
                    it + 1
                ),
                fix: "the gains before this step are kept in progress.json; lower optimizer.lr"
                    .into(),
            });
        }
        if let Some(w) = &xw {
            rec.synapse_log_w_rms = Some(rms(w));
            rec.synapse_log_w = Some(w.clone());
        }
        if it + n_avg >= cfg.optimizer.iterations {
            for (a, v) in sum_g.iter_mut().zip(&rec.log_gains) {
                *a += *v as f64;
            }
            if let (Some(sw), Some(w)) = (sum_w.as_mut(), rec.synapse_log_w.as_ref()) {
                for (a, v) in sw.iter_mut().zip(w) {
                    *a += *v as f64;
                }
            }
            summed += 1;
        }
        if cfg.optimizer.select == "validation" {
            let (loss, fraction) = validation_score(model.spec(), cfg, &rec.log_gains)?;
            rec.validation_loss = Some(loss);
            rec.validation_band_fraction = Some(fraction);
        }
        rec.seconds = t0.elapsed().as_secs_f64();
        on_iter(&rec)?;
    }
    if summed == 0 {
        return Ok((x, xw));
    }
    // A resumed run averages the iterates it ran itself (the earlier ones are not stored).
    let mean = |v: Vec<f64>| v.into_iter().map(|x| (x / summed as f64) as f32).collect();
    Ok((mean(sum_g), sum_w.map(mean)))
}

/// The random-sign control's stream domain (see [`crate::seed`]).
const CONTROL_STREAM: u64 = 0xC0;
/// The held-out instances' stream domain.
const HELDOUT_STREAM: u64 = 0xE0;

/// `n` held-out network instances (seeds) drawn from `seed`: distinct, never below 1000 (so never
/// one of the small seeds that experiment files use for validation), the same for the same `seed`.
pub fn heldout_seeds(seed: u64, n: usize) -> Vec<u64> {
    use rand::Rng;
    let mut rng = crate::seed::rng_for(seed, &[HELDOUT_STREAM]);
    let mut out: Vec<u64> = Vec::with_capacity(n);
    while out.len() < n {
        let s = rng.random_range(1_000..1_000_000_000u64);
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The bar on one held-out instance: the exact engine's peak moves into the target band, the band
/// fraction at least doubles, and every population rate stays within 0.5-50 Hz.
pub fn passes_bar(cfg: &OptimizeConfig, before: &ExactCheck, after: &ExactCheck) -> bool {
    let (lo, hi) = cfg.objective.band_hz;
    after.peak_hz.is_some_and(|p| p >= lo && p <= hi)
        && after.band_fraction >= 2.0 * before.band_fraction
        && after.rates_hz.iter().all(|&r| (0.5..=50.0).contains(&r))
}

/// The bar on held-out instances, judged on medians: the median exact peak lies in the band, the
/// median band fraction is at least twice the median before, and every population's median rate is
/// within 0.5-50 Hz. With one instance this is the per-instance bar.
pub fn passes_bar_median(
    cfg: &OptimizeConfig,
    before: &[ExactCheck],
    after: &[ExactCheck],
) -> bool {
    let (lo, hi) = cfg.objective.band_hz;
    let peaks: Vec<f64> = after.iter().map(|c| c.peak_hz.unwrap_or(0.0)).collect();
    let frac_b: Vec<f64> = before.iter().map(|c| c.band_fraction).collect();
    let frac_a: Vec<f64> = after.iter().map(|c| c.band_fraction).collect();
    let n_pops = after.first().map_or(0, |c| c.rates_hz.len());
    let peak = median(&peaks);
    !after.is_empty()
        && peak >= lo
        && peak <= hi
        && median(&frac_a) >= 2.0 * median(&frac_b)
        && (0..n_pops).all(|p| {
            let r = median(&after.iter().map(|c| c.rates_hz[p]).collect::<Vec<_>>());
            (0.5..=50.0).contains(&r)
        })
}

/// The median of `v` (mean of the middle two for an even count; NaN for none).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len().is_multiple_of(2) {
        0.5 * (s[m - 1] + s[m])
    } else {
        s[m]
    }
}

/// The exact engine's loss (the optimiser's terms, [`super::search::exact_loss`]) and band fraction of
/// `log_gains`, each averaged over `optimizer.validation_seeds` (run in parallel).
pub fn validation_score(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
) -> Result<(f64, f64)> {
    use rayon::prelude::*;
    let seeds = &cfg.optimizer.validation_seeds;
    let runs: Vec<(f64, f64)> = seeds
        .par_iter()
        .map(|&seed| {
            let check = exact_check(spec, cfg, log_gains, seed)?;
            Ok((
                super::search::exact_loss(cfg, &check, log_gains),
                check.band_fraction,
            ))
        })
        .collect::<Result<_>>()?;
    let n = runs.len().max(1) as f64;
    Ok((
        runs.iter().map(|r| r.0).sum::<f64>() / n,
        runs.iter().map(|r| r.1).sum::<f64>() / n,
    ))
}

/// The iterate `select = "validation"` keeps: among iteration records as written to `progress.json`
/// (so a resumed run's earlier records count too), the one with the lowest validation loss. Returns
/// its iteration, log-gains, validation loss and band fraction; `None` when no record has a loss.
pub fn select_by_validation(records: &[serde_json::Value]) -> Option<(usize, Vec<f32>, f64, f64)> {
    records
        .iter()
        .filter_map(|r| {
            let loss = r
                .get("validation_loss")?
                .as_f64()
                .filter(|x| x.is_finite())?;
            let gains = r
                .get("log_gains")?
                .as_array()?
                .iter()
                .map(|g| g.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()?;
            let it = r.get("iteration")?.as_u64()? as usize;
            let frac = r
                .get("validation_band_fraction")
                .and_then(|x| x.as_f64())
                .unwrap_or(f64::NAN);
            Some((it, gains, loss, frac))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2))
}

/// Root mean square of `v` (0 for none).
pub fn rms(v: &[f32]) -> f64 {
    (v.iter().map(|u| (*u as f64).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// The exact engine on one held-out seed: band fraction, peak and population rates of the signal.
#[derive(Debug, Clone, Serialize)]
pub struct ExactCheck {
    pub seed: u64,
    pub band_fraction: f64,
    pub peak_hz: Option<f64>,
    pub rates_hz: Vec<f64>,
    pub freqs_hz: Vec<f64>,
    pub power: Vec<f64>,
    /// The run's spikes (ms, global cell index), for rasters; not written to JSON.
    #[serde(skip)]
    pub spikes: (Vec<f64>, Vec<u32>),
}

/// `spec` with every connection group's gain multiplied by `exp(log_gain)`.
pub fn apply_gains(spec: &NetworkSpec, log_gains: &[f32]) -> NetworkSpec {
    let mut s = spec.clone();
    for (c, &g) in s.connections.iter_mut().zip(log_gains) {
        c.gain *= (g as f64).exp();
    }
    s
}

/// Runs the exact engine with `log_gains` applied on `seed` and analyses the signal the objective uses.
pub fn exact_check(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
    seed: u64,
) -> Result<ExactCheck> {
    exact_run(
        spec,
        cfg,
        log_gains,
        seed,
        cfg.recheck.duration_ms,
        cfg.recheck.warmup_ms,
    )
}

/// [`exact_check`] for a run of `duration_ms` whose first `warmup_ms` are not analysed.
pub fn exact_run(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
    seed: u64,
    duration_ms: f64,
    warmup_ms: f64,
) -> Result<ExactCheck> {
    exact_run_with_hook(
        spec,
        cfg,
        log_gains,
        seed,
        duration_ms,
        warmup_ms,
        None,
        None,
    )
}

/// [`exact_run`] with a step hook in the exact engine (a learned current fed back from the spikes),
/// and optionally a fixed network instance `conn` (then `seed` changes only the drive noise and the
/// initial state; `conn` must be the connectome of `spec` with the same gains).
#[allow(clippy::too_many_arguments)]
pub fn exact_run_with_hook(
    spec: &NetworkSpec,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
    seed: u64,
    duration_ms: f64,
    warmup_ms: f64,
    hook: Option<&mut dyn crate::exact::StepHook>,
    conn: Option<&Connectome>,
) -> Result<ExactCheck> {
    let mut s = apply_gains(spec, log_gains);
    s.simulation.seed = Some(seed);
    s.simulation.duration_ms = duration_ms;
    // Record exactly the objective's signal: the mean voltage of the signal populations.
    s.recording.signals = vec![crate::spec::SignalSpec {
        name: "objective_signal".into(),
        kind: crate::spec::SignalKind::MeanVoltage,
        populations: cfg.signal.clone(),
    }];
    let built;
    let conn = match conn {
        Some(c) => c,
        None => {
            built = Connectome::build(&s);
            &built
        }
    };
    let res = crate::exact::simulate_with_hook(
        &s,
        conn,
        None,
        crate::exact::Sampling::default(),
        hook,
        &mut |_, _| {},
    )?;
    let dt = s.simulation.dt_ms;
    let skip = (warmup_ms / dt).round() as usize;
    let values = &res.signals[0].values[skip.min(res.signals[0].values.len())..];
    let psd = signal_psd(values, dt);
    let analysed_s = (duration_ms - warmup_ms) / 1000.0;
    let mut counts = vec![0usize; s.populations.len()];
    for (&t, &c) in res.spike_times_ms.iter().zip(&res.spike_cells) {
        if t >= warmup_ms {
            counts[conn.population_of(c as usize)] += 1;
        }
    }
    Ok(ExactCheck {
        seed,
        band_fraction: psd.band_fraction(cfg.objective.band_hz.0, cfg.objective.band_hz.1),
        peak_hz: psd.peak_hz(2.0, 100.0),
        rates_hz: counts
            .iter()
            .zip(&s.populations)
            .map(|(&n, p)| n as f64 / p.size as f64 / analysed_s)
            .collect(),
        freqs_hz: psd.freqs_hz,
        power: psd.power,
        spikes: (res.spike_times_ms, res.spike_cells),
    })
}

/// A surrogate raster (engine cell indices per bin) as spike times (ms) and global cell indices, the
/// exact engine's convention.
fn global_spikes(net: &SurrogateNetwork, raster: &[Vec<u32>]) -> (Vec<f64>, Vec<u32>) {
    let n: usize = net.spec.populations.iter().map(|p| p.size).sum();
    let mut global_of = vec![0u32; n];
    for c in 0..n {
        global_of[net.engine_index(c)] = c as u32;
    }
    let (mut times, mut cells) = (Vec::new(), Vec::new());
    for (b, sp) in raster.iter().enumerate() {
        for &e in sp {
            times.push(b as f64 * net.bin_ms());
            cells.push(global_of[e as usize]);
        }
    }
    (times, cells)
}

/// The surrogate engine analysed like [`exact_check`]: a `duration_ms` run (forward only, use a plain
/// device) with drive noise stream `noise`; the signal is binned to 1 ms and its Welch PSD taken with the
/// exact engine's estimator, so both engines are scored on one definition.
pub fn surrogate_check(
    net: &SurrogateNetwork,
    cfg: &OptimizeConfig,
    log_gains: &[f32],
    noise: u64,
    device: &Device,
) -> (ExactCheck, Vec<Vec<u32>>) {
    let bin = net.bin_ms();
    let bins = (cfg.recheck.duration_ms / bin).round() as usize;
    let skip = (cfg.recheck.warmup_ms / bin).round() as usize;
    let signal_pops = cfg.signal_populations(&net.spec);
    let gains = Gains::new(log_gains, device);
    let run = net.run(
        &gains,
        bins,
        noise,
        SpikeMode::StraightThrough { beta: 1.0 },
        &signal_pops,
        true,
        &mut |_, _| {},
    );
    let values: Vec<f64> = run
        .signal
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32")
        .into_iter()
        .map(|x| x as f64)
        .collect();
    let psd = signal_psd(&values[skip.min(values.len())..], bin);
    let raster = run.raster.unwrap_or_default();
    let mut counts = vec![0usize; net.spec.populations.len()];
    for spikes in raster.iter().skip(skip) {
        for &e in spikes {
            let p = net
                .pop_range
                .iter()
                .position(|r| r.contains(&(e as usize)))
                .expect("every engine cell is in a population");
            counts[p] += 1;
        }
    }
    let secs = (bins - skip.min(bins)) as f64 * bin / 1000.0;
    let check = ExactCheck {
        seed: noise,
        band_fraction: psd.band_fraction(cfg.objective.band_hz.0, cfg.objective.band_hz.1),
        peak_hz: psd.peak_hz(2.0, 100.0),
        rates_hz: counts
            .iter()
            .zip(&net.spec.populations)
            .map(|(&n, p)| n as f64 / p.size as f64 / secs)
            .collect(),
        freqs_hz: psd.freqs_hz,
        power: psd.power,
        spikes: global_spikes(net, &raster),
    };
    (check, raster)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heldout_seeds_are_distinct_reproducible_and_away_from_small_seeds() {
        let a = heldout_seeds(7, 50);
        assert_eq!(a, heldout_seeds(7, 50));
        assert_ne!(a, heldout_seeds(8, 50));
        assert!(a.iter().all(|&s| s >= 1000));
        let mut b = a.clone();
        b.sort();
        b.dedup();
        assert_eq!(b.len(), 50);
        // A shorter draw is a prefix: 10 instances are the first 10 of 50.
        assert_eq!(heldout_seeds(7, 10), a[..10]);
    }

    fn check(frac: f64, peak: f64, rates: Vec<f64>) -> ExactCheck {
        ExactCheck {
            seed: 0,
            band_fraction: frac,
            peak_hz: Some(peak),
            rates_hz: rates,
            freqs_hz: vec![],
            power: vec![],
            spikes: (vec![], vec![]),
        }
    }

    #[test]
    fn the_median_bar() {
        let cfg: OptimizeConfig =
            toml::from_str("network = \"x\"\n[cells]\na = [\"A\"]\n").unwrap();
        let before = vec![check(0.25, 10.0, vec![4.0]); 3];
        // Two of three instances in the band: the medians pass.
        let after = vec![
            check(0.8, 18.0, vec![3.0]),
            check(0.2, 10.0, vec![3.0]),
            check(0.7, 20.0, vec![0.6]),
        ];
        assert!(passes_bar_median(&cfg, &before, &after));
        // Median fraction 0.45 < 2 x 0.25: fails.
        let weak = vec![
            check(0.45, 18.0, vec![3.0]),
            check(0.2, 10.0, vec![3.0]),
            check(0.7, 20.0, vec![3.0]),
        ];
        assert!(!passes_bar_median(&cfg, &before, &weak));
        // Median rate 0.4 Hz: fails.
        let silent = vec![
            check(0.8, 18.0, vec![0.4]),
            check(0.8, 18.0, vec![0.3]),
            check(0.8, 18.0, vec![3.0]),
        ];
        assert!(!passes_bar_median(&cfg, &before, &silent));
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
    }

    #[test]
    fn cosine_schedule_runs_from_lr_to_lr_min() {
        let o = OptimizerConfig {
            iterations: 11,
            lr: 0.1,
            lr_min: 0.01,
            lr_schedule: "cosine".into(),
            ..OptimizerConfig::default()
        };
        assert!((o.lr_at(0) - 0.1).abs() < 1e-12);
        assert!((o.lr_at(5) - 0.055).abs() < 1e-12);
        assert!((o.lr_at(10) - 0.01).abs() < 1e-12);
        let c = OptimizerConfig::default();
        assert_eq!(c.lr_at(30), c.lr);
    }

    /// The plain Adam step equals burn's Adam (same constants, gradient clipping by norm) over
    /// several steps of a changing gradient.
    #[test]
    fn plain_adam_equals_burns() {
        use burn::optim::AdamConfig;
        let device = Device::flex().autodiff();
        let clip = 1.0f32;
        let mut optim = AdamConfig::new()
            .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
                clip,
            )))
            .init();
        let x0 = [0.3f32, -0.2, 0.0, 1.0];
        let mut gains = Gains::new(&x0, &device);
        let mut x = x0.to_vec();
        let mut state = AdamState::default();
        for step in 0..5 {
            let g: Vec<f32> = (0..4)
                .map(|i| ((step * 4 + i) as f32 * 0.7).sin() * if i == 3 { 5.0 } else { 0.5 })
                .collect();
            let mut grads = GradientsParams::new();
            grads.register(
                gains.log_gain.id,
                Tensor::<1>::from_data(
                    burn::tensor::TensorData::new(g.clone(), [4]),
                    &device.clone().inner(),
                ),
            );
            gains = optim.step(0.05, gains, grads);
            state.t += 1;
            x = step_tensor("adam", &x, &g, 0.05, clip, &mut state, 0);
            for (a, b) in x.iter().zip(gains.values()) {
                assert!(
                    (a - b).abs() < 1e-6,
                    "step {step}: {x:?} vs {:?}",
                    gains.values()
                );
            }
        }
        assert!((x[0] - x0[0]).abs() > 1e-3, "the parameters moved: {x:?}");
    }

    #[test]
    fn normalized_and_sgd_steps() {
        let mut st = AdamState::default();
        // Norm 5 clipped to 1: sgd moves by lr * g / 5; normalized by about lr per entry.
        let x = step_tensor("sgd", &[0.0, 0.0], &[3.0, 4.0], 0.1, 1.0, &mut st, 0);
        assert!((x[0] + 0.06).abs() < 1e-7 && (x[1] + 0.08).abs() < 1e-7);
        let x = step_tensor(
            "normalized",
            &[0.0, 0.0],
            &[3.0, -4.0],
            0.1,
            1.0,
            &mut st,
            0,
        );
        assert!((x[0] + 0.1).abs() < 1e-4 && (x[1] - 0.1).abs() < 1e-4);
    }

    #[test]
    fn non_finite_entries_are_found() {
        assert_eq!(first_non_finite(&[1.0, 2.0]), None);
        let (i, v) = first_non_finite(&[1.0, f32::NAN, f32::INFINITY]).unwrap();
        assert_eq!(i, 1);
        assert!(v.is_nan());
    }
}
