//! The exact simulator: neuron models ([`models`]) stepped on a time grid by the kernel
//! ([`network`]: spike delivery with delays, drives, recording), and the LIF transfer function
//! ([`siegert`]). Never depends on burn.

pub mod cable;
pub mod channels;
pub mod compartmental;
pub mod hnn_cells;
pub mod models;
pub mod network;
pub mod siegert;

pub use network::{
    ExternalInput, NamedSignal, RecordedCell, Sampling, SimResult, StepHook, simulate,
    simulate_with_hook, simulate_with_input,
};
