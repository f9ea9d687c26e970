//! Connectivity optimisation through surrogate neurons: the surrogate network engine (same spec and
//! connectome as the exact engine, differentiable spikes), objectives on the population signal, and the
//! gradient-descent loop over connection gains (and synapses); CMA-ES on the exact engine as the gradient-free baseline.

pub mod descent;
pub mod engine;
mod fused;
pub mod gradcheck;
pub mod job;
pub mod landscape;
pub use fused::FusedStream;
pub mod objective;

pub use engine::{CellType, Engine, Gains, Run, SpikeMode, SurrogateNetwork};
pub use objective::{ObjectiveConfig, Spectrum};
pub mod optimize;
pub mod search;
pub mod synapses;
