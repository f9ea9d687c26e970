//! Explicit synapses in an HDF5 file, for connections whose synapses come from elsewhere (an imported
//! SONATA circuit) rather than from a rule. One group per connection, `/edges/<name>`, holding
//! `source` and `target` (cell indices within the pre and post populations), `weight` (the
//! connection's units) and `delay_ms`, one entry per synapse.

use crate::error::{Result, SurgeError};
use hdf5::types::VarLenUnicode;
use std::path::Path;

/// Schema name and version written as root attributes.
pub const CONNECTOME_SCHEMA: &str = "surge.connectome";
pub const CONNECTOME_SCHEMA_VERSION: u32 = 1;

/// The synapses of one connection, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileEdges {
    pub source: Vec<u32>,
    pub target: Vec<u32>,
    pub weight: Vec<f64>,
    pub delay_ms: Vec<f64>,
}

impl FileEdges {
    pub fn len(&self) -> usize {
        self.source.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
    }

    pub fn push(&mut self, source: u32, target: u32, weight: f64, delay_ms: f64) {
        self.source.push(source);
        self.target.push(target);
        self.weight.push(weight);
        self.delay_ms.push(delay_ms);
    }
}

fn bad(path: &Path, problem: String) -> SurgeError {
    SurgeError::data(
        path,
        problem,
        "write the file with `surge import sonata`, or give each connection's group /edges/<name> \
         with source, target, weight and delay_ms of equal length",
    )
}

/// FNV-1a (64 bit, hex) of the named groups in order: each name, then every synapse's source,
/// target, weight and delay as little-endian bytes. Pins the synapses an experiment was written for.
pub fn checksum<'a>(groups: impl IntoIterator<Item = (&'a str, &'a FileEdges)>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, e) in groups {
        eat(name.as_bytes());
        eat(&[0]);
        for k in 0..e.len() {
            eat(&e.source[k].to_le_bytes());
            eat(&e.target[k].to_le_bytes());
            eat(&e.weight[k].to_le_bytes());
            eat(&e.delay_ms[k].to_le_bytes());
        }
    }
    format!("{h:016x}")
}

/// Reads `/edges/<name>` of `file`.
pub fn read(file: &hdf5::File, path: &Path, name: &str) -> Result<FileEdges> {
    let g = file
        .group(&format!("edges/{name}"))
        .map_err(|_| bad(path, format!("no group `/edges/{name}`")))?;
    let read_u32 = |d: &str| -> Result<Vec<u32>> {
        g.dataset(d)
            .and_then(|ds| ds.read_raw::<u32>())
            .map_err(|e| bad(path, format!("`/edges/{name}/{d}`: {e}")))
    };
    let read_f64 = |d: &str| -> Result<Vec<f64>> {
        g.dataset(d)
            .and_then(|ds| ds.read_raw::<f64>())
            .map_err(|e| bad(path, format!("`/edges/{name}/{d}`: {e}")))
    };
    let e = FileEdges {
        source: read_u32("source")?,
        target: read_u32("target")?,
        weight: read_f64("weight")?,
        delay_ms: read_f64("delay_ms")?,
    };
    let n = e.source.len();
    if e.target.len() != n || e.weight.len() != n || e.delay_ms.len() != n {
        return Err(bad(
            path,
            format!(
                "`/edges/{name}`: source, target, weight and delay_ms have {n}, {}, {} and {} entries",
                e.target.len(),
                e.weight.len(),
                e.delay_ms.len()
            ),
        ));
    }
    Ok(e)
}

/// Writes `groups` to `path` atomically, with the schema and `source` (what the synapses came from)
/// as root attributes.
pub fn write(path: &Path, groups: &[(String, FileEdges)], source: &str) -> Result<()> {
    let partial = crate::results::partial_path(path);
    fn h5<T>(path: &Path, r: hdf5::Result<T>) -> Result<T> {
        r.map_err(|e| SurgeError::hdf5(path, e))
    }
    {
        let f = h5(&partial, hdf5::File::create(&partial))?;
        let attr = |name: &str, v: &str| -> Result<()> {
            let v: VarLenUnicode = v.parse().expect("no NUL in attributes");
            f.new_attr::<VarLenUnicode>()
                .create(name)
                .and_then(|a| a.write_scalar(&v))
                .map_err(|e| SurgeError::hdf5(&partial, e))
        };
        attr("schema", CONNECTOME_SCHEMA)?;
        attr("source", source)?;
        f.new_attr::<u32>()
            .create("schema_version")
            .and_then(|a| a.write_scalar(&CONNECTOME_SCHEMA_VERSION))
            .map_err(|e| SurgeError::hdf5(&partial, e))?;
        let root = h5(&partial, f.create_group("edges"))?;
        for (name, e) in groups {
            let g = h5(&partial, root.create_group(name))?;
            h5(
                &partial,
                g.new_dataset_builder()
                    .with_data(&e.source)
                    .create("source"),
            )?;
            h5(
                &partial,
                g.new_dataset_builder()
                    .with_data(&e.target)
                    .create("target"),
            )?;
            h5(
                &partial,
                g.new_dataset_builder()
                    .with_data(&e.weight)
                    .create("weight"),
            )?;
            h5(
                &partial,
                g.new_dataset_builder()
                    .with_data(&e.delay_ms)
                    .create("delay_ms"),
            )?;
        }
    }
    crate::results::commit(&partial, path)
}
