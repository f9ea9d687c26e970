//! The learned cell model: a causal TCN followed by a fused LSTM and two heads (voltage, spike logit),
//! with a streaming form that advances one bin at a time in O(1) for the network engine.
//! Training, checkpoints and metrics come with the surrogate issue; this holds the model.

pub mod backend;
pub mod eval;
pub(crate) mod flat;
pub mod fused;
pub mod model;
pub mod stream;
pub mod train;

pub use model::{Surrogate, SurrogateArch};
pub use stream::SurrogateState;
