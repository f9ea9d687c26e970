//! The exact engine's neuron models, each behind [`NeuronModel`]: the state of one population's cells
//! and how it advances one step. The kernel ([`super::network`]) owns what every model shares (the
//! membrane potential the signals read, spike delivery with delays, drives, recording) and asks the
//! model for the rest. A model is added by a file here and one line in [`build`].

pub mod hnn;
pub mod lif_conductance;
pub mod lif_current;

use crate::spec::CellSpec;

/// When a cell spikes: its voltage ends a step at or above `threshold`; it is then set to `reset`
/// and held for `refractory_steps` steps. With `crossing`, a spike is the step at which the
/// voltage first ends at or above threshold, and nothing is reset or held (cells with their own
/// spike currents).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpikeRule {
    pub threshold: f64,
    pub reset: f64,
    pub refractory_steps: u32,
    pub crossing: bool,
}

/// One population's cells under one neuron model. Cells are indexed `0..size`; inputs arrive
/// channel-major (`[channel][cell]`).
pub trait NeuronModel: Send {
    /// Input channels per cell.
    fn n_channels(&self) -> usize;

    /// Takes one step's arriving input (weights summed per channel and cell) into the synaptic
    /// state, and zeroes `inputs`.
    fn receive(&mut self, inputs: &mut [f64]);

    /// Advances the synaptic state one step, and the membrane `v` of every cell whose
    /// `refractory` count is 0, under the constant input `bias` (mV for current-based, pA for
    /// conductance-based cells).
    fn integrate(&mut self, v: &mut [f64], refractory: &[u32], bias: &[f64]);

    /// The summed synaptic current into all cells at the end of the step, at voltages `v`.
    fn synaptic_current_sum(&self, v: &[f64]) -> f64;

    /// The recorded drive of `channel` into `cell` at the end of the step.
    fn channel_value(&self, channel: usize, cell: usize) -> f64;

    /// The std of one step's white-noise voltage increment per unit `sigma`, for models that take
    /// white-noise drives (`None` otherwise).
    fn noise_scale(&self) -> Option<f64>;

    fn spike_rule(&self) -> SpikeRule;

    /// The synaptic state, flattened, for a run that restarts from this point (back-propagation
    /// through time re-runs a stretch from a saved state).
    fn save_state(&self, out: &mut Vec<f64>);

    /// Restores a state written by [`NeuronModel::save_state`].
    fn load_state(&mut self, state: &[f64]);

    /// The current dipole (nA m) along the cells' apical axis, summed over the cells, for models
    /// with a morphology.
    fn dipole(&self) -> Option<f64> {
        None
    }
}

/// The model of `cell` for `size` cells stepped by `dt` ms.
pub fn build(cell: &CellSpec, size: usize, dt: f64) -> Box<dyn NeuronModel> {
    match cell {
        CellSpec::LifCurrent(c) => Box::new(lif_current::Cells::new(c, size, dt)),
        CellSpec::LifConductance(c) => Box::new(lif_conductance::Cells::new(c, size, dt)),
        _ => Box::new(hnn::Cells::new(
            crate::exact::hnn_cells::cell_type(cell).expect("an hnn cell"),
            size,
            dt,
        )),
    }
}
