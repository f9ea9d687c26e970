//! Surge: differentiable surrogate models of spiking neural networks.
//!
//! [`spec`]: networks as data. [`exact`]: the exact engine and its neuron models. [`rls`]: FORCE/RLS
//! on exact networks (Kim & Chow). [`data`]: surrogate training sets. [`surrogate`]: the learned cell
//! model, its training and CPU kernels. [`netopt`]: the surrogate network engine and the optimisation
//! of connectivity. [`signal`], [`plot`], [`results`], [`experiment`], [`memory`]: analysis,
//! figures, output files, one exact run end to end, memory checks. `docs/architecture.md` has the map.

#[macro_use]
mod simd;

pub mod bptt;
pub mod compare;
pub mod data;
pub mod error;
pub mod exact;
pub mod experiment;
pub mod memory;
pub mod netopt;
pub mod plot;
pub mod results;
pub mod rls;
pub mod seed;
pub mod signal;
pub mod sonata;
pub mod spec;
pub mod surrogate;

pub use error::{Result, SurgeError};

/// Experiment files shipped with Surge, embedded so `surge demo` runs from any folder.
pub mod shipped {
    pub const BRUNEL: &str = include_str!("../experiments/brunel.toml");
    pub const EI_SMALL: &str = include_str!("../experiments/ei_small.toml");
    pub const DATASET_LIF: &str = include_str!("../experiments/dataset_lif.toml");
    pub const HNN_COLUMN: &str = include_str!("../experiments/hnn_column.toml");
}
