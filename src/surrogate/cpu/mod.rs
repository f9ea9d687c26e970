//! The surrogate on the CPU outside burn: its weights as flat buffers ([`weights`]), every kernel
//! forward and backward once ([`kernels`]), and the fused training step ([`train_step`]). The
//! fused network engine (`crate::netopt`) steps cells with the same kernels.

pub mod kernels;
pub mod train_step;
pub(crate) mod weights;
