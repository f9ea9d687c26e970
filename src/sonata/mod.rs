//! SONATA, the field's exchange format for networks (nodes and edges in HDF5, their types in CSV,
//! model parameters in JSON), both ways: [`export`] writes the instance Surge would simulate for
//! NEST; [`import`] turns a circuit of NEST point neurons into an experiment and its connectome.

mod export;
mod import;

pub use export::{Export, export};
pub use import::{Import, import};

use crate::error::{Result, SurgeError};
use std::path::Path;

/// The membrane capacitance (pF) of the current-based mapping: Surge's current-based LIF is in mV,
/// NEST's in pA, and any capacitance gives the same voltages once weights are scaled by it.
const C_M_PF: f64 = 250.0;

fn h5<T>(path: &Path, r: hdf5::Result<T>) -> Result<T> {
    r.map_err(|e| SurgeError::hdf5(path, e))
}
