//! Surge: differentiable surrogate models of spiking neural networks.
//!
//! The crate is organised as in `DESIGN.md`: [`spec`] (networks as data), [`exact`] (the exact LIF
//! engine), [`signal`] (analysis), [`plot`] (figures), plus [`results`] (atomic output files) and
//! [`experiment`] (one run end to end, shared by the CLI and the tests).

#[macro_use]
mod simd;

pub mod data;
pub mod error;
pub mod exact;
pub mod experiment;
pub mod memory;
pub mod netopt;
pub mod plot;
pub mod results;
pub mod seed;
pub mod signal;
pub mod spec;
pub mod surrogate;

pub use error::{Result, SurgeError};

/// Experiment files shipped with Surge, embedded so `surge demo` runs from any folder.
pub mod shipped {
    pub const BRUNEL: &str = include_str!("../experiments/brunel.toml");
    pub const EI_SMALL: &str = include_str!("../experiments/ei_small.toml");
    pub const DATASET_LIF: &str = include_str!("../experiments/dataset_lif.toml");
}
