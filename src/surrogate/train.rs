//! Training a surrogate on a dataset: windows of traces, loss = voltage MSE (standardised) + lambda x
//! class-weighted spike BCE, both counted only after the TCN's receptive field has filled; Adam with a
//! cosine learning-rate schedule and gradient clipping; validation on held-out traces; the best
//! model kept as a checkpoint (`model.bpk` + `surrogate.json`), written atomically every epoch.

use super::cpu::train_step::{Batch, FusedTrainer, LossSpec};
use super::model::{Surrogate, SurrogateArch};
use crate::data::DatasetReader;
use crate::error::{Result, SurgeError};
use crate::results::{atomic_write, commit, partial_path};
use crate::seed::rng_for;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::log_sigmoid;
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A surrogate experiment file: architecture and training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurrogateExperiment {
    pub name: String,
    pub arch: Option<SurrogateArch>,
    pub training: TrainConfig,
}

impl SurrogateExperiment {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
        let e: SurrogateExperiment = toml::from_str(&text).map_err(|e| SurgeError::Toml {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        e.training.validate()?;
        if let Some(a) = &e.arch
            && (a.tcn_channels == 0
                || a.kernel == 0
                || a.dilations.is_empty()
                || a.dilations.contains(&0)
                || a.lstm_hidden == 0)
        {
            return Err(SurgeError::spec(
                "arch",
                "zero channels, kernel, hidden size or dilation",
                "give positive sizes and at least one dilation",
            ));
        }
        Ok(e)
    }
}

/// Training settings (the `[training]` table of `experiments/surrogate_*.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Bins per training window.
    #[serde(default = "d_window")]
    pub window: usize,
    /// Bins at the start of each window that are not scored: a window starts mid-trace with the model at
    /// rest, so its state needs this long to forget the unknown past (membrane and slow synapses). At
    /// least the receptive field.
    #[serde(default = "d_burn_in")]
    pub burn_in: usize,
    #[serde(default = "d_batch")]
    pub batch: usize,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_steps")]
    pub steps_per_epoch: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_lr_min")]
    pub lr_min: f64,
    /// Gradient-norm clipping.
    #[serde(default = "d_clip")]
    pub clip_norm: f32,
    /// Weight of the spike BCE relative to the voltage MSE.
    #[serde(default = "d_lambda")]
    pub spike_weight: f64,
    /// Fraction of traces held out for validation.
    #[serde(default = "d_val")]
    pub val_fraction: f64,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default = "d_patience")]
    pub patience: usize,
    pub seed: u64,
    /// Fine-tune: start from this checkpoint folder (its architecture, input scaling and weights) instead
    /// of a fresh model. The dataset must have the checkpoint's channels and bin width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

fn d_window() -> usize {
    600
}
fn d_burn_in() -> usize {
    200
}
fn d_batch() -> usize {
    16
}
fn d_epochs() -> usize {
    20
}
fn d_steps() -> usize {
    50
}
fn d_lr() -> f64 {
    3e-3
}
fn d_lr_min() -> f64 {
    3e-4
}
fn d_clip() -> f32 {
    1.0
}
fn d_lambda() -> f64 {
    1.0
}
fn d_val() -> f64 {
    0.2
}
fn d_patience() -> usize {
    5
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        let bad =
            |f: &str, p: String, fix: &str| Err(SurgeError::spec(format!("training.{f}"), p, fix));
        if self.batch == 0 || self.epochs == 0 || self.steps_per_epoch == 0 {
            return bad(
                "batch",
                "batch, epochs and steps_per_epoch must be >= 1".into(),
                "give positive counts",
            );
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr_min > 0.0 && self.lr_min <= self.lr) {
            return bad(
                "lr",
                format!(
                    "lr {} / lr_min {} is not 0 < lr_min <= lr",
                    self.lr, self.lr_min
                ),
                "e.g. lr = 3e-3, lr_min = 3e-4",
            );
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return bad(
                "val_fraction",
                format!("{} is not in (0, 1)", self.val_fraction),
                "e.g. 0.2",
            );
        }
        if !(self.clip_norm.is_finite()
            && self.clip_norm > 0.0
            && self.spike_weight.is_finite()
            && self.spike_weight >= 0.0)
        {
            return bad(
                "clip_norm",
                "clip_norm must be > 0 and spike_weight >= 0".into(),
                "e.g. clip_norm = 1.0, spike_weight = 1.0",
            );
        }
        Ok(())
    }

    pub fn new(seed: u64) -> Self {
        TrainConfig {
            window: d_window(),
            burn_in: d_burn_in(),
            batch: d_batch(),
            epochs: d_epochs(),
            steps_per_epoch: d_steps(),
            lr: d_lr(),
            lr_min: d_lr_min(),
            clip_norm: d_clip(),
            spike_weight: d_lambda(),
            val_fraction: d_val(),
            patience: d_patience(),
            seed,
            init: None,
        }
    }
}

/// Input and output transforms stored with the model: `x' = sign(x) ln(1 + |x| / scale_c)`,
/// `v' = (v - v_mean) / v_std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub input_scale: Vec<f32>,
    pub v_mean: f32,
    pub v_std: f32,
}

impl Scaling {
    pub fn input(&self, x: f32, c: usize) -> f32 {
        x.signum() * (x.abs() / self.input_scale[c]).ln_1p()
    }

    /// `d input / dx = 1 / (scale_c + |x|)`, also at `x = 0` (slope `1 / scale_c`): most bins carry no
    /// input on a channel, and a spike that nearly arrives there must still be seen by the gradient.
    pub fn input_grad(&self, x: f32, c: usize) -> f32 {
        1.0 / (self.input_scale[c] + x.abs())
    }

    /// [`Scaling::input`] on a tensor `[n, C]` (`scale` is `[1, C]`), differentiable with the slope of
    /// [`Scaling::input_grad`]. Written out by hand because autodiff of `sign(x) ln(1 + |x| / s)`
    /// gives slope 0 at `x = 0` (the derivative of `|x|` and of `sign` there).
    pub fn input_tensor(x: Tensor<2>, scale: Tensor<2>) -> Tensor<2> {
        let abs = x.clone().abs().detach();
        let value = x.clone().detach().sign() * (abs.clone() / scale.clone()).add_scalar(1.0).log();
        let slope = (abs + scale).recip();
        value + (x.clone() - x.detach()) * slope
    }
}

/// Per-epoch figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub val_loss: f64,
    pub val_voltage_mse: f64,
    pub val_spike_bce: f64,
    pub lr: f64,
}

/// `surrogate.json`: everything needed to use and to trust a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SurrogateMeta {
    pub arch: SurrogateArch,
    pub channel_names: Vec<String>,
    pub scaling: Scaling,
    pub bin_ms: f64,
    /// The neuron model the training data came from, as the dataset describes it.
    #[serde(deserialize_with = "json_object_or_text")]
    pub neuron_model: serde_json::Value,
    /// The training files, by name and content.
    pub datasets: Vec<TrainingFile>,
    pub training: TrainConfig,
    pub epochs: Vec<EpochMetrics>,
    pub best_epoch: usize,
    pub surge_version: String,
    /// A spike is the onset of a run of bins whose spike logit exceeds this. The class-weighted loss
    /// biases the logit upwards, so `surge calibrate` sets it to match the spike count of training data;
    /// 0 (probability one half) until then and for sidecars written before this field.
    #[serde(default)]
    pub spike_logit_threshold: f32,
    /// How fast the spike logit moves through its threshold: the median per-bin rise of the logit at
    /// the bins where it crosses the threshold upwards, measured by `surge calibrate`. The network
    /// engine's surrogate gradient is `sigmoid(beta * (logit - threshold) / width)`, so one `beta`
    /// means the same for a steep and a shallow checkpoint. `None`: not measured yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_logit_width: Option<f32>,
}

/// A training file as a checkpoint records it: its file name (not a path on the machine that
/// trained) and the SHA-256 of its bytes, which identifies it wherever it lies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "TrainingFileForm")]
pub struct TrainingFile {
    pub file: String,
    pub sha256: String,
}

/// The forms a sidecar may hold: `{file, sha256}`, or a `[path, sha256]` pair.
#[derive(Deserialize)]
#[serde(untagged)]
enum TrainingFileForm {
    Named { file: String, sha256: String },
    Pair(String, String),
}

impl From<TrainingFileForm> for TrainingFile {
    fn from(f: TrainingFileForm) -> Self {
        match f {
            TrainingFileForm::Named { file, sha256 } => TrainingFile { file, sha256 },
            TrainingFileForm::Pair(path, sha256) => TrainingFile {
                file: file_name(Path::new(&path)),
                sha256,
            },
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A JSON object, also when a sidecar holds it as text.
fn json_object_or_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<serde_json::Value, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(t) if t.is_empty() => Ok(serde_json::Value::Null),
        serde_json::Value::String(t) => serde_json::from_str(&t).map_err(serde::de::Error::custom),
        v => Ok(v),
    }
}

impl SurrogateMeta {
    /// The spike surrogate's width in logit units ([`SurrogateMeta::spike_logit_width`]; 1 until
    /// `surge calibrate` has measured it).
    pub fn spike_width(&self) -> f32 {
        self.spike_logit_width.filter(|w| *w > 0.0).unwrap_or(1.0)
    }

    /// The sidecar of a model that no data has trained (benchmarks, tests of the engines): no
    /// datasets, no epochs, default training settings, spike-logit threshold 0.
    pub fn untrained(
        arch: SurrogateArch,
        channel_names: Vec<String>,
        scaling: Scaling,
        bin_ms: f64,
    ) -> Self {
        SurrogateMeta {
            arch,
            channel_names,
            scaling,
            bin_ms,
            neuron_model: serde_json::Value::Null,
            datasets: Vec::new(),
            training: TrainConfig::new(1),
            epochs: Vec::new(),
            best_epoch: 0,
            surge_version: env!("CARGO_PKG_VERSION").to_string(),
            spike_logit_threshold: 0.0,
            spike_logit_width: None,
        }
    }
}

/// Traces in memory, scaled.
struct Data {
    n: usize,
    bins: usize,
    nch: usize,
    x: Vec<f32>,
    v: Vec<f32>,
    s: Vec<f32>,
}

fn load(reader: &DatasetReader, scaling: Option<&Scaling>) -> Result<(Data, Scaling)> {
    let (n, bins, nch) = (reader.n_traces(), reader.bins, reader.n_channels());
    let mut x = Vec::with_capacity(n * bins * nch);
    let mut v = Vec::with_capacity(n * bins);
    let mut s = Vec::with_capacity(n * bins);
    for i in 0..n {
        let t = reader.read(i)?;
        x.extend(t.inputs);
        v.extend(t.voltage);
        s.extend(t.spikes.iter().map(|&k| (k > 0) as u8 as f32));
    }
    let scaling = match scaling {
        Some(s) => s.clone(),
        None => {
            // Scale each channel by the mean magnitude of its non-zero bins.
            let input_scale = (0..nch)
                .map(|c| {
                    let (sum, cnt) = x
                        .iter()
                        .skip(c)
                        .step_by(nch)
                        .filter(|a| **a != 0.0)
                        .fold((0.0f64, 0usize), |(s, k), a| (s + a.abs() as f64, k + 1));
                    if cnt == 0 {
                        1.0
                    } else {
                        (sum / cnt as f64) as f32
                    }
                })
                .collect();
            let mean = v.iter().map(|&a| a as f64).sum::<f64>() / v.len().max(1) as f64;
            let var =
                v.iter().map(|&a| (a as f64 - mean).powi(2)).sum::<f64>() / v.len().max(1) as f64;
            Scaling {
                input_scale,
                v_mean: mean as f32,
                v_std: var.sqrt().max(1e-3) as f32,
            }
        }
    };
    for (k, a) in x.iter_mut().enumerate() {
        *a = scaling.input(*a, k % nch);
    }
    for a in v.iter_mut() {
        *a = (*a - scaling.v_mean) / scaling.v_std;
    }
    Ok((
        Data {
            n,
            bins,
            nch,
            x,
            v,
            s,
        },
        scaling,
    ))
}

impl Data {
    /// A batch of windows `(trace, start)` as flat buffers `[b, w, c]`, `[b, w]`, `[b, w]`.
    fn batch_raw(&self, windows: &[(usize, usize)], w: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let b = windows.len();
        let mut x = Vec::with_capacity(b * w * self.nch);
        let mut v = Vec::with_capacity(b * w);
        let mut s = Vec::with_capacity(b * w);
        for &(i, a) in windows {
            x.extend_from_slice(
                &self.x[(i * self.bins + a) * self.nch..(i * self.bins + a + w) * self.nch],
            );
            v.extend_from_slice(&self.v[i * self.bins + a..i * self.bins + a + w]);
            s.extend_from_slice(&self.s[i * self.bins + a..i * self.bins + a + w]);
        }
        (x, v, s)
    }

    /// The same batch as tensors.
    fn batch(
        &self,
        windows: &[(usize, usize)],
        w: usize,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2>, Tensor<2>) {
        let b = windows.len();
        let (x, v, s) = self.batch_raw(windows, w);
        (
            Tensor::from_data(TensorData::new(x, [b, w, self.nch]), device),
            Tensor::from_data(TensorData::new(v, [b, w]), device),
            Tensor::from_data(TensorData::new(s, [b, w]), device),
        )
    }
}

/// Loss terms on the bins after the receptive field: (total, voltage MSE, spike BCE).
pub fn loss(
    model: &Surrogate,
    x: Tensor<3>,
    v: Tensor<2>,
    s: Tensor<2>,
    skip: usize,
    pos_weight: f64,
    lambda: f64,
) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
    let (vp, logit) = model.forward(x);
    let w = vp.dims()[1];
    let keep = w - skip;
    let (vp, logit, v, s) = (
        vp.narrow(1, skip, keep),
        logit.narrow(1, skip, keep),
        v.narrow(1, skip, keep),
        s.narrow(1, skip, keep),
    );
    let mse = (vp - v).powi_scalar(2).mean();
    // Class-weighted binary cross-entropy on logits.
    let bce = -((s.clone() * log_sigmoid(logit.clone())).mul_scalar(pos_weight)
        + (s.neg().add_scalar(1.0)) * log_sigmoid(logit.neg()))
    .mean();
    let total = mse.clone() + bce.clone().mul_scalar(lambda);
    (total, mse, bce)
}

fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .try_to_vec::<f32>()
        .map(|v| v[0] as f64)
        .unwrap_or(f64::NAN)
}

/// Training traces, fixed validation windows, and the spike class weight of the training traces.
struct Split {
    train: Vec<usize>,
    /// (trace, first bin) of each validation window: fixed, non-overlapping.
    val_windows: Vec<(usize, usize)>,
    pos_weight: f64,
}

/// Splits the traces (not the windows) into training and validation sets from the config's seed.
fn split(data: &Data, cfg: &TrainConfig) -> Result<Split> {
    let mut rng = rng_for(cfg.seed, &[SPLIT_STREAM]);
    let mut order: Vec<usize> = (0..data.n).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let n_val = ((data.n as f64 * cfg.val_fraction).round() as usize)
        .clamp(1, data.n.saturating_sub(1).max(1));
    if data.n < 2 {
        return Err(SurgeError::spec(
            "--data",
            "fewer than two traces",
            "train on a set with separate training and validation traces",
        ));
    }
    let (val, tr) = order.split_at(n_val);
    let (val, tr) = (val.to_vec(), tr.to_vec());
    let pos: f64 = tr
        .iter()
        .map(|&i| {
            data.s[i * data.bins..(i + 1) * data.bins]
                .iter()
                .map(|&a| a as f64)
                .sum::<f64>()
        })
        .sum();
    let total = (tr.len() * data.bins) as f64;
    let pos_weight = if pos > 0.0 {
        ((total - pos) / pos).min(50.0)
    } else {
        1.0
    };
    let val_windows: Vec<(usize, usize)> = val
        .iter()
        .flat_map(|&i| {
            (0..=data.bins - cfg.window)
                .step_by(cfg.window)
                .map(move |a| (i, a))
        })
        .collect();

    Ok(Split {
        train: tr,
        val_windows,
        pos_weight,
    })
}

/// The saved state of an interrupted run, checked against this run's configuration and data.
fn read_state(state_path: &Path, meta: &SurrogateMeta) -> Result<TrainState> {
    let text = std::fs::read_to_string(state_path)
        .map_err(|e| SurgeError::io("cannot resume: no training state", state_path, e))?;
    let st: TrainState = serde_json::from_str(&text).map_err(|e| {
        SurgeError::data(
            state_path,
            format!("unreadable training state ({e})"),
            "start the run again without --resume",
        )
    })?;
    if st.meta.training != meta.training
        || st.meta.arch != meta.arch
        || st.meta.datasets != meta.datasets
    {
        return Err(SurgeError::data(
            state_path,
            "was written for another configuration, architecture or dataset",
            "resume with the same --config and --data, or start a new run in another folder",
        ));
    }
    Ok(st)
}

/// Where an interrupted training run stands: written after every epoch, after the model and optimizer
/// files it names, so a kill at any moment leaves a consistent state to resume from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    epoch: usize,
    best: f64,
    since_best: usize,
    meta: SurrogateMeta,
}

const STATE: &str = "train_state.json";
const SPLIT_STREAM: u64 = 0x7370_6c69;
const EPOCH_STREAM: u64 = 0x6570_6f63;

fn state_files(dir: &Path, epoch: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("last-{epoch}.bpk")),
        dir.join(format!("optim-{epoch}.bpk")),
    )
}

/// How [`train`] runs: which gradient and whether it continues a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainHow {
    /// On CPU devices, each step's gradient from [`super::cpu::train_step`] instead of burn's autodiff.
    pub fused: bool,
    /// Continue the run in the output folder from its last finished epoch.
    pub resume: bool,
}

/// Trains a surrogate on `files` and writes the best model to `out_dir`. `device` is the plain device
/// (Flex, wgpu, ...); training runs on its autodiff form. After each epoch `progress(epoch, epochs,
/// val_loss)` is called; returning `false` stops the run there (it can be resumed). With `resume`, an
/// interrupted run in `out_dir` continues from its last finished epoch and ends as the uninterrupted run would.
/// With `fused` (CPU devices only), each step's gradient comes from [`super::cpu::train_step`] instead of
/// burn's autodiff; the optimizer, checkpoints and state files are the same either way.
#[allow(clippy::too_many_arguments)]
pub fn train(
    files: &[PathBuf],
    arch_template: Option<SurrogateArch>,
    cfg: &TrainConfig,
    out_dir: &Path,
    device: &Device,
    how: TrainHow,
    progress: &mut dyn FnMut(usize, usize, f64) -> bool,
) -> Result<SurrogateMeta> {
    let TrainHow { fused, resume } = how;
    let reader = DatasetReader::open(files)?;
    let init = match &cfg.init {
        Some(dir) => {
            let (_, meta) = load_checkpoint(dir, device)?;
            super::eval::check_compatible(&meta, &reader, dir)?;
            Some((dir.join("model.bpk"), meta))
        }
        None => None,
    };
    let mut arch = match &init {
        Some((_, m)) => m.arch.clone(),
        None => arch_template.unwrap_or_else(|| SurrogateArch::new(reader.n_channels())),
    };
    arch.n_inputs = reader.n_channels();
    let rf = arch.receptive_field();
    let skip = cfg.burn_in.max(rf - 1);
    if cfg.window <= skip || cfg.window > reader.bins {
        return Err(SurgeError::spec(
            "training.window",
            format!(
                "{} bins is not between the burn-in ({skip} bins) and the trace length ({})",
                cfg.window, reader.bins
            ),
            format!(
                "use a window in {}..={}, or a shorter burn_in",
                skip + 1,
                reader.bins
            ),
        ));
    }
    let (data, scaling) = load(&reader, init.as_ref().map(|(_, m)| &m.scaling))?;
    let Split {
        train: tr,
        val_windows,
        pos_weight,
    } = split(&data, cfg)?;

    let ad = device.clone().autodiff();
    ad.seed(cfg.seed);
    let mut model = match &init {
        Some((path, _)) => arch.init(&ad).try_load_file(path).map_err(|e| {
            SurgeError::data(
                path,
                format!("cannot load the model to fine-tune ({e:?})"),
                "point training.init (or --init) at a folder written by `surge train`",
            )
        })?,
        None => arch.init(&ad),
    };
    let mut optim = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.clip_norm)))
        .init();
    std::fs::create_dir_all(out_dir)
        .map_err(|e| SurgeError::io("cannot create checkpoint folder", out_dir, e))?;
    let mut meta = SurrogateMeta {
        arch: arch.clone(),
        channel_names: reader.channel_names.clone(),
        scaling,
        bin_ms: reader.bin_ms,
        neuron_model: serde_json::from_str(&reader.neuron_json).unwrap_or(serde_json::Value::Null),
        datasets: files
            .iter()
            .map(|f| {
                Ok(TrainingFile {
                    file: file_name(f),
                    sha256: sha256(f)?,
                })
            })
            .collect::<Result<_>>()?,
        training: cfg.clone(),
        epochs: Vec::new(),
        best_epoch: 0,
        surge_version: env!("CARGO_PKG_VERSION").to_string(),
        // A fine-tuned model keeps its parent's threshold until `surge calibrate` is run again.
        spike_logit_threshold: init.as_ref().map_or(0.0, |(_, m)| m.spike_logit_threshold),
        spike_logit_width: init.as_ref().and_then(|(_, m)| m.spike_logit_width),
    };
    let mut best = f64::INFINITY;
    let mut since_best = 0;
    let mut first_epoch = 1;
    let state_path = out_dir.join(STATE);
    if resume {
        let st = read_state(&state_path, &meta)?;
        let (m, o) = state_files(out_dir, st.epoch);
        model = model.try_load_file(&m).map_err(|e| {
            SurgeError::data(
                &m,
                format!("cannot load ({e:?})"),
                "start the run again without --resume",
            )
        })?;
        optim = optim.load(&o).map_err(|e| {
            SurgeError::data(
                &o,
                format!("cannot load ({e:?})"),
                "start the run again without --resume",
            )
        })?;
        (best, since_best, first_epoch, meta) = (st.best, st.since_best, st.epoch + 1, st.meta);
        if since_best >= cfg.patience {
            return Ok(meta);
        }
    }
    let total_steps = (cfg.epochs * cfg.steps_per_epoch).max(1);
    let mut fused = fused.then(|| FusedTrainer::new(&model));
    let spec = LossSpec {
        skip,
        pos_weight: pos_weight as f32,
        lambda: cfg.spike_weight as f32,
    };
    for epoch in first_epoch..=cfg.epochs {
        // Each epoch draws its windows from its own stream, so a resumed run sees the same batches.
        let mut rng = rng_for(cfg.seed, &[EPOCH_STREAM, epoch as u64]);
        let mut train_sum = 0.0;
        let mut lr = cfg.lr;
        for step in 0..cfg.steps_per_epoch {
            let k = (epoch - 1) * cfg.steps_per_epoch + step;
            lr = cfg.lr_min
                + 0.5
                    * (cfg.lr - cfg.lr_min)
                    * (1.0 + (std::f64::consts::PI * k as f64 / total_steps as f64).cos());
            let windows: Vec<(usize, usize)> = (0..cfg.batch)
                .map(|_| {
                    (
                        tr[rng.random_range(0..tr.len())],
                        rng.random_range(0..=data.bins - cfg.window),
                    )
                })
                .collect();
            let (value, grads) = match fused.as_mut() {
                Some(ft) => {
                    let (x, v, s) = data.batch_raw(&windows, cfg.window);
                    let batch = Batch {
                        x: &x,
                        v: &v,
                        s: &s,
                        b: windows.len(),
                        w: cfg.window,
                    };
                    ft.load(&model);
                    let (l, grads) = ft.step(&model, &batch, spec, device);
                    (l.total, Some(grads))
                }
                None => {
                    let (x, v, s) = data.batch(&windows, cfg.window, &ad);
                    let (l, _, _) = loss(&model, x, v, s, skip, pos_weight, cfg.spike_weight);
                    let value = scalar(l.clone());
                    let grads = value
                        .is_finite()
                        .then(|| GradientsParams::from_grads(l.backward(), &model));
                    (value, grads)
                }
            };
            if !value.is_finite() {
                let kept = if out_dir.join("model.bpk").exists() {
                    format!(
                        "The best checkpoint so far (epoch {}) is kept in {}. ",
                        meta.best_epoch,
                        out_dir.display()
                    )
                } else {
                    format!(
                        "No epoch finished, so nothing was written to {}. ",
                        out_dir.display()
                    )
                };
                return Err(SurgeError::TrainingDiverged {
                    value,
                    epoch,
                    step,
                    dir: out_dir.to_path_buf(),
                    kept,
                });
            }
            train_sum += value;
            model = optim.step(lr, model, grads.expect("finite loss"));
        }
        // Validation without autodiff.
        let plain = model.valid();
        let (mut vl, mut vm, mut vb) = (0.0, 0.0, 0.0);
        if let Some(ft) = fused.as_mut() {
            ft.load(&model);
        }
        for chunk in val_windows.chunks(cfg.batch) {
            let (l, m, b) = match fused.as_mut() {
                Some(ft) => {
                    let (x, v, s) = data.batch_raw(chunk, cfg.window);
                    let batch = Batch {
                        x: &x,
                        v: &v,
                        s: &s,
                        b: chunk.len(),
                        w: cfg.window,
                    };
                    let l = ft.loss(&batch, spec);
                    (l.total, l.mse, l.bce)
                }
                None => {
                    let (x, v, s) = data.batch(chunk, cfg.window, device);
                    let (l, m, b) = loss(&plain, x, v, s, skip, pos_weight, cfg.spike_weight);
                    (scalar(l), scalar(m), scalar(b))
                }
            };
            let w = chunk.len() as f64 / val_windows.len() as f64;
            vl += l * w;
            vm += m * w;
            vb += b * w;
        }
        meta.epochs.push(EpochMetrics {
            epoch,
            train_loss: train_sum / cfg.steps_per_epoch.max(1) as f64,
            val_loss: vl,
            val_voltage_mse: vm,
            val_spike_bce: vb,
            lr,
        });
        if vl < best {
            best = vl;
            since_best = 0;
            meta.best_epoch = epoch;
            save_checkpoint(&plain, &meta, out_dir)?;
        } else {
            since_best += 1;
            write_meta(&meta, out_dir)?;
        }
        // Resumable state: model and optimizer under this epoch's names, then the state that points at them.
        let (m, o) = state_files(out_dir, epoch);
        let io = |p: &Path, e: burn::store::RecordError| {
            SurgeError::io(
                "cannot write training state",
                p,
                std::io::Error::other(format!("{e:?}")),
            )
        };
        let (mp, op) = (partial_path(&m), partial_path(&o));
        model.clone().save_file(&mp).map_err(|e| io(&mp, e))?;
        commit(&mp, &m)?;
        optim.save(&op).map_err(|e| io(&op, e))?;
        commit(&op, &o)?;
        let st = TrainState {
            epoch,
            best,
            since_best,
            meta: meta.clone(),
        };
        atomic_write(
            &state_path,
            serde_json::to_string(&st).expect("serialisable").as_bytes(),
        )?;
        if epoch > 1 {
            let (m0, o0) = state_files(out_dir, epoch - 1);
            let _ = std::fs::remove_file(m0);
            let _ = std::fs::remove_file(o0);
        }
        let go_on = progress(epoch, cfg.epochs, vl);
        if since_best >= cfg.patience || !go_on {
            break;
        }
    }
    Ok(meta)
}

fn write_meta(meta: &SurrogateMeta, dir: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(meta).expect("serialisable");
    atomic_write(&dir.join("surrogate.json"), json.as_bytes())
}

/// Writes `model.bpk` and `surrogate.json` atomically.
pub fn save_checkpoint(model: &Surrogate, meta: &SurrogateMeta, dir: &Path) -> Result<()> {
    let path = dir.join("model.bpk");
    let partial = partial_path(&path);
    model.clone().save_file(&partial).map_err(|e| {
        SurgeError::io(
            "cannot write checkpoint",
            &partial,
            std::io::Error::other(format!("{e:?}")),
        )
    })?;
    commit(&partial, &path)?;
    write_meta(meta, dir)
}

/// Loads a checkpoint folder onto `device`.
pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<(Surrogate, SurrogateMeta)> {
    let meta_path = dir.join("surrogate.json");
    let text = std::fs::read_to_string(&meta_path)
        .map_err(|e| SurgeError::io("cannot read checkpoint sidecar", &meta_path, e))?;
    let meta: SurrogateMeta = serde_json::from_str(&text).map_err(|e| {
        SurgeError::data(
            &meta_path,
            format!("not a Surge surrogate sidecar ({e})"),
            "point --checkpoint at a folder written by `surge train`",
        )
    })?;
    let path = dir.join("model.bpk");
    let model = meta.arch.init(device).try_load_file(&path).map_err(|e| {
        SurgeError::data(
            &path,
            format!("cannot load the model ({e:?})"),
            "the checkpoint is corrupt or of another architecture; retrain it",
        )
    })?;
    Ok((model, meta))
}

#[cfg(test)]
mod sidecar_tests {
    use super::*;

    #[test]
    fn sidecars_name_their_data_by_file_and_hash_and_hold_the_neuron_as_an_object() {
        let old = r#"{"neuron_model": "{\"model\":\"lif_current\"}",
                      "datasets": [["/tmp/build/pyr.h5", "abc"]]}"#;
        #[derive(Deserialize)]
        struct Part {
            #[serde(deserialize_with = "json_object_or_text")]
            neuron_model: serde_json::Value,
            datasets: Vec<TrainingFile>,
        }
        let p: Part = serde_json::from_str(old).unwrap();
        assert_eq!(p.neuron_model["model"], "lif_current");
        assert_eq!(
            p.datasets,
            vec![TrainingFile {
                file: "pyr.h5".into(),
                sha256: "abc".into()
            }]
        );
        // The shipped checkpoints are written in this form.
        for kind in ["lif-default", "lif-accurate"] {
            for cell in ["pyramidal", "basket"] {
                let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("checkpoints")
                    .join(kind)
                    .join(cell)
                    .join("surrogate.json");
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                assert!(v["neuron_model"].is_object(), "{}", path.display());
                for d in v["datasets"].as_array().unwrap() {
                    let f = d["file"].as_str().unwrap();
                    assert!(
                        !f.contains('/') && d["sha256"].as_str().unwrap().len() == 64,
                        "{d}"
                    );
                }
            }
        }
        let written = serde_json::to_value(&p.datasets).unwrap();
        assert_eq!(written[0]["file"], "pyr.h5");
        assert_eq!(written[0]["sha256"], "abc");
    }
}
