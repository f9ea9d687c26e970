//! Honest metrics of a checkpoint on held-out traces: voltage RMSE (all bins, and bins away from
//! spikes), Pearson r, spike precision/recall/F1 at +-2 ms, Kistler's coincidence factor, firing-rate error.

use super::cpu::kernels::onset;
use super::model::Surrogate;
use super::train::{SurrogateMeta, load_checkpoint};
use crate::data::DatasetReader;
use crate::data::h5::TraceData;
use crate::error::{Result, SurgeError};
use crate::signal::{coincidence_factor, match_spikes, pearson};
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Spike timing tolerance (ms) for precision/recall and Gamma.
pub const SPIKE_TOL_MS: f64 = 2.0;
/// Bins closer than this to an exact spike are not "subthreshold".
pub const SUBTHRESHOLD_MARGIN_MS: f64 = 5.0;

#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    pub traces: usize,
    pub bin_ms: f64,
    pub voltage_rmse_mv: f64,
    pub subthreshold_rmse_mv: f64,
    /// Pearson r of predicted and exact voltage, pooled over all evaluated bins.
    pub voltage_r: f64,
    pub spike_precision: f64,
    pub spike_recall: f64,
    pub spike_f1: f64,
    /// Mean over traces with spikes in either train.
    pub coincidence_gamma: f64,
    pub rate_exact_hz: f64,
    pub rate_predicted_hz: f64,
    pub rate_abs_error_hz: f64,
}

/// One trace's prediction: voltage (mV) and spike times (ms) from the spike head (probability > 0.5,
/// one spike per run of consecutive bins).
pub struct Prediction {
    pub voltage: Vec<f32>,
    pub spikes_ms: Vec<f64>,
}

/// Refuses a dataset whose channels or bin width differ from the checkpoint's.
pub fn check_compatible(meta: &SurrogateMeta, reader: &DatasetReader, ckpt: &Path) -> Result<()> {
    if meta.channel_names != reader.channel_names {
        return Err(SurgeError::data(
            reader.paths()[0],
            format!(
                "has channels {:?} but the checkpoint {} was trained on {:?}",
                reader.channel_names,
                ckpt.display(),
                meta.channel_names
            ),
            "evaluate on a set of the same neuron model, or train a surrogate for this one",
        ));
    }
    if (meta.bin_ms - reader.bin_ms).abs() > 1e-12 {
        return Err(SurgeError::data(
            reader.paths()[0],
            format!(
                "has {} ms bins but the checkpoint uses {} ms",
                reader.bin_ms, meta.bin_ms
            ),
            "generate the set with the checkpoint's bin_ms",
        ));
    }
    Ok(())
}

/// The traces' inputs under the checkpoint's input transform, `[trace, bin, channel]`.
fn scaled_inputs(meta: &SurrogateMeta, traces: &[TraceData], device: &Device) -> Tensor<3> {
    let nch = meta.channel_names.len();
    let bins = traces.first().map_or(0, |t| t.voltage.len());
    let x: Vec<f32> = traces
        .iter()
        .flat_map(|t| {
            t.inputs
                .iter()
                .enumerate()
                .map(|(k, &a)| meta.scaling.input(a, k % nch))
        })
        .collect();
    Tensor::<3>::from_data(TensorData::new(x, [traces.len(), bins, nch]), device)
}

/// Runs the model on whole traces.
pub fn predict(
    model: &Surrogate,
    meta: &SurrogateMeta,
    traces: &[TraceData],
    device: &Device,
) -> Vec<Prediction> {
    let bins = traces.first().map_or(0, |t| t.voltage.len());
    let (v, logit) = model.forward(scaled_inputs(meta, traces, device));
    let v: Vec<f32> = v.into_data().try_to_vec().unwrap_or_default();
    let logit: Vec<f32> = logit.into_data().try_to_vec().unwrap_or_default();
    // Spikes are the onsets of runs above the calibrated threshold; the scored part (from the bin
    // where the receptive field has filled) starts afresh, as `calibrate` counts it.
    let skip = meta.arch.receptive_field() - 1;
    let thr = meta.spike_logit_threshold;
    (0..traces.len())
        .map(|i| {
            let voltage = v[i * bins..(i + 1) * bins]
                .iter()
                .map(|&a| a * meta.scaling.v_std + meta.scaling.v_mean)
                .collect();
            let mut spikes_ms = Vec::new();
            let mut prev = 0.0;
            for (b, &l) in logit[i * bins..(i + 1) * bins].iter().enumerate() {
                let now = if l > thr { 1.0 } else { 0.0 };
                if b == skip {
                    prev = 0.0;
                }
                if onset(now, prev) > 0.0 {
                    spikes_ms.push((b as f64 + 0.5) * meta.bin_ms);
                }
                prev = now;
            }
            Prediction { voltage, spikes_ms }
        })
        .collect()
}

fn spike_times(t: &TraceData, bin_ms: f64) -> Vec<f64> {
    t.spikes
        .iter()
        .enumerate()
        .flat_map(|(b, &k)| std::iter::repeat_n((b as f64 + 0.5) * bin_ms, k as usize))
        .collect()
}

/// Accumulates the metrics over traces and their predictions; bins before the receptive field has
/// filled (`skip`) are not scored.
pub struct Scorer {
    skip: usize,
    bin: f64,
    n: usize,
    se: f64,
    n_all: usize,
    se_sub: f64,
    n_sub: usize,
    xs: Vec<f64>,
    ys: Vec<f64>,
    hits: usize,
    fps: usize,
    fns: usize,
    gsum: f64,
    gn: usize,
    r_exact: f64,
    r_pred: f64,
    r_err: f64,
}

impl Scorer {
    pub fn new(meta: &SurrogateMeta) -> Self {
        Scorer {
            skip: meta.arch.receptive_field() - 1,
            bin: meta.bin_ms,
            n: 0,
            se: 0.0,
            n_all: 0,
            se_sub: 0.0,
            n_sub: 0,
            xs: Vec::new(),
            ys: Vec::new(),
            hits: 0,
            fps: 0,
            fns: 0,
            gsum: 0.0,
            gn: 0,
            r_exact: 0.0,
            r_pred: 0.0,
            r_err: 0.0,
        }
    }

    /// The first scored bin.
    pub fn skip(&self) -> usize {
        self.skip
    }

    /// Exact and predicted spike times (ms) of a trace, inside the scored part.
    pub fn scored_spikes(&self, t: &TraceData, p: &Prediction) -> (Vec<f64>, Vec<f64>) {
        let from = self.skip as f64 * self.bin;
        (
            spike_times(t, self.bin)
                .into_iter()
                .filter(|&s| s >= from)
                .collect(),
            p.spikes_ms.iter().copied().filter(|&s| s >= from).collect(),
        )
    }

    pub fn add(&mut self, t: &TraceData, p: &Prediction) {
        let (skip, bin) = (self.skip, self.bin);
        let bins = t.voltage.len();
        let dur = (bins - skip) as f64 * bin;
        let (exact, model_sp) = self.scored_spikes(t, p);
        for b in skip..bins {
            let d = (p.voltage[b] - t.voltage[b]) as f64;
            self.se += d * d;
            self.n_all += 1;
            let tb = (b as f64 + 0.5) * bin;
            if exact
                .iter()
                .all(|&s| (s - tb).abs() > SUBTHRESHOLD_MARGIN_MS)
            {
                self.se_sub += d * d;
                self.n_sub += 1;
            }
            self.xs.push(p.voltage[b] as f64);
            self.ys.push(t.voltage[b] as f64);
        }
        let (h, f, m) = match_spikes(&exact, &model_sp, SPIKE_TOL_MS);
        self.hits += h;
        self.fps += f;
        self.fns += m;
        if let Some(g) = coincidence_factor(&exact, &model_sp, SPIKE_TOL_MS, dur) {
            self.gsum += g;
            self.gn += 1;
        }
        let (re, rp) = (
            exact.len() as f64 / dur * 1000.0,
            model_sp.len() as f64 / dur * 1000.0,
        );
        self.r_exact += re;
        self.r_pred += rp;
        self.r_err += (re - rp).abs();
        self.n += 1;
    }

    pub fn finish(self) -> EvalMetrics {
        let precision = if self.hits + self.fps > 0 {
            self.hits as f64 / (self.hits + self.fps) as f64
        } else {
            1.0
        };
        let recall = if self.hits + self.fns > 0 {
            self.hits as f64 / (self.hits + self.fns) as f64
        } else {
            1.0
        };
        let nf = self.n.max(1) as f64;
        EvalMetrics {
            traces: self.n,
            bin_ms: self.bin,
            voltage_rmse_mv: (self.se / self.n_all.max(1) as f64).sqrt(),
            subthreshold_rmse_mv: (self.se_sub / self.n_sub.max(1) as f64).sqrt(),
            voltage_r: pearson(&self.xs, &self.ys),
            spike_precision: precision,
            spike_recall: recall,
            spike_f1: if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            },
            coincidence_gamma: if self.gn > 0 {
                self.gsum / self.gn as f64
            } else {
                f64::NAN
            },
            rate_exact_hz: self.r_exact / nf,
            rate_predicted_hz: self.r_pred / nf,
            rate_abs_error_hz: self.r_err / nf,
        }
    }
}

/// Evaluates a checkpoint folder on `files`; bins before the receptive field has filled are skipped.
pub fn evaluate(
    ckpt: &Path,
    files: &[PathBuf],
    device: &Device,
) -> Result<(EvalMetrics, Vec<(TraceData, Prediction)>)> {
    let (model, meta) = load_checkpoint(ckpt, device)?;
    let reader = DatasetReader::open(files)?;
    check_compatible(&meta, &reader, ckpt)?;
    let mut scorer = Scorer::new(&meta);
    let mut kept = Vec::new();
    let n = reader.n_traces();
    for a in (0..n).step_by(16) {
        let traces: Vec<TraceData> = (a..(a + 16).min(n))
            .map(|i| reader.read(i))
            .collect::<Result<_>>()?;
        let preds = predict(&model, &meta, &traces, device);
        for (t, p) in traces.into_iter().zip(preds) {
            scorer.add(&t, &p);
            // Two example traces of each regime for the figures.
            if kept
                .iter()
                .filter(|(k, _): &&(TraceData, Prediction)| k.regime == t.regime)
                .count()
                < 2
            {
                kept.push((t, p));
            }
        }
    }
    Ok((scorer.finish(), kept))
}

/// The median per-bin rise of the logits at their upward crossings of `thr` (`None`: no crossing).
/// This is the scale on which the spike logit moves through its threshold, the unit of the network
/// engine's surrogate gradient width.
pub fn crossing_rise(logits: &[Vec<f32>], thr: f32) -> Option<f32> {
    let mut rises: Vec<f32> = logits
        .iter()
        .flat_map(|l| l.windows(2))
        .filter(|w| w[0] <= thr && w[1] > thr)
        .map(|w| w[1] - w[0])
        .collect();
    if rises.is_empty() {
        return None;
    }
    rises.sort_by(f32::total_cmp);
    Some(rises[rises.len() / 2])
}

/// What [`calibrate`] measured and stored.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    pub threshold: f32,
    /// See `SurrogateMeta::spike_logit_width`.
    pub width: f32,
    pub exact_spikes: usize,
    /// Spikes called at threshold 0...
    pub at_zero: usize,
    /// ...and at the stored threshold.
    pub called: usize,
}

/// Sets the checkpoint's spike-logit threshold so that the onsets it calls on `files` (use training
/// data, not the held-out set) number as many as the exact spikes (unless `keep_threshold`), measures
/// how fast the logit crosses that threshold ([`crossing_rise`]), and rewrites the sidecar.
pub fn calibrate(
    ckpt: &Path,
    files: &[PathBuf],
    max_traces: usize,
    keep_threshold: bool,
    device: &Device,
) -> Result<Calibration> {
    let (model, mut meta) = load_checkpoint(ckpt, device)?;
    let reader = DatasetReader::open(files)?;
    check_compatible(&meta, &reader, ckpt)?;
    let skip = meta.arch.receptive_field() - 1;
    let n = reader.n_traces().min(max_traces.max(1));
    let mut logits: Vec<Vec<f32>> = Vec::with_capacity(n);
    let mut exact = 0usize;
    for start in (0..n).step_by(16) {
        let traces: Vec<TraceData> = (start..(start + 16).min(n))
            .map(|i| reader.read(i))
            .collect::<Result<_>>()?;
        let bins = traces[0].voltage.len();
        let (_, l) = model.forward(scaled_inputs(&meta, &traces, device));
        let l: Vec<f32> = l.into_data().try_to_vec().unwrap_or_default();
        for (i, t) in traces.iter().enumerate() {
            logits.push(l[i * bins + skip..(i + 1) * bins].to_vec());
            exact += t.spikes[skip..].iter().map(|&s| s as usize).sum::<usize>();
        }
    }
    let count = |thr: f32| {
        logits
            .iter()
            .map(|l| super::cpu::kernels::count_onsets(l, thr))
            .sum::<usize>()
    };
    let at_zero = count(0.0);
    if !keep_threshold {
        // Onset counts are not monotonic in the threshold (a low threshold merges runs), so scan a grid
        // and keep the threshold whose count is closest to the exact one (the one nearest 0 among ties).
        let mut best = (usize::MAX, f32::INFINITY, 0.0f32);
        for i in 0..=600 {
            let thr = -10.0 + 0.05 * i as f32;
            let miss = count(thr).abs_diff(exact);
            if (miss, thr.abs()) < (best.0, best.1) {
                best = (miss, thr.abs(), thr);
            }
        }
        meta.spike_logit_threshold = best.2;
    }
    let width = crossing_rise(&logits, meta.spike_logit_threshold).ok_or_else(|| {
        SurgeError::data(
            &files[0],
            "the surrogate's spike logit never crosses its threshold on these traces",
            "calibrate on traces in which the cell fires",
        )
    })?;
    meta.spike_logit_width = Some(width);
    let json = serde_json::to_string_pretty(&meta).expect("serialisable");
    crate::results::atomic_write(&ckpt.join("surrogate.json"), json.as_bytes())?;
    Ok(Calibration {
        threshold: meta.spike_logit_threshold,
        width,
        exact_spikes: exact,
        at_zero,
        called: count(meta.spike_logit_threshold),
    })
}

#[cfg(test)]
mod tests {
    use super::crossing_rise;

    #[test]
    fn crossing_rise_is_the_median_rise_through_the_threshold() {
        // Upward crossings of 1.0: 0.5 -> 1.5 (rise 1), 0 -> 3 (rise 3), 1.0 -> 1.2 (rise 0.2, from
        // exactly the threshold); the fall 3 -> 0 and the rise 1.5 -> 2 above it do not count.
        let logits = vec![vec![0.5, 1.5, 2.0, 0.0, 3.0, 0.0], vec![1.0, 1.2]];
        assert_eq!(crossing_rise(&logits, 1.0), Some(1.0));
        assert_eq!(crossing_rise(&[vec![0.0, 0.5, 0.2]], 1.0), None);
    }
}
