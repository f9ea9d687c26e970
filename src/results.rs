//! Files a run leaves behind. Everything is written as `<name>.partial` (or `<stem>.partial.<ext>` where
//! a writer infers the format from the extension), synced, then renamed: a killed run never leaves a
//! file that looks complete.

use crate::error::{Result, SurgeError};
use crate::exact::SimResult;
use crate::spec::{Connectome, NetworkSpec};
use hdf5::types::VarLenUnicode;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Schema name and version of `results.h5`.
pub const RESULTS_SCHEMA: &str = "surge.results";
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// The temporary path a file is written to before it is renamed to `path`.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.partial.{ext}"),
        _ => format!("{name}.partial"),
    };
    path.with_file_name(partial)
}

/// Flushes `partial` to disk and renames it to `path`.
pub fn commit(partial: &Path, path: &Path) -> Result<()> {
    let f =
        std::fs::File::open(partial).map_err(|e| SurgeError::io("cannot reopen", partial, e))?;
    f.sync_all()
        .map_err(|e| SurgeError::io("cannot sync", partial, e))?;
    std::fs::rename(partial, path).map_err(|e| SurgeError::io("cannot rename into place", path, e))
}

/// Writes `bytes` to `path` atomically.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = partial_path(path);
    let mut f = std::fs::File::create(&partial)
        .map_err(|e| SurgeError::io("cannot create", &partial, e))?;
    f.write_all(bytes)
        .map_err(|e| SurgeError::io("cannot write", &partial, e))?;
    drop(f);
    commit(&partial, path)
}

fn vlu(s: &str) -> VarLenUnicode {
    s.parse()
        .expect("VarLenUnicode accepts any UTF-8 without NUL")
}

fn h5<T>(path: &Path, r: hdf5::Result<T>) -> Result<T> {
    r.map_err(|e| SurgeError::hdf5(path, e))
}

/// Writes `results.h5` for an exact run: spikes, recorded traces, population signals, the populations
/// and, as root attributes, the schema, the seed and the complete experiment text.
pub fn write_results_h5(
    path: &Path,
    spec: &NetworkSpec,
    config_text: &str,
    conn: &Connectome,
    res: &SimResult,
) -> Result<()> {
    let partial = partial_path(path);
    let _ = std::fs::remove_file(&partial);
    {
        let p = partial.as_path();
        let file = h5(p, hdf5::File::create(p))?;
        let attr_str = |name: &str, value: &str| -> Result<()> {
            h5(
                p,
                file.new_attr::<VarLenUnicode>()
                    .create(name)
                    .and_then(|a| a.write_scalar(&vlu(value))),
            )
        };
        attr_str("schema", RESULTS_SCHEMA)?;
        attr_str("surge_version", env!("CARGO_PKG_VERSION"))?;
        attr_str("config", config_text)?;
        attr_str("name", &spec.name)?;
        h5(
            p,
            file.new_attr::<u32>()
                .create("schema_version")
                .and_then(|a| a.write_scalar(&RESULTS_SCHEMA_VERSION)),
        )?;
        h5(
            p,
            file.new_attr::<u64>()
                .create("seed")
                .and_then(|a| a.write_scalar(&spec.seed())),
        )?;
        h5(
            p,
            file.new_attr::<f64>()
                .create("dt_ms")
                .and_then(|a| a.write_scalar(&res.dt_ms)),
        )?;
        h5(
            p,
            file.new_attr::<u64>()
                .create("steps")
                .and_then(|a| a.write_scalar(&(res.steps as u64))),
        )?;

        let pops = h5(p, file.create_group("populations"))?;
        let names: Vec<VarLenUnicode> = spec.populations.iter().map(|x| vlu(&x.name)).collect();
        h5(
            p,
            pops.new_dataset_builder()
                .with_data(names.as_slice())
                .create("names"),
        )?;
        let offsets: Vec<u64> = conn.pop_offsets.iter().map(|&o| o as u64).collect();
        h5(
            p,
            pops.new_dataset_builder()
                .with_data(offsets.as_slice())
                .create("offsets"),
        )?;

        let time: Vec<f64> = (1..=res.steps).map(|n| n as f64 * res.dt_ms).collect();
        h5(
            p,
            file.new_dataset_builder()
                .with_data(time.as_slice())
                .create("time_ms"),
        )?;

        let spikes = h5(p, file.create_group("spikes"))?;
        let chunk = res.spike_times_ms.len().clamp(1, 1 << 16);
        h5(
            p,
            spikes
                .new_dataset_builder()
                .chunk(chunk)
                .deflate(4)
                .with_data(res.spike_times_ms.as_slice())
                .create("times_ms"),
        )?;
        h5(
            p,
            spikes
                .new_dataset_builder()
                .chunk(chunk)
                .deflate(4)
                .with_data(res.spike_cells.as_slice())
                .create("cells"),
        )?;
        h5(
            p,
            spikes
                .new_dataset_builder()
                .with_data(res.spike_counts.as_slice())
                .create("counts"),
        )?;

        let volts = h5(p, file.create_group("voltages"))?;
        for pop in &spec.populations {
            let cells: Vec<&crate::exact::RecordedCell> = res
                .recorded
                .iter()
                .filter(|r| r.population == pop.name)
                .collect();
            if cells.is_empty() {
                continue;
            }
            let g = h5(p, volts.create_group(&pop.name))?;
            let idx: Vec<u64> = cells.iter().map(|c| c.index as u64).collect();
            h5(
                p,
                g.new_dataset_builder()
                    .with_data(idx.as_slice())
                    .create("cells"),
            )?;
            let write2 = |name: &str, rows: Vec<&[f32]>| -> Result<()> {
                let flat: Vec<f32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
                let view = ndarray::ArrayView2::from_shape((rows.len(), res.steps), &flat)
                    .expect("rows have one sample per step");
                h5(
                    p,
                    g.new_dataset_builder()
                        .chunk((1, res.steps.clamp(1, 1 << 16)))
                        .deflate(4)
                        .with_data(view)
                        .create(name),
                )?;
                Ok(())
            };
            write2("v_mv", cells.iter().map(|c| c.v.as_slice()).collect())?;
            for (k, ch) in cells[0].channel_names.iter().enumerate() {
                write2(ch, cells.iter().map(|c| c.channels[k].as_slice()).collect())?;
            }
        }

        let sigs = h5(p, file.create_group("signals"))?;
        for s in &res.signals {
            let d = h5(
                p,
                sigs.new_dataset_builder()
                    .with_data(s.values.as_slice())
                    .create(s.name.as_str()),
            )?;
            let kind = serde_json::to_value(s.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            h5(
                p,
                d.new_attr::<VarLenUnicode>()
                    .create("kind")
                    .and_then(|a| a.write_scalar(&vlu(&kind))),
            )?;
        }
        h5(p, file.close())?;
    }
    commit(&partial, path)
}
