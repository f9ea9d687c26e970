//! Back-propagation through time in the exact LIF network, the baseline that snnTorch and Norse
//! users know: the forward pass is the exact engine's own step (models, delays, drives, noise),
//! and the backward pass is written out by hand on plain `f64` buffers, with a surrogate
//! derivative standing in for the threshold's. Gradients are taken with respect to every
//! synapse's weight; group log-gains and per-synapse log-weights follow from them.
//!
//! [`net`]: the forward pass with checkpoints and the chunked backward pass; [`cells`]: each
//! neuron model's step backward; [`objective`]: the optimiser's loss on a run and its gradient.

pub mod cells;
pub mod net;
pub mod objective;

use serde::{Deserialize, Serialize};

/// The shape of the surrogate spike derivative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeShape {
    /// `1 / (2 w (1 + |x| / w)^2)` (Zenke & Ganguli's SuperSpike; snnTorch's default).
    FastSigmoid,
    /// The logistic's derivative at `x / w`, over `w`.
    Sigmoid,
}

/// How spikes are treated: a hard threshold as the exact engine has, with the surrogate in the
/// backward pass only, or soft spikes `s = S(V - V_th)` in the forward pass as well (every cell sends
/// `s` times its weights each step, the reset is `V + s (V_reset - V)`, no refractory period):
/// a smooth network whose gradient the surrogate computes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpikeMode {
    Hard,
    Soft,
}

/// The surrogate spike: the step `H(x)` at `x = V - V_th` replaced, for gradients, by the
/// derivative of a smooth step of width `width_mv`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surrogate {
    pub shape: SpikeShape,
    pub width_mv: f64,
}

impl Surrogate {
    /// The smooth step (0 to 1) whose derivative is [`Surrogate::slope`].
    pub fn soft(&self, x: f64) -> f64 {
        let u = x / self.width_mv;
        match self.shape {
            SpikeShape::FastSigmoid => 0.5 + 0.5 * u / (1.0 + u.abs()),
            SpikeShape::Sigmoid => 1.0 / (1.0 + (-u).exp()),
        }
    }

    /// The surrogate derivative at `x` (mV^-1); it integrates to 1 over `x`.
    pub fn slope(&self, x: f64) -> f64 {
        let u = x / self.width_mv;
        match self.shape {
            SpikeShape::FastSigmoid => 0.5 / (self.width_mv * (1.0 + u.abs()).powi(2)),
            SpikeShape::Sigmoid => {
                let s = 1.0 / (1.0 + (-u).exp());
                s * (1.0 - s) / self.width_mv
            }
        }
    }
}

/// What a differentiable exact run needs besides the network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BpttConfig {
    pub surrogate: Surrogate,
    pub mode: SpikeMode,
    /// Whether the gradient passes through the reset (`V_reset - V` times the surrogate); off, a
    /// spiking cell's voltage after the step does not depend on its voltage before (snnTorch's
    /// `reset_mechanism` with a detached reset).
    pub reset_gradient: bool,
    /// Factor on the surrogate derivative (Bellec et al. 2018's dampening): in a recurrent network
    /// every spike path multiplies the adjoint by about (in-degree x PSP x derivative), so without
    /// damping the back-propagated gradient grows exponentially with the window.
    pub damping: f64,
    /// Steps per back-propagated chunk: each chunk is re-run from its saved state, so memory holds
    /// one chunk's record (0: the whole run as one chunk). The gradient does not depend on it.
    pub chunk_steps: usize,
}

impl Default for BpttConfig {
    fn default() -> Self {
        BpttConfig {
            surrogate: Surrogate {
                shape: SpikeShape::FastSigmoid,
                width_mv: 1.0,
            },
            mode: SpikeMode::Hard,
            reset_gradient: false,
            damping: 1.0,
            chunk_steps: 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_slopes_are_the_soft_steps_derivatives_and_integrate_to_one() {
        for shape in [SpikeShape::FastSigmoid, SpikeShape::Sigmoid] {
            let s = Surrogate {
                shape,
                width_mv: 0.7,
            };
            let h = 1e-6;
            for &x in &[-5.0, -0.3, 0.0, 0.2, 4.0] {
                let fd = (s.soft(x + h) - s.soft(x - h)) / (2.0 * h);
                assert!((fd - s.slope(x)).abs() < 1e-5, "{shape:?} at {x}");
            }
            let (a, b) = (-2000.0, 2000.0);
            let n = 400_000;
            let dx = (b - a) / n as f64;
            let area: f64 = (0..n)
                .map(|i| s.slope(a + (i as f64 + 0.5) * dx) * dx)
                .sum();
            assert!((area - 1.0).abs() < 2e-3, "{shape:?}: {area}");
        }
    }
}

#[cfg(test)]
mod checks;
