//! Surrogate training sets: single neurons of the exact engine driven by Poisson input on random
//! synapse sets in three regimes, recorded per bin, written to HDF5 (schema `surge.dataset` v1,
//! documented in `datasets/README.md`).

pub mod config;
pub mod generate;
pub mod h5;
pub mod input;
pub mod network;

pub use config::{ChannelSource, DatasetConfig, Regime};
pub use generate::{Trace, generate_traces};
pub use h5::{DatasetInfo, DatasetReader, DatasetWriter, merge};
pub use input::bin_spikes;

/// Schema name and version written to and required of every dataset file.
pub const SCHEMA: &str = "surge.dataset";
pub const SCHEMA_VERSION: u32 = 1;

use crate::error::{Result, SurgeError};
use h5::ShardInfo;
use std::path::{Path, PathBuf};

/// Generates shard `shard` (index, count) of the set described by `cfg` into `out`, a batch of one chunk
/// per thread at a time, appending in trace order so the file does not depend on the thread count.
/// `config_text` is stored in the file; `progress(done, total)` counts traces.
pub fn generate_to_file(
    cfg: &DatasetConfig,
    config_text: &str,
    out: &Path,
    shard: (u32, u32),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf> {
    generate_resumable(cfg, config_text, out, shard, false, progress)
}

/// As [`generate_to_file`]; with `resume`, continues the `*.partial.h5` an interrupted run of the same
/// config and shard left behind. The traces depend only on their index, so the result is the same.
pub fn generate_resumable(
    cfg: &DatasetConfig,
    config_text: &str,
    out: &Path,
    shard: (u32, u32),
    resume: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf> {
    let (i, n) = shard;
    if n == 0 || i >= n || n as usize > cfg.dataset.traces {
        return Err(SurgeError::spec(
            "--shard",
            format!("{i}/{n} is not a shard of {} traces", cfg.dataset.traces),
            "use i/n with 0 <= i < n <= traces, e.g. --shard 0/4",
        ));
    }
    let info = ShardInfo::of(i, n, cfg.dataset.traces as u64);
    let mut writer = if resume {
        DatasetWriter::resume(out, cfg, config_text, info)?
    } else {
        DatasetWriter::create(out, cfg, config_text, info)?
    };
    let start = info.first + writer.len() as u64;
    let total = info.end - info.first;
    progress(writer.len() as u64, total);
    let batch = (cfg.dataset.chunk_traces * rayon::current_num_threads()) as u64;
    // Generation (parallel) and compression/writing (this thread) overlap; at most two batches wait.
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Trace>>>(1);
        scope.spawn(move || {
            let mut a = start;
            while a < info.end {
                let b = (a + batch).min(info.end);
                let r = generate_traces(cfg, a..b);
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break;
                }
                a = b;
            }
        });
        for r in rx {
            let traces = r?;
            writer.append(&traces)?;
            progress(writer.len() as u64, total);
        }
        Ok(())
    })?;
    writer.finish()
}
