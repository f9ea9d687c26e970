//! The exact simulator: LIF neuron models integrated exactly on a time grid, event-driven spike
//! delivery with delays, and the LIF transfer function. Never depends on burn.

pub mod lif;
pub mod network;
pub mod rls;
pub mod siegert;

pub use network::{
    ExternalInput, NamedSignal, RecordedCell, Sampling, SimResult, StepHook, simulate,
    simulate_with_hook, simulate_with_input,
};
pub mod balanced;
pub mod balanced_files;
pub mod band_rls;
pub mod structured;
