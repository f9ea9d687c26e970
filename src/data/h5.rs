//! Dataset files: an incremental writer (one chunk of traces in memory, `*.partial` until complete),
//! a validating reader over one or several files, merging of shards, and summary statistics.

use super::config::{DatasetConfig, Regime};
use super::generate::Trace;
use super::{SCHEMA, SCHEMA_VERSION};
use crate::error::{Result, SurgeError};
use crate::results::{commit, partial_path};
use crate::spec::CellSpec;
use hdf5::types::VarLenUnicode;
use ndarray::{Array1, Array2, Array3, s};
use std::path::{Path, PathBuf};

/// Which part of the whole set a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    pub index: u32,
    /// 1 for a complete set; 0 for a contiguous part that is not one shard (a partial merge).
    pub count: u32,
    pub first: u64,
    pub end: u64,
    pub total: u64,
}

impl ShardInfo {
    /// Shard `index` of `count` of a set of `total` traces: a contiguous, disjoint range of trace indices.
    pub fn of(index: u32, count: u32, total: u64) -> Self {
        let first = total * index as u64 / count as u64;
        let end = total * (index as u64 + 1) / count as u64;
        ShardInfo {
            index,
            count,
            first,
            end,
            total,
        }
    }
}

fn vlu(s: &str) -> VarLenUnicode {
    s.parse().expect("UTF-8 without NUL")
}

/// Appends traces to a new dataset file; the file appears under its name only after [`DatasetWriter::finish`].
pub struct DatasetWriter {
    path: PathBuf,
    partial: PathBuf,
    file: hdf5::File,
    n: usize,
    bins: usize,
    nch: usize,
}

impl DatasetWriter {
    /// Starts `path` (written as `*.partial.h5`). `config_text` is stored as the `config` attribute.
    pub fn create(
        path: &Path,
        cfg: &DatasetConfig,
        config_text: &str,
        shard: ShardInfo,
    ) -> Result<Self> {
        let partial = partial_path(path);
        let _ = std::fs::remove_file(&partial);
        let p = partial.as_path();
        let h = |e: hdf5::Error| SurgeError::hdf5(p, e);
        let file = hdf5::File::create(p).map_err(h)?;
        let (bins, nch) = (cfg.bins(), cfg.channel_names().len());
        let chunk = cfg
            .dataset
            .chunk_traces
            .min(shard.end.saturating_sub(shard.first).max(1) as usize);
        let str_attr = |name: &str, v: &str| {
            file.new_attr::<VarLenUnicode>()
                .create(name)
                .and_then(|a| a.write_scalar(&vlu(v)))
                .map_err(h)
        };
        str_attr("schema", SCHEMA)?;
        str_attr("surge_version", env!("CARGO_PKG_VERSION"))?;
        str_attr("config", config_text)?;
        str_attr("name", &cfg.name)?;
        str_attr(
            "neuron_model",
            &serde_json::to_string(&cfg.neuron).expect("serialisable"),
        )?;
        str_attr(
            "voltage_sampling",
            "somatic voltage (mV) at the end of each bin",
        )?;
        str_attr(
            "input_definition",
            "per bin and channel, the sum of the weights of the input spikes arriving in the bin (nS peak conductance for lif_conductance, mV for lif_current), delivered at the bin start",
        )?;
        let u32_attr = |name: &str, v: u32| {
            file.new_attr::<u32>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
                .map_err(h)
        };
        u32_attr("schema_version", SCHEMA_VERSION)?;
        u32_attr("shard_index", shard.index)?;
        u32_attr("shard_count", shard.count)?;
        let u64_attr = |name: &str, v: u64| {
            file.new_attr::<u64>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
                .map_err(h)
        };
        u64_attr("seed", cfg.seed())?;
        u64_attr("traces_total", shard.total)?;
        u64_attr("first_trace", shard.first)?;
        let f64_attr = |name: &str, v: f64| {
            file.new_attr::<f64>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
                .map_err(h)
        };
        f64_attr("bin_ms", cfg.dataset.bin_ms)?;
        f64_attr("dt_ms", cfg.dataset.dt_ms)?;
        let names: Vec<VarLenUnicode> = cfg.channel_names().iter().map(|c| vlu(c)).collect();
        file.new_attr_builder()
            .with_data(names.as_slice())
            .create("channel_names")
            .map_err(h)?;
        let regimes: Vec<VarLenUnicode> = Regime::ALL.iter().map(|r| vlu(r.name())).collect();
        file.new_attr_builder()
            .with_data(regimes.as_slice())
            .create("regime_names")
            .map_err(h)?;

        file.new_dataset::<f32>()
            .chunk((chunk, bins, nch))
            .deflate(1)
            .shape((0.., bins, nch))
            .create("inputs")
            .map_err(h)?;
        file.new_dataset::<f32>()
            .chunk((chunk, bins))
            .deflate(1)
            .shape((0.., bins))
            .create("voltage")
            .map_err(h)?;
        file.new_dataset::<u8>()
            .chunk((chunk, bins))
            .deflate(1)
            .shape((0.., bins))
            .create("spikes")
            .map_err(h)?;
        file.new_dataset::<u8>()
            .chunk(chunk)
            .shape(0..)
            .create("regime")
            .map_err(h)?;
        let meta = file.create_group("meta").map_err(h)?;
        meta.new_dataset::<u64>()
            .chunk(chunk)
            .shape(0..)
            .create("trace_index")
            .map_err(h)?;
        meta.new_dataset::<f32>()
            .chunk(chunk)
            .shape(0..)
            .create("rate_hz")
            .map_err(h)?;
        meta.new_dataset::<f32>()
            .chunk(chunk)
            .shape(0..)
            .create("modulation_hz")
            .map_err(h)?;
        for name in ["activation_p", "input_rate_hz", "weight_mean"] {
            meta.new_dataset::<f32>()
                .chunk((chunk, nch))
                .shape((0.., nch))
                .create(name)
                .map_err(h)?;
        }
        meta.new_dataset::<u32>()
            .chunk((chunk, nch))
            .shape((0.., nch))
            .create("n_active")
            .map_err(h)?;
        Ok(DatasetWriter {
            path: path.to_path_buf(),
            partial,
            file,
            n: 0,
            bins,
            nch,
        })
    }

    /// Re-opens the `*.partial.h5` of an interrupted run of the same config and shard, keeping the
    /// traces it recorded as complete (`traces_done`, written after each flushed append) and dropping
    /// any written after that.
    pub fn resume(
        path: &Path,
        cfg: &DatasetConfig,
        config_text: &str,
        shard: ShardInfo,
    ) -> Result<Self> {
        let partial = partial_path(path);
        let p = partial.as_path();
        let damaged = |why: String| {
            SurgeError::data(
                p,
                format!("cannot resume from it: {why}"),
                "run `surge gen` again without --resume (it starts over)",
            )
        };
        if !p.exists() {
            return Err(damaged(
                "there is no interrupted run to resume (no partial file)".into(),
            ));
        }
        let file = hdf5::File::open_rw(p).map_err(|e| damaged(format!("unreadable ({e})")))?;
        let text: VarLenUnicode = file
            .attr("config")
            .and_then(|a| a.read_scalar())
            .map_err(|e| damaged(format!("no config ({e})")))?;
        if text.as_str() != config_text {
            return Err(SurgeError::data(
                p,
                "was started with another config (or other --traces/--seed)",
                "resume with the same config and options, or start over without --resume",
            ));
        }
        let read_u64 = |name: &str| -> Result<u64> {
            file.attr(name)
                .and_then(|a| a.read_scalar::<u64>())
                .map_err(|e| damaged(format!("no `{name}` ({e})")))
        };
        if read_u64("first_trace")? != shard.first || read_u64("traces_total")? != shard.total {
            return Err(SurgeError::data(
                p,
                "holds another shard",
                "resume with the same --shard, or start over without --resume",
            ));
        }
        let done = read_u64("traces_done")? as usize;
        let (bins, nch) = (cfg.bins(), cfg.channel_names().len());
        let h = |e: hdf5::Error| SurgeError::hdf5(p, e);
        // Whatever was written after the last recorded append is dropped (and rewritten).
        for name in ["inputs", "voltage", "spikes"] {
            let ds = file.dataset(name).map_err(h)?;
            if ds.shape()[0] < done {
                return Err(damaged(format!("`{name}` is shorter than traces_done")));
            }
            let mut shape = ds.shape();
            shape[0] = done;
            ds.resize(shape).map_err(h)?;
        }
        for name in [
            "regime",
            "meta/trace_index",
            "meta/rate_hz",
            "meta/modulation_hz",
            "meta/activation_p",
            "meta/input_rate_hz",
            "meta/weight_mean",
            "meta/n_active",
        ] {
            let ds = file.dataset(name).map_err(h)?;
            let mut shape = ds.shape();
            if shape[0] < done {
                return Err(damaged(format!("`{name}` is shorter than traces_done")));
            }
            shape[0] = done;
            ds.resize(shape).map_err(h)?;
        }
        Ok(DatasetWriter {
            path: path.to_path_buf(),
            partial,
            file,
            n: done,
            bins,
            nch,
        })
    }

    /// Appends `traces` (in order) to the file.
    pub fn append(&mut self, traces: &[Trace]) -> Result<()> {
        if traces.is_empty() {
            return Ok(());
        }
        let p = self.partial.clone();
        let h = |e: hdf5::Error| SurgeError::hdf5(&p, e);
        let (a, k, bins, nch) = (self.n, traces.len(), self.bins, self.nch);
        let b = a + k;
        let f = &self.file;
        let inputs = Array3::from_shape_vec(
            (k, bins, nch),
            traces
                .iter()
                .flat_map(|t| t.inputs.iter().copied())
                .collect(),
        )
        .expect("trace shapes");
        let ds = f.dataset("inputs").map_err(h)?;
        ds.resize((b, bins, nch)).map_err(h)?;
        ds.write_slice(&inputs, s![a..b, .., ..]).map_err(h)?;
        /// Appends rows `a..a + k` of a `[trace, cols]` dataset from per-trace slices.
        fn rows<T: hdf5::H5Type + Copy>(
            f: &hdf5::File,
            p: &Path,
            name: &str,
            a: usize,
            per_trace: Vec<&[T]>,
        ) -> Result<()> {
            let h = |e: hdf5::Error| SurgeError::hdf5(p, e);
            let (k, cols) = (per_trace.len(), per_trace[0].len());
            let data: Vec<T> = per_trace.iter().flat_map(|r| r.iter().copied()).collect();
            let ds = f.dataset(name).map_err(h)?;
            ds.resize((a + k, cols)).map_err(h)?;
            ds.write_slice(
                &Array2::from_shape_vec((k, cols), data).expect("equal rows"),
                s![a..a + k, ..],
            )
            .map_err(h)
        }
        let pp = self.partial.as_path();
        rows(
            f,
            pp,
            "voltage",
            a,
            traces.iter().map(|t| t.voltage.as_slice()).collect(),
        )?;
        rows(
            f,
            pp,
            "spikes",
            a,
            traces.iter().map(|t| t.spikes.as_slice()).collect(),
        )?;
        rows(
            f,
            pp,
            "meta/activation_p",
            a,
            traces.iter().map(|t| t.activation_p.as_slice()).collect(),
        )?;
        rows(
            f,
            pp,
            "meta/input_rate_hz",
            a,
            traces.iter().map(|t| t.input_rate_hz.as_slice()).collect(),
        )?;
        rows(
            f,
            pp,
            "meta/weight_mean",
            a,
            traces.iter().map(|t| t.weight_mean.as_slice()).collect(),
        )?;
        rows(
            f,
            pp,
            "meta/n_active",
            a,
            traces.iter().map(|t| t.n_active.as_slice()).collect(),
        )?;
        macro_rules! one_d {
            ($name:expr, $ty:ty, $get:expr) => {{
                let ds = f.dataset($name).map_err(h)?;
                ds.resize(b).map_err(h)?;
                let v: Array1<$ty> = traces.iter().map($get).collect();
                ds.write_slice(&v, s![a..b]).map_err(h)?;
            }};
        }
        one_d!("regime", u8, |t: &Trace| t.regime as u8);
        one_d!("meta/trace_index", u64, |t: &Trace| t.index);
        one_d!("meta/rate_hz", f32, |t: &Trace| t.rate_hz);
        one_d!("meta/modulation_hz", f32, |t: &Trace| t.modulation_hz);
        // Data on disk first, then the count that vouches for it: a run killed between the two resumes
        // from the previous count and rewrites these traces.
        f.flush().map_err(h)?;
        let attr = match f.attr("traces_done") {
            Ok(a) => a,
            Err(_) => f.new_attr::<u64>().create("traces_done").map_err(h)?,
        };
        attr.write_scalar(&(b as u64)).map_err(h)?;
        f.flush().map_err(h)?;
        self.n = b;
        Ok(())
    }

    /// Traces written so far.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Closes, syncs and renames the file into place.
    pub fn finish(self) -> Result<PathBuf> {
        let p = self.partial.clone();
        self.file.close().map_err(|e| SurgeError::hdf5(&p, e))?;
        commit(&self.partial, &self.path)?;
        Ok(self.path)
    }
}

/// One file of a set, validated.
struct Part {
    path: PathBuf,
    file: hdf5::File,
    n: usize,
    first: u64,
    shard: ShardInfo,
}

/// Traces `a..b` of one file.
struct Block {
    inputs: Array3<f32>,
    voltage: Array2<f32>,
    spikes: Array2<u8>,
    regime: Array1<u8>,
}

impl Part {
    fn block(&self, a: usize, b: usize) -> Result<Block> {
        let h = |e: hdf5::Error| SurgeError::hdf5(&self.path, e);
        let f = &self.file;
        Ok(Block {
            inputs: f
                .dataset("inputs")
                .map_err(h)?
                .read_slice(s![a..b, .., ..])
                .map_err(h)?,
            voltage: f
                .dataset("voltage")
                .map_err(h)?
                .read_slice(s![a..b, ..])
                .map_err(h)?,
            spikes: f
                .dataset("spikes")
                .map_err(h)?
                .read_slice(s![a..b, ..])
                .map_err(h)?,
            regime: f
                .dataset("regime")
                .map_err(h)?
                .read_slice(s![a..b])
                .map_err(h)?,
        })
    }
}

/// One or several dataset files read as one set, in trace-index order.
pub struct DatasetReader {
    parts: Vec<Part>,
    pub bins: usize,
    pub channel_names: Vec<String>,
    pub bin_ms: f64,
    pub dt_ms: f64,
    pub seed: u64,
    /// The neuron model as stored (JSON) and parsed.
    pub neuron_json: String,
    pub neuron: CellSpec,
    pub config: String,
}

/// A trace as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceData {
    pub index: u64,
    pub regime: Regime,
    /// `[bin][channel]`.
    pub inputs: Vec<f32>,
    pub voltage: Vec<f32>,
    pub spikes: Vec<u8>,
}

fn read_str_attr(path: &Path, file: &hdf5::File, name: &str) -> Result<String> {
    let a = file.attr(name).map_err(|_| {
        SurgeError::data(
            path,
            format!("missing root attribute `{name}`"),
            "this is not a complete Surge dataset; regenerate it with `surge gen`",
        )
    })?;
    let v: VarLenUnicode = a.read_scalar().map_err(|e| {
        SurgeError::data(
            path,
            format!("attribute `{name}` is not a string: {e}"),
            "regenerate the file with `surge gen`",
        )
    })?;
    Ok(v.as_str().to_string())
}

fn read_attr<T: hdf5::H5Type>(path: &Path, file: &hdf5::File, name: &str) -> Result<T> {
    file.attr(name).and_then(|a| a.read_scalar()).map_err(|e| {
        SurgeError::data(
            path,
            format!("missing or unreadable attribute `{name}` ({e})"),
            "regenerate the file with `surge gen`",
        )
    })
}

impl DatasetReader {
    /// Opens and validates `paths` as one set: each must be a Surge dataset of this schema version with
    /// consistent shapes and finite values, and all must agree on neuron, channels, bins and seed and hold
    /// disjoint traces.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        let r = Self::open_unchecked(paths)?;
        r.check_values()?;
        Ok(r)
    }

    /// [`DatasetReader::open`] without the pass over all values (for callers that scan them anyway).
    pub fn open_unchecked(paths: &[PathBuf]) -> Result<Self> {
        if paths.is_empty() {
            return Err(SurgeError::spec(
                "--data",
                "no dataset file given",
                "pass one or more .h5 files",
            ));
        }
        let mut parts = Vec::new();
        // (bins, channel names, bin_ms, dt_ms, seed, neuron JSON, config) of the first file.
        type Header = (usize, Vec<String>, f64, f64, u64, String, String);
        let mut head: Option<Header> = None;
        for path in paths {
            let file = hdf5::File::open(path).map_err(|e| {
                SurgeError::data(path, format!("cannot be opened as HDF5 ({e})"), "check the path; a truncated or foreign file cannot be read, regenerate it with `surge gen`")
            })?;
            let schema = read_str_attr(path, &file, "schema")?;
            if schema != SCHEMA {
                return Err(SurgeError::data(
                    path,
                    format!("schema is `{schema}`, not `{SCHEMA}`"),
                    "pass a dataset written by `surge gen`",
                ));
            }
            let version: u32 = read_attr(path, &file, "schema_version")?;
            if version != SCHEMA_VERSION {
                return Err(SurgeError::data(
                    path,
                    format!("schema version {version}, this Surge reads version {SCHEMA_VERSION}"),
                    "regenerate the set with this version of `surge gen`",
                ));
            }
            let bin_ms: f64 = read_attr(path, &file, "bin_ms")?;
            let dt_ms: f64 = read_attr(path, &file, "dt_ms")?;
            let seed: u64 = read_attr(path, &file, "seed")?;
            let neuron_json = read_str_attr(path, &file, "neuron_model")?;
            let config = read_str_attr(path, &file, "config")?;
            let names: Vec<VarLenUnicode> = file
                .attr("channel_names")
                .and_then(|a| a.read_raw())
                .map_err(|e| {
                SurgeError::data(
                    path,
                    format!("missing channel_names ({e})"),
                    "regenerate the file with `surge gen`",
                )
            })?;
            let names: Vec<String> = names.iter().map(|s| s.as_str().to_string()).collect();
            let shape = |name: &str| -> Result<Vec<usize>> {
                file.dataset(name).map(|d| d.shape()).map_err(|_| {
                    SurgeError::data(
                        path,
                        format!("missing dataset `/{name}`"),
                        "regenerate the file with `surge gen`",
                    )
                })
            };
            let inputs = shape("inputs")?;
            let n = *inputs.first().unwrap_or(&0);
            let bins = *inputs.get(1).unwrap_or(&0);
            if inputs.len() != 3 || inputs[2] != names.len() {
                return Err(SurgeError::data(
                    path,
                    format!(
                        "/inputs has shape {inputs:?}, expected [traces, bins, {}]",
                        names.len()
                    ),
                    "regenerate the file",
                ));
            }
            for (name, want) in [
                ("voltage", vec![n, bins]),
                ("spikes", vec![n, bins]),
                ("regime", vec![n]),
                ("meta/trace_index", vec![n]),
            ] {
                let got = shape(name)?;
                if got != want {
                    return Err(SurgeError::data(
                        path,
                        format!("/{name} has shape {got:?}, expected {want:?}"),
                        "the file is inconsistent; regenerate it",
                    ));
                }
            }
            let first: u64 = read_attr(path, &file, "first_trace")?;
            let shard = ShardInfo {
                index: read_attr(path, &file, "shard_index")?,
                count: read_attr(path, &file, "shard_count")?,
                first,
                end: first + n as u64,
                total: read_attr(path, &file, "traces_total")?,
            };
            let this = (bins, names, bin_ms, dt_ms, seed, neuron_json, config);
            match &head {
                None => head = Some(this),
                Some(h) => {
                    let what = if h.0 != this.0 {
                        Some("bins per trace")
                    } else if h.1 != this.1 {
                        Some("channel names")
                    } else if h.2 != this.2 || h.3 != this.3 {
                        Some("bin_ms or dt_ms")
                    } else if h.5 != this.5 {
                        Some("neuron model")
                    } else {
                        None
                    };
                    if let Some(w) = what {
                        return Err(SurgeError::data(
                            path,
                            format!("its {w} differ from {}", paths[0].display()),
                            "only files of the same neuron and binning form one set",
                        ));
                    }
                }
            }
            parts.push(Part {
                path: path.clone(),
                file,
                n,
                first,
                shard,
            });
        }
        let (bins, channel_names, bin_ms, dt_ms, seed, neuron_json, config) =
            head.expect("at least one file");
        let neuron: CellSpec = serde_json::from_str(&neuron_json).map_err(|e| {
            SurgeError::data(
                &paths[0],
                format!("neuron_model is not a Surge neuron ({e})"),
                "regenerate the file with `surge gen`",
            )
        })?;
        // Files of one seed and config are shards of one set: their trace ranges must not overlap.
        parts.sort_by_key(|p| p.first);
        for w in parts.windows(2) {
            let same_set = read_attr::<u64>(&w[0].path, &w[0].file, "seed")?
                == read_attr::<u64>(&w[1].path, &w[1].file, "seed")?;
            if same_set && w[1].first < w[0].first + w[0].n as u64 {
                return Err(SurgeError::data(
                    &w[1].path,
                    format!(
                        "holds traces from {} that {} holds too",
                        w[1].first,
                        w[0].path.display()
                    ),
                    "pass each shard once (shards of one set are disjoint)",
                ));
            }
        }
        let reader = DatasetReader {
            parts,
            bins,
            channel_names,
            bin_ms,
            dt_ms,
            seed,
            neuron_json,
            neuron,
            config,
        };
        Ok(reader)
    }

    /// Scans inputs and voltages for NaN or infinity, a chunk of traces at a time.
    fn check_values(&self) -> Result<()> {
        for part in &self.parts {
            for a in (0..part.n).step_by(256) {
                let b = (a + 256).min(part.n);
                let Block {
                    inputs: inp,
                    voltage: v,
                    ..
                } = part.block(a, b)?;
                if let Some(i) = inp
                    .outer_iter()
                    .position(|t| t.iter().any(|x| !x.is_finite()))
                {
                    return Err(SurgeError::data(
                        &part.path,
                        format!("trace {} has non-finite inputs", a + i),
                        "regenerate the set; NaN or infinite inputs cannot train a surrogate",
                    ));
                }
                if let Some(i) = v
                    .outer_iter()
                    .position(|t| t.iter().any(|x| !x.is_finite()))
                {
                    return Err(SurgeError::data(
                        &part.path,
                        format!("trace {} has a non-finite voltage", a + i),
                        "regenerate the set",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn n_traces(&self) -> usize {
        self.parts.iter().map(|p| p.n).sum()
    }

    pub fn n_channels(&self) -> usize {
        self.channel_names.len()
    }

    pub fn paths(&self) -> Vec<&Path> {
        self.parts.iter().map(|p| p.path.as_path()).collect()
    }

    /// Shard descriptions of the files, in trace order.
    pub fn shards(&self) -> Vec<ShardInfo> {
        self.parts.iter().map(|p| p.shard).collect()
    }

    fn locate(&self, mut i: usize) -> (&Part, usize) {
        for p in &self.parts {
            if i < p.n {
                return (p, i);
            }
            i -= p.n;
        }
        panic!("trace {i} out of range");
    }

    /// Reads trace `i` of the set (0-based over all files).
    pub fn read(&self, i: usize) -> Result<TraceData> {
        let (p, j) = self.locate(i);
        let h = |e: hdf5::Error| SurgeError::hdf5(&p.path, e);
        let f = &p.file;
        let inputs: Array3<f32> = f
            .dataset("inputs")
            .map_err(h)?
            .read_slice(s![j..j + 1, .., ..])
            .map_err(h)?;
        let voltage: Array2<f32> = f
            .dataset("voltage")
            .map_err(h)?
            .read_slice(s![j..j + 1, ..])
            .map_err(h)?;
        let spikes: Array2<u8> = f
            .dataset("spikes")
            .map_err(h)?
            .read_slice(s![j..j + 1, ..])
            .map_err(h)?;
        let regime: Array1<u8> = f
            .dataset("regime")
            .map_err(h)?
            .read_slice(s![j..j + 1])
            .map_err(h)?;
        let index: Array1<u64> = f
            .dataset("meta/trace_index")
            .map_err(h)?
            .read_slice(s![j..j + 1])
            .map_err(h)?;
        Ok(TraceData {
            index: index[0],
            regime: Regime::from_code(regime[0]).ok_or_else(|| {
                SurgeError::data(
                    &p.path,
                    format!("trace {j} has regime code {}", regime[0]),
                    "regenerate the file",
                )
            })?,
            inputs: inputs.into_raw_vec_and_offset().0,
            voltage: voltage.into_raw_vec_and_offset().0,
            spikes: spikes.into_raw_vec_and_offset().0,
        })
    }

    /// Reads traces `a..b` of the set with all their metadata.
    pub fn read_full(&self, i: usize) -> Result<Trace> {
        let t = self.read(i)?;
        let (p, j) = self.locate(i);
        let h = |e: hdf5::Error| SurgeError::hdf5(&p.path, e);
        let f = &p.file;
        let row = |name: &str| -> Result<Vec<f32>> {
            let a: Array2<f32> = f
                .dataset(name)
                .map_err(h)?
                .read_slice(s![j..j + 1, ..])
                .map_err(h)?;
            Ok(a.into_raw_vec_and_offset().0)
        };
        let scalar = |name: &str| -> Result<f32> {
            let a: Array1<f32> = f
                .dataset(name)
                .map_err(h)?
                .read_slice(s![j..j + 1])
                .map_err(h)?;
            Ok(a[0])
        };
        let n_active: Array2<u32> = f
            .dataset("meta/n_active")
            .map_err(h)?
            .read_slice(s![j..j + 1, ..])
            .map_err(h)?;
        Ok(Trace {
            index: t.index,
            regime: t.regime,
            inputs: t.inputs,
            voltage: t.voltage,
            spikes: t.spikes,
            rate_hz: scalar("meta/rate_hz")?,
            activation_p: row("meta/activation_p")?,
            n_active: n_active.into_raw_vec_and_offset().0,
            input_rate_hz: row("meta/input_rate_hz")?,
            weight_mean: row("meta/weight_mean")?,
            modulation_hz: scalar("meta/modulation_hz")?,
        })
    }

    /// Summary statistics of the set.
    pub fn info(&self) -> Result<DatasetInfo> {
        let nch = self.n_channels();
        let mut per_regime: Vec<Vec<f64>> = vec![Vec::new(); 3];
        let (mut vmin, mut vmax) = (f64::INFINITY, f64::NEG_INFINITY);
        let mut ch_sum = vec![0.0f64; nch];
        let mut ch_nonzero = vec![0u64; nch];
        let mut ch_max = vec![0.0f64; nch];
        let mut bins_total = 0u64;
        let duration_s = self.bins as f64 * self.bin_ms / 1000.0;
        for part in &self.parts {
            for a in (0..part.n).step_by(256) {
                let b = (a + 256).min(part.n);
                let Block {
                    inputs: inp,
                    voltage: v,
                    spikes: sp,
                    regime: rg,
                } = part.block(a, b)?;
                for (k, &r) in rg.iter().enumerate() {
                    let count: f64 = sp.row(k).iter().map(|&x| x as f64).sum();
                    per_regime[(r as usize).min(2)].push(count / duration_s);
                }
                if inp.iter().chain(v.iter()).any(|x| !x.is_finite()) {
                    return Err(SurgeError::data(
                        &part.path,
                        format!("traces {a}..{b} hold NaN or infinite values"),
                        "regenerate the set",
                    ));
                }
                for &x in v.iter() {
                    vmin = vmin.min(x as f64);
                    vmax = vmax.max(x as f64);
                }
                for row in inp.outer_iter() {
                    for bin in row.outer_iter() {
                        for (c, &x) in bin.iter().enumerate() {
                            ch_sum[c] += x as f64;
                            ch_max[c] = ch_max[c].max(x.abs() as f64);
                            ch_nonzero[c] += (x != 0.0) as u64;
                        }
                        bins_total += 1;
                    }
                }
            }
        }
        let regimes = Regime::ALL
            .iter()
            .zip(per_regime)
            .map(|(r, mut rates)| {
                rates.sort_by(f64::total_cmp);
                let q = |f: f64| {
                    if rates.is_empty() {
                        0.0
                    } else {
                        rates[((rates.len() - 1) as f64 * f).round() as usize]
                    }
                };
                RegimeStats {
                    regime: r.name().to_string(),
                    traces: rates.len(),
                    mean_rate_hz: if rates.is_empty() {
                        0.0
                    } else {
                        rates.iter().sum::<f64>() / rates.len() as f64
                    },
                    p10_rate_hz: q(0.1),
                    median_rate_hz: q(0.5),
                    p90_rate_hz: q(0.9),
                    silent_fraction: if rates.is_empty() {
                        0.0
                    } else {
                        rates.iter().filter(|&&x| x == 0.0).count() as f64 / rates.len() as f64
                    },
                }
            })
            .collect();
        Ok(DatasetInfo {
            files: self
                .paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            traces: self.n_traces(),
            bins: self.bins,
            bin_ms: self.bin_ms,
            seed: self.seed,
            neuron: self.neuron_json.clone(),
            regimes,
            voltage_min_mv: vmin,
            voltage_max_mv: vmax,
            channels: self
                .channel_names
                .iter()
                .enumerate()
                .map(|(c, name)| ChannelStats {
                    name: name.clone(),
                    mean_per_bin: ch_sum[c] / bins_total.max(1) as f64,
                    max_per_bin: ch_max[c],
                    nonzero_fraction: ch_nonzero[c] as f64 / bins_total.max(1) as f64,
                })
                .collect(),
        })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RegimeStats {
    pub regime: String,
    pub traces: usize,
    pub mean_rate_hz: f64,
    pub p10_rate_hz: f64,
    pub median_rate_hz: f64,
    pub p90_rate_hz: f64,
    pub silent_fraction: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelStats {
    pub name: String,
    pub mean_per_bin: f64,
    pub max_per_bin: f64,
    pub nonzero_fraction: f64,
}

/// What `surge data info` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatasetInfo {
    pub files: Vec<String>,
    pub traces: usize,
    pub bins: usize,
    pub bin_ms: f64,
    pub seed: u64,
    pub neuron: String,
    pub regimes: Vec<RegimeStats>,
    pub voltage_min_mv: f64,
    pub voltage_max_mv: f64,
    pub channels: Vec<ChannelStats>,
}

/// Merges shards of one set into `out` (in trace order). The inputs must share seed and config and
/// hold disjoint traces that together form a contiguous range.
pub fn merge(inputs: &[PathBuf], out: &Path) -> Result<PathBuf> {
    let reader = DatasetReader::open(inputs)?;
    let shards = reader.shards();
    for (p, s) in reader.paths().iter().zip(&shards) {
        let file = hdf5::File::open(p).map_err(|e| SurgeError::hdf5(*p, e))?;
        let config = read_str_attr(p, &file, "config")?;
        if config != reader.config
            || read_attr::<u64>(p, &file, "seed")? != reader.seed
            || s.total != shards[0].total
        {
            return Err(SurgeError::data(
                *p,
                "is not a shard of the same set (its config, seed or size differ)",
                "merge only shards generated from one config and seed",
            ));
        }
    }
    for w in shards.windows(2) {
        if w[1].first != w[0].end {
            return Err(SurgeError::data(
                out,
                format!("the shards leave traces {}..{} out", w[0].end, w[1].first),
                "pass every shard between the first and the last",
            ));
        }
    }
    let cfg = DatasetConfig::from_toml_str(&reader.config, "stored config")?;
    let (first, end, total) = (
        shards[0].first,
        shards[shards.len() - 1].end,
        shards[0].total,
    );
    let complete = first == 0 && end == total;
    let info = ShardInfo {
        index: 0,
        count: if complete { 1 } else { 0 },
        first,
        end,
        total,
    };
    let mut w = DatasetWriter::create(out, &cfg, &reader.config, info)?;
    let n = reader.n_traces();
    let chunk = cfg.dataset.chunk_traces;
    for a in (0..n).step_by(chunk) {
        let traces: Vec<Trace> = (a..(a + chunk).min(n))
            .map(|i| reader.read_full(i))
            .collect::<Result<_>>()?;
        w.append(&traces)?;
    }
    w.finish()
}
