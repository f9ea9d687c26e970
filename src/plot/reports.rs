//! The figures commands leave beside their reports: an optimisation's, a dataset's traces, a
//! surrogate's traces against the exact neuron's.

use super::{Lines, Raster, save};
use crate::data::DatasetReader;
use crate::data::h5::TraceData;
use crate::error::Result;
use crate::netopt::optimize::{ExactCheck, OptimizeConfig};
use crate::spec::NetworkSpec;
use crate::surrogate::eval::Prediction;
use std::path::{Path, PathBuf};

/// The inputs of [`optimisation`].
pub struct OptimisationFigures<'a> {
    pub cfg: &'a OptimizeConfig,
    pub spec: &'a NetworkSpec,
    /// The iteration records as written to metrics.json.
    pub records: &'a [serde_json::Value],
    pub before_psd: &'a (Vec<f64>, Vec<f64>),
    pub after_psd: &'a (Vec<f64>, Vec<f64>),
    pub before_exact: &'a [ExactCheck],
    pub after_exact: &'a [ExactCheck],
    pub names: &'a [String],
    pub gains: &'a [f32],
}

/// An optimisation's figures in `dir`: objective per iteration, spectra before/after in both
/// engines, the gains, and exact rasters on the first held-out instance.
pub fn optimisation(dir: &Path, f: &OptimisationFigures) -> Result<()> {
    let OptimisationFigures {
        cfg,
        spec,
        records,
        before_psd,
        after_psd,
        before_exact,
        after_exact,
        names,
        gains,
    } = *f;
    let it: Vec<f64> = records
        .iter()
        .filter_map(|r| r["iteration"].as_f64())
        .collect();
    let score: Vec<f64> = records
        .iter()
        .filter_map(|r| r["band_score"].as_f64())
        .collect();
    let loss: Vec<f64> = records.iter().filter_map(|r| r["loss"].as_f64()).collect();
    save(
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
    save(
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
    save(
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
    save(
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
        save(
            &Raster {
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

/// One trace of each regime found among the first traces of a set, voltage over its first 300 ms, drawn
/// beside the file as `<stem>_traces.{svg,png}`.
pub fn dataset_traces(path: &Path) -> Result<PathBuf> {
    let reader = DatasetReader::open_unchecked(&[path.to_path_buf()])?;
    let mut picked: Vec<TraceData> = Vec::new();
    for i in 0..reader.n_traces().min(64) {
        let t = reader.read(i)?;
        if !picked.iter().any(|p| p.regime == t.regime) {
            picked.push(t);
        }
    }
    // The first 300 ms: a whole second of a suprathreshold trace hides the others.
    let shown = reader.bins.min((300.0 / reader.bin_ms).ceil() as usize);
    let xs: Vec<f64> = (0..shown)
        .map(|b| (b as f64 + 1.0) * reader.bin_ms)
        .collect();
    let ys: Vec<Vec<f64>> = picked
        .iter()
        .map(|t| t.voltage.iter().take(shown).map(|&v| v as f64).collect())
        .collect();
    let stem = path
        .file_stem()
        .map_or("dataset".into(), |s| s.to_string_lossy().into_owned());
    let figs = save(
        &Lines {
            title: format!("{stem}: one trace per regime (exact neuron)"),
            x_desc: "time (ms)".into(),
            y_desc: "voltage (mV)".into(),
            series: picked
                .iter()
                .zip(&ys)
                .map(|(t, y)| {
                    (
                        format!("{:?} #{}", t.regime, t.index),
                        xs.as_slice(),
                        y.as_slice(),
                    )
                })
                .collect(),
            log_y: false,
            x_range: None,
        },
        &path.with_file_name(format!("{stem}_traces")),
    )?;
    Ok(figs.last().cloned().unwrap_or_default())
}

/// Exact against predicted voltage of one trace, as `<stem>.{svg,png}`; returns the PNG.
pub fn trace_vs_surrogate(
    stem: &Path,
    t: &TraceData,
    p: &Prediction,
    bin_ms: f64,
) -> Result<PathBuf> {
    let xs: Vec<f64> = (0..t.voltage.len())
        .map(|b| (b as f64 + 1.0) * bin_ms)
        .collect();
    let ex: Vec<f64> = t.voltage.iter().map(|&x| x as f64).collect();
    let pr: Vec<f64> = p.voltage.iter().map(|&x| x as f64).collect();
    let figs = save(
        &Lines {
            title: format!("trace {} ({:?}): exact vs surrogate", t.index, t.regime),
            x_desc: "time (ms)".into(),
            y_desc: "voltage (mV)".into(),
            series: vec![
                ("exact".into(), xs.as_slice(), ex.as_slice()),
                ("surrogate".into(), xs.as_slice(), pr.as_slice()),
            ],
            log_y: false,
            x_range: None,
        },
        stem,
    )?;
    Ok(figs.last().cloned().unwrap_or_default())
}

/// A surrogate's training and validation loss per epoch, as `<stem>.{svg,png}`.
pub fn learning_curve(
    meta: &crate::surrogate::train::SurrogateMeta,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    let xs: Vec<f64> = meta.epochs.iter().map(|e| e.epoch as f64).collect();
    let tr: Vec<f64> = meta.epochs.iter().map(|e| e.train_loss).collect();
    let va: Vec<f64> = meta.epochs.iter().map(|e| e.val_loss).collect();
    save(
        &Lines {
            title: "surrogate learning curve".into(),
            x_desc: "epoch".into(),
            y_desc: "loss (MSE + lambda BCE)".into(),
            series: vec![
                ("train".into(), xs.as_slice(), tr.as_slice()),
                ("validation".into(), xs.as_slice(), va.as_slice()),
            ],
            log_y: true,
            x_range: None,
        },
        stem,
    )
}

/// An RLS run's mean training-trial correlation per loop, as `<stem>.{svg,png}`.
pub fn correlation_per_loop(title: &str, per_loop: &[f64], stem: &Path) -> Result<Vec<PathBuf>> {
    let xs: Vec<f64> = (1..=per_loop.len()).map(|i| i as f64).collect();
    save(
        &Lines {
            title: title.into(),
            x_desc: "loop".into(),
            y_desc: "mean Pearson r".into(),
            series: vec![("training trials".into(), xs.as_slice(), per_loop)],
            log_y: false,
            x_range: None,
        },
        stem,
    )
}

/// Spectra of several runs together (`(label, freqs, power)`), as `<stem>.{svg,png}`.
pub fn spectra(
    title: &str,
    runs: &[(&str, &ExactCheck)],
    x_range: (f64, f64),
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    save(
        &Lines {
            title: title.into(),
            x_desc: "frequency (Hz)".into(),
            y_desc: "power (mV^2/Hz)".into(),
            series: runs
                .iter()
                .map(|(l, c)| (l.to_string(), c.freqs_hz.as_slice(), c.power.as_slice()))
                .collect(),
            log_y: true,
            x_range: Some(x_range),
        },
        stem,
    )
}
