//! The learned cell model: a causal TCN followed by a fused LSTM and two heads (voltage, spike logit);
//! its streaming form (one bin at a time, for the network engine), its CPU kernels, training,
//! checkpoints, evaluation and calibration.

pub mod backend;
pub mod cpu;
pub mod eval;
pub mod model;
pub mod stream;
pub mod train;

pub use model::{Surrogate, SurrogateArch};
pub use stream::SurrogateState;
