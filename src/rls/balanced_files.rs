//! Files of the balanced-network RLS run: the target file (recorded rates and their LIF drives), the
//! resumable training state, and `trained.h5` (plastic weights and indices, test traces, config, seed).

use super::balanced::{BalancedConfig, BalancedNet, Learner, TRIAL_TYPES, Targets, Trainer, mean};
use crate::error::{Result, SurgeError};
use crate::results::{commit, partial_path};
use hdf5::types::VarLenUnicode;
use std::path::Path;

pub const STATE_SCHEMA: &str = "surge.rls_balanced_state";
pub const TRAINED_SCHEMA: &str = "surge.rls_balanced";

fn h5<T>(path: &Path, r: hdf5::Result<T>) -> Result<T> {
    r.map_err(|e| SurgeError::hdf5(path, e))
}

/// Reads `utarg_<type>` and `rate_hz_<type>` (neurons x bins, same shape) and the `bin_ms` attribute.
pub fn read_targets(path: &Path) -> Result<Targets> {
    let fix = "pass a file laid out like data/alm/alm_pyramidal_rates.h5 (see its README)";
    let file = hdf5::File::open(path)
        .map_err(|e| SurgeError::data(path, format!("cannot be opened as HDF5 ({e})"), fix))?;
    let bin_ms: f64 = file
        .attr("bin_ms")
        .and_then(|a| a.read_scalar())
        .map_err(|_| SurgeError::data(path, "has no root attribute `bin_ms`", fix))?;
    let mut shape0: Option<Vec<usize>> = None;
    let mut read = |name: &str| -> Result<Vec<f64>> {
        let ds = file
            .dataset(name)
            .map_err(|_| SurgeError::data(path, format!("has no dataset `/{name}`"), fix))?;
        let shape = ds.shape();
        if shape.len() != 2 || shape[0] == 0 || shape[1] < 2 {
            return Err(SurgeError::data(
                path,
                format!("/{name} has shape {shape:?}, expected [neurons, bins] with bins >= 2"),
                fix,
            ));
        }
        match &shape0 {
            None => shape0 = Some(shape.clone()),
            Some(s) if *s != shape => {
                return Err(SurgeError::data(
                    path,
                    format!("/{name} has shape {shape:?} but the first target has {s:?}"),
                    fix,
                ));
            }
            _ => {}
        }
        let v: Vec<f64> = ds
            .read_raw()
            .map_err(|e| SurgeError::data(path, format!("cannot read /{name}: {e}"), fix))?;
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            return Err(SurgeError::data(
                path,
                format!(
                    "/{name} holds a non-finite value at neuron {}, bin {}",
                    k / shape[1],
                    k % shape[1]
                ),
                "clean the data (Surge never trains on NaN)",
            ));
        }
        Ok(v)
    };
    let utarg = [
        read(&format!("utarg_{}", TRIAL_TYPES[0]))?,
        read(&format!("utarg_{}", TRIAL_TYPES[1]))?,
    ];
    let rate_hz = [
        read(&format!("rate_hz_{}", TRIAL_TYPES[0]))?,
        read(&format!("rate_hz_{}", TRIAL_TYPES[1]))?,
    ];
    let shape = shape0.expect("read at least once");
    Ok(Targets {
        n: shape[0],
        bins: shape[1],
        bin_ms,
        utarg,
        rate_hz,
    })
}

fn vlu(s: &str) -> VarLenUnicode {
    s.parse().expect("no NUL in text")
}

struct Writer<'a> {
    path: &'a Path,
    file: hdf5::File,
}

impl Writer<'_> {
    fn attr(&self, name: &str, value: &str) -> Result<()> {
        h5(
            self.path,
            self.file
                .new_attr::<VarLenUnicode>()
                .create(name)
                .and_then(|a| a.write_scalar(&vlu(value))),
        )
    }
    fn attr_u64(&self, name: &str, value: u64) -> Result<()> {
        h5(
            self.path,
            self.file
                .new_attr::<u64>()
                .create(name)
                .and_then(|a| a.write_scalar(&value)),
        )
    }
    fn data<T: hdf5::H5Type>(&self, name: &str, v: &[T], shape: &[usize]) -> Result<()> {
        let ds = h5(
            self.path,
            self.file
                .new_dataset::<T>()
                .shape(shape.to_vec())
                .create(name),
        )?;
        h5(self.path, ds.write_raw(v))
    }
}

fn create(path: &Path) -> Result<(std::path::PathBuf, hdf5::File)> {
    let partial = partial_path(path);
    let _ = std::fs::remove_file(&partial);
    let file = h5(&partial, hdf5::File::create(&partial))?;
    Ok((partial, file))
}

/// Everything needed to continue training exactly where it stopped.
pub fn save_state(
    path: &Path,
    net: &BalancedNet,
    learner: &Learner,
    loops_done: usize,
    train_r: &[[f64; 2]],
    config_json: &str,
) -> Result<()> {
    let (partial, file) = create(path)?;
    {
        let w = Writer {
            path: &partial,
            file,
        };
        w.attr("schema", STATE_SCHEMA)?;
        w.attr("config_json", config_json)?;
        w.attr_u64("loops_done", loops_done as u64)?;
        let n_tr = net.trained.len();
        let l = net.cfg.plastic_e + net.cfg.plastic_i;
        let nff = net.cfg.ffwd;
        w.data("w_plastic", &net.w_plastic, &[n_tr, l])?;
        for (tt, name) in TRIAL_TYPES.iter().enumerate() {
            w.data(&format!("w_ffwd_{name}"), &net.w_ffwd[tt], &[n_tr, nff])?;
        }
        let flat: Vec<f64> = train_r.iter().flatten().copied().collect();
        w.data("train_r", &flat, &[train_r.len(), 2])?;
        w.data("s_inv", &learner.shared.s_inv, &[nff, nff])?;
        let m_inv: Vec<f64> = learner
            .blocks
            .iter()
            .flat_map(|b| b.m_inv.iter().copied())
            .collect();
        w.data("m_inv", &m_inv, &[n_tr, l, l])?;
        // G in its storage type: f32 when kept so (exact, and half of what every save writes).
        if net.cfg.g_f32 {
            let g: Vec<f32> = learner
                .blocks
                .iter()
                .flat_map(|b| b.g.to_f64())
                .map(|x| x as f32)
                .collect();
            w.data("g", &g, &[n_tr, l, nff])?;
        } else {
            let g: Vec<f64> = learner.blocks.iter().flat_map(|b| b.g.to_f64()).collect();
            w.data("g", &g, &[n_tr, l, nff])?;
        }
    }
    commit(&partial, path)
}

/// Loads a state written by [`save_state`] into `net` and `learner` (built from the same config);
/// returns the loops done and the training correlations so far.
pub fn load_state(
    path: &Path,
    net: &mut BalancedNet,
    learner: &mut Learner,
    config_json: &str,
) -> Result<(usize, Vec<[f64; 2]>)> {
    let fix = "resume from the folder of an interrupted `surge rls balanced` run with the same experiment file";
    let file = hdf5::File::open(path)
        .map_err(|e| SurgeError::data(path, format!("cannot be opened ({e})"), fix))?;
    let s = |name: &str| -> Result<String> {
        file.attr(name)
            .and_then(|a| a.read_scalar::<VarLenUnicode>())
            .map(|v| v.as_str().to_string())
            .map_err(|_| SurgeError::data(path, format!("has no attribute `{name}`"), fix))
    };
    if s("schema")? != STATE_SCHEMA {
        return Err(SurgeError::data(path, "is not a balanced-RLS state", fix));
    }
    if s("config_json")? != config_json {
        return Err(SurgeError::data(
            path,
            "was written with a different configuration (only `loops` and `checkpoint_every` may change on resume)",
            "use the experiment file of the interrupted run, or start afresh in another folder",
        ));
    }
    let loops_done: u64 = file
        .attr("loops_done")
        .and_then(|a| a.read_scalar())
        .map_err(|_| SurgeError::data(path, "has no `loops_done`", fix))?;
    let read = |name: &str, len: usize| -> Result<Vec<f64>> {
        let v: Vec<f64> = file
            .dataset(name)
            .and_then(|d| d.read_raw())
            .map_err(|e| SurgeError::data(path, format!("cannot read /{name}: {e}"), fix))?;
        if v.len() != len {
            return Err(SurgeError::data(
                path,
                format!("/{name} has {} values, expected {len}", v.len()),
                fix,
            ));
        }
        Ok(v)
    };
    let n_tr = net.trained.len();
    let l = net.cfg.plastic_e + net.cfg.plastic_i;
    let nff = net.cfg.ffwd;
    net.w_plastic = read("w_plastic", n_tr * l)?;
    for (tt, name) in TRIAL_TYPES.iter().enumerate() {
        net.w_ffwd[tt] = read(&format!("w_ffwd_{name}"), n_tr * nff)?;
    }
    let tr = read("train_r", loops_done as usize * 2)?;
    learner.shared.s_inv = read("s_inv", nff * nff)?;
    let m_inv = read("m_inv", n_tr * l * l)?;
    let g = read("g", n_tr * l * nff)?;
    for (t, b) in learner.blocks.iter_mut().enumerate() {
        b.m_inv.copy_from_slice(&m_inv[t * l * l..(t + 1) * l * l]);
        b.g.set(&g[t * l * nff..(t + 1) * l * nff]);
    }
    let train_r = tr.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
    Ok((loops_done as usize, train_r))
}

/// The outcome of a test: binned input and target per trial type, correlations and rates.
pub struct TestTraces {
    pub input: [Vec<f64>; 2],
    pub target: [Vec<f64>; 2],
    pub r: [Vec<f64>; 2],
}

/// Writes `trained.h5`: plastic weights and their presynaptic indices, trained cells and their target
/// rows, feedforward weights, test traces, correlations, and as attributes the config and seed.
pub fn write_trained(
    path: &Path,
    net: &BalancedNet,
    test: &TestTraces,
    config_toml: &str,
    loops_done: usize,
) -> Result<()> {
    let (partial, file) = create(path)?;
    {
        let w = Writer {
            path: &partial,
            file,
        };
        w.attr("schema", TRAINED_SCHEMA)?;
        w.attr("config", config_toml)?;
        w.attr("surge_version", env!("CARGO_PKG_VERSION"))?;
        w.attr_u64("seed", net.cfg.seed)?;
        w.attr_u64("loops_done", loops_done as u64)?;
        let n_tr = net.trained.len();
        let l = net.cfg.plastic_e + net.cfg.plastic_i;
        let nff = net.cfg.ffwd;
        let bins = net.cfg.updates();
        w.data("trained_cells", &net.trained, &[n_tr])?;
        w.data("target_rows", &net.target_row, &[n_tr])?;
        w.data("plastic_pre", &net.plastic_pre, &[n_tr, l])?;
        w.data("w_plastic", &net.w_plastic, &[n_tr, l])?;
        w.data("untrained_rate_hz", &net.untrained_rate_hz, &[net.cfg.n_e])?;
        w.data("target_offset", &net.target_offset, &[n_tr])?;
        for (tt, name) in TRIAL_TYPES.iter().enumerate() {
            w.data(&format!("w_ffwd_{name}"), &net.w_ffwd[tt], &[n_tr, nff])?;
            w.data(
                &format!("test_input_{name}"),
                &test.input[tt],
                &[n_tr, bins],
            )?;
            w.data(&format!("target_{name}"), &test.target[tt], &[n_tr, bins])?;
            w.data(&format!("test_r_{name}"), &test.r[tt], &[n_tr])?;
        }
    }
    commit(&partial, path)
}

/// Reads the plastic weights of a `trained.h5` back into a network built from the same config.
pub fn load_trained_weights(path: &Path, net: &mut BalancedNet) -> Result<String> {
    let fix = "pass the trained.h5 written by `surge rls balanced`";
    let file = hdf5::File::open(path)
        .map_err(|e| SurgeError::data(path, format!("cannot be opened ({e})"), fix))?;
    let schema: String = file
        .attr("schema")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|v| v.as_str().to_string())
        .map_err(|_| SurgeError::data(path, "has no `schema` attribute", fix))?;
    if schema != TRAINED_SCHEMA {
        return Err(SurgeError::data(
            path,
            format!("schema is `{schema}`, not `{TRAINED_SCHEMA}`"),
            fix,
        ));
    }
    let read_u32 = |name: &str| -> Result<Vec<u32>> {
        file.dataset(name)
            .and_then(|d| d.read_raw())
            .map_err(|e| SurgeError::data(path, format!("cannot read /{name}: {e}"), fix))
    };
    let read_f64 = |name: &str| -> Result<Vec<f64>> {
        file.dataset(name)
            .and_then(|d| d.read_raw())
            .map_err(|e| SurgeError::data(path, format!("cannot read /{name}: {e}"), fix))
    };
    if read_u32("trained_cells")? != net.trained || read_u32("plastic_pre")? != net.plastic_pre {
        return Err(SurgeError::data(
            path,
            "its trained cells or plastic wiring differ from the network this config builds",
            "use the experiment file stored in the file's `config` attribute",
        ));
    }
    net.w_plastic = read_f64("w_plastic")?;
    for (tt, name) in TRIAL_TYPES.iter().enumerate() {
        let w = read_f64(&format!("w_ffwd_{name}"))?;
        if w.len() != net.w_ffwd[tt].len() {
            return Err(SurgeError::data(
                path,
                format!("/w_ffwd_{name} has the wrong size"),
                fix,
            ));
        }
        net.w_ffwd[tt] = w;
    }
    file.attr("config")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map(|v| v.as_str().to_string())
        .map_err(|_| SurgeError::data(path, "has no `config` attribute", fix))
}

/// How recorded rates become LIF drives: `u = f^-1(max(rate, min_rate_hz))`, `f` the Siegert rate of an
/// LIF neuron (threshold 1, reset 0) under white noise of std `sigma`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DriveFromRate {
    pub sigma: f64,
    pub tau_m_ms: f64,
    pub t_ref_ms: f64,
    pub min_rate_hz: f64,
}

impl Default for DriveFromRate {
    /// The values behind `data/alm/alm_pyramidal_rates.h5`: tau_m 10 ms, no refractory period,
    /// sigma about 0.31, rates floored at 0.1 Hz.
    fn default() -> Self {
        DriveFromRate {
            sigma: 0.31,
            tau_m_ms: 10.0,
            t_ref_ms: 0.0,
            min_rate_hz: 0.1,
        }
    }
}

/// Writes a complete target file from one holding only `rate_hz_<type>` (neurons x bins) and a `bin_ms`
/// attribute: the rates are copied and `utarg_<type>` computed with the Siegert inverse. Written as
/// `*.partial.h5`, renamed when complete. Returns the number of neurons and bins.
pub fn targets_from_rates(rates: &Path, out: &Path, how: &DriveFromRate) -> Result<(usize, usize)> {
    let fix = "give an HDF5 file with rate_hz_lickright and rate_hz_lickleft (neurons x bins, Hz) and a root attribute bin_ms";
    if !(how.sigma > 0.0 && how.tau_m_ms > 0.0 && how.t_ref_ms >= 0.0 && how.min_rate_hz > 0.0) {
        return Err(SurgeError::spec(
            "--sigma/--tau-m-ms/--t-ref-ms/--min-rate-hz",
            format!("{how:?}"),
            "use sigma > 0, tau_m_ms > 0, t_ref_ms >= 0, min_rate_hz > 0",
        ));
    }
    let file = hdf5::File::open(rates)
        .map_err(|e| SurgeError::data(rates, format!("cannot be opened as HDF5 ({e})"), fix))?;
    let bin_ms: f64 = file
        .attr("bin_ms")
        .and_then(|a| a.read_scalar())
        .map_err(|_| SurgeError::data(rates, "has no root attribute `bin_ms`", fix))?;
    let mut shape0: Option<Vec<usize>> = None;
    let mut sets = Vec::new();
    for t in TRIAL_TYPES {
        let name = format!("rate_hz_{t}");
        let ds = file
            .dataset(&name)
            .map_err(|_| SurgeError::data(rates, format!("has no dataset `/{name}`"), fix))?;
        let shape = ds.shape();
        if shape.len() != 2
            || shape[0] == 0
            || shape[1] < 2
            || shape0.as_ref().is_some_and(|s| *s != shape)
        {
            return Err(SurgeError::data(
                rates,
                format!("/{name} has shape {shape:?}"),
                "both trial types need the same [neurons, bins] shape with bins >= 2",
            ));
        }
        shape0 = Some(shape.clone());
        let v: Vec<f64> = ds
            .read_raw()
            .map_err(|e| SurgeError::data(rates, format!("cannot read /{name}: {e}"), fix))?;
        if let Some(k) = v.iter().position(|x| !x.is_finite() || *x < 0.0) {
            return Err(SurgeError::data(
                rates,
                format!(
                    "/{name} holds {} at neuron {}, bin {}",
                    v[k],
                    k / shape[1],
                    k % shape[1]
                ),
                "rates must be finite and non-negative",
            ));
        }
        sets.push((t, v));
    }
    let shape = shape0.expect("two trial types");
    // All drives first, so a bad rate fails before any file exists.
    let clipped = |r: f64| r.max(how.min_rate_hz);
    let all = sets
        .iter()
        .flat_map(|(_, v)| v.iter().copied().map(clipped));
    let (r_min, r_max) = all.fold((f64::INFINITY, 0.0f64), |(a, b), r| (a.min(r), b.max(r)));
    let table = crate::exact::siegert::InverseTable::new(
        r_min,
        r_max,
        how.sigma,
        how.tau_m_ms,
        how.t_ref_ms,
        1.0,
        0.0,
        0.0,
        1e-9,
    )
    .ok_or_else(|| {
        SurgeError::data(
            rates,
            format!("rates up to {r_max} Hz cannot be inverted (at or above the refractory limit)"),
            "lower --t-ref-ms or clip the rates",
        )
    })?;
    let drives: Vec<Vec<f64>> = sets
        .iter()
        .map(|(_, v)| {
            v.iter()
                .map(|&r| table.mu(clipped(r)).expect("inside the table's range"))
                .collect()
        })
        .collect();
    let partial = partial_path(out);
    let p = partial.as_path();
    let write = || -> Result<()> {
        let f = h5(p, hdf5::File::create(p))?;
        h5(
            p,
            f.new_attr::<f64>()
                .create("bin_ms")
                .and_then(|a| a.write_scalar(&bin_ms)),
        )?;
        let desc: VarLenUnicode = format!(
            "utarg = Siegert inverse of max(rate, {} Hz) for an LIF neuron (threshold 1, reset 0, tau_m {} ms, t_ref {} ms) under white noise of std {}; rates from {}",
            how.min_rate_hz,
            how.tau_m_ms,
            how.t_ref_ms,
            how.sigma,
            rates.display()
        )
        .parse()
        .expect("no NUL");
        h5(
            p,
            f.new_attr::<VarLenUnicode>()
                .create("description")
                .and_then(|a| a.write_scalar(&desc)),
        )?;
        for ((t, v), u) in sets.iter().zip(&drives) {
            for (name, data) in [(format!("rate_hz_{t}"), v), (format!("utarg_{t}"), u)] {
                h5(
                    p,
                    f.new_dataset::<f64>()
                        .shape([shape[0], shape[1]])
                        .create(name.as_str())
                        .and_then(|d| d.write_raw(data)),
                )?;
            }
        }
        h5(p, f.close())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(p);
        return Err(e);
    }
    commit(p, out)?;
    Ok((shape[0], shape[1]))
}

/// A Part 3 experiment file (or the published defaults), with `loops` overridden and the target path
/// resolved against the working directory first, then the file's folder; validated.
pub fn load_config(path: Option<&Path>, loops: Option<usize>) -> Result<(BalancedConfig, String)> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| SurgeError::io("cannot read", p, e))?,
            p.display().to_string(),
        ),
        None => (String::new(), "defaults".to_string()),
    };
    let mut cfg: BalancedConfig = toml::from_str(&text).map_err(|e| SurgeError::Toml {
        path: origin,
        message: e.to_string(),
    })?;
    if let Some(l) = loops {
        cfg.loops = l;
    }
    let t = Path::new(&cfg.targets);
    if t.is_relative()
        && !t.exists()
        && let Some(dir) = path.and_then(|p| p.parent())
        && dir.join(t).exists()
    {
        cfg.targets = dir.join(t).display().to_string();
    }
    cfg.validate()?;
    Ok((cfg, text))
}

/// What must match between an interrupted run and its resumption: everything but the loop count.
pub fn identity_json(cfg: &BalancedConfig) -> String {
    let mut c = cfg.clone();
    c.loops = 0;
    c.checkpoint_every = 0;
    serde_json::to_string(&c).expect("config serialises")
}

/// A trained network re-run on its test trials.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Rerun {
    pub weights: String,
    pub test_mean_r: f64,
    pub test_mean_r_per_type: std::collections::BTreeMap<String, f64>,
    pub test_mean_r_100ms_average: f64,
    pub rates_hz: std::collections::BTreeMap<String, f64>,
}

/// Rebuilds the network of a `trained.h5` from the config stored in it, loads its plastic weights and
/// runs the test trials; `on` hears which phase runs.
pub fn rerun(weights: &Path, on: &mut dyn FnMut(&str)) -> Result<Rerun> {
    let text: String = {
        let file = hdf5::File::open(weights).map_err(|e| SurgeError::hdf5(weights, e))?;
        file.attr("config")
            .and_then(|a| a.read_scalar::<VarLenUnicode>())
            .map(|v| v.as_str().to_string())
            .map_err(|_| {
                SurgeError::data(
                    weights,
                    "no `config` attribute",
                    "pass the trained.h5 of `surge rls balanced`",
                )
            })?
    };
    let mut cfg: BalancedConfig = toml::from_str(&text).map_err(|e| {
        SurgeError::data(
            weights,
            format!("the stored config does not parse: {e}"),
            "pass the trained.h5 of `surge rls balanced`",
        )
    })?;
    // The stored target path may be relative to where the run started; try the file's folder too.
    if !Path::new(&cfg.targets).exists()
        && let Some(d) = weights.parent()
        && d.join(&cfg.targets).exists()
    {
        cfg.targets = d.join(&cfg.targets).display().to_string();
    }
    let targets = read_targets(Path::new(&cfg.targets))?;
    let mut tr = Trainer::new(&cfg, targets, on)?;
    on("load weights");
    load_trained_weights(weights, &mut tr.net)?;
    on("test trials");
    let test = tr.test()?;
    let (ne, n) = (cfg.n_e, cfg.n_e + cfg.n_i);
    let r = [0, 1].map(|tt| mean(&tr.net.correlations(&test[tt], &tr.targets, tt)));
    let rs = [0, 1].map(|tt| mean(&tr.net.correlations_smoothed(&test[tt], &tr.targets, tt, 2)));
    let rate = |c: std::ops::Range<usize>| {
        0.5 * (test[0].rate_hz(c.clone(), cfg.update_every_ms)
            + test[1].rate_hz(c, cfg.update_every_ms))
    };
    Ok(Rerun {
        weights: weights.display().to_string(),
        test_mean_r: 0.5 * (r[0] + r[1]),
        test_mean_r_per_type: [
            (TRIAL_TYPES[0].to_string(), r[0]),
            (TRIAL_TYPES[1].to_string(), r[1]),
        ]
        .into(),
        test_mean_r_100ms_average: 0.5 * (rs[0] + rs[1]),
        rates_hz: [
            ("E".to_string(), rate(0..ne)),
            ("I".to_string(), rate(ne..n)),
        ]
        .into(),
    })
}
