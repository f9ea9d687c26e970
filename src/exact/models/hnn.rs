//! hnn-core's multi-compartment cells as a population ([`crate::exact::hnn_cells`] on
//! [`crate::exact::compartmental`]): each cell keeps its compartments, gates and synapses; the kernel
//! sees the somatic voltage, and a spike is its upward crossing of the threshold (no reset).

use super::{NeuronModel, SpikeRule};
use crate::exact::channels::Gates;
use crate::exact::compartmental::{CellState, CellType, Stepper, Work};

pub struct Cells {
    stepper: Stepper,
    states: Vec<CellState>,
    work: Work,
    threshold: f64,
}

impl Cells {
    pub fn new(cell: CellType, size: usize, dt: f64) -> Self {
        let threshold = cell.threshold_mv;
        let stepper = Stepper::new(cell, dt);
        let states = vec![stepper.initial(); size];
        Cells {
            stepper,
            states,
            work: Work::default(),
            threshold,
        }
    }
}

/// The gates of one compartment as numbers, in a fixed order.
fn gates_to(g: &Gates, out: &mut Vec<f64>) {
    out.extend_from_slice(&g.hh2);
    out.extend_from_slice(&[
        g.km, g.ca[0], g.ca[1], g.cai, g.kca, g.cat[0], g.cat[1], g.ar,
    ]);
}

fn gates_from(x: &[f64]) -> Gates {
    Gates {
        hh2: [x[0], x[1], x[2]],
        km: x[3],
        ca: [x[4], x[5]],
        cai: x[6],
        kca: x[7],
        cat: [x[8], x[9]],
        ar: x[10],
    }
}

const GATE_VALUES: usize = 11;

impl NeuronModel for Cells {
    fn n_channels(&self) -> usize {
        self.stepper.cell.channels.len()
    }

    fn receive(&mut self, inputs: &mut [f64]) {
        let size = self.states.len();
        for (c, row) in inputs.chunks_mut(size).enumerate() {
            for (s, x) in self.states.iter_mut().zip(row.iter_mut()) {
                if *x != 0.0 {
                    self.stepper.receive(s, c, *x);
                    *x = 0.0;
                }
            }
        }
    }

    /// Every cell steps (no refractory hold); `bias` (pA) is injected at the soma.
    fn integrate(&mut self, v: &mut [f64], _refractory: &[u32], bias: &[f64]) {
        for ((s, v), &b) in self.states.iter_mut().zip(v.iter_mut()).zip(bias) {
            self.stepper.step(s, b * 1e-3, &mut self.work);
            *v = self.stepper.v_soma(s);
        }
    }

    /// pA, as for the conductance-based LIF.
    fn synaptic_current_sum(&self, _v: &[f64]) -> f64 {
        self.states
            .iter()
            .map(|s| self.stepper.synaptic_current(s) * 1e3)
            .sum()
    }

    /// The channel's conductance (nS).
    fn channel_value(&self, channel: usize, cell: usize) -> f64 {
        let st = self.states[cell].syn[channel];
        st[1] - st[0]
    }

    fn noise_scale(&self) -> Option<f64> {
        None
    }

    fn spike_rule(&self) -> SpikeRule {
        SpikeRule {
            threshold: self.threshold,
            reset: f64::NAN,
            refractory_steps: 0,
            crossing: true,
        }
    }

    /// Per cell: voltages of all nodes, gates of each compartment, synaptic states.
    fn save_state(&self, out: &mut Vec<f64>) {
        out.clear();
        for s in &self.states {
            out.extend_from_slice(&s.v);
            for g in &s.gates {
                gates_to(g, out);
            }
            for st in &s.syn {
                out.extend_from_slice(st);
            }
        }
    }

    fn load_state(&mut self, state: &[f64]) {
        let mut at = 0;
        for s in &mut self.states {
            let n = s.v.len();
            s.v.copy_from_slice(&state[at..at + n]);
            at += n;
            for g in &mut s.gates {
                *g = gates_from(&state[at..at + GATE_VALUES]);
                at += GATE_VALUES;
            }
            for st in &mut s.syn {
                *st = [state[at], state[at + 1]];
                at += 2;
            }
        }
    }

    /// nA m, summed over the cells.
    fn dipole(&self) -> Option<f64> {
        Some(
            self.states
                .iter()
                .map(|s| self.stepper.dipole(s))
                .sum::<f64>()
                * 1e-6,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::hnn_cells;

    /// Saving and restoring the state reproduces the same trajectory bit for bit.
    #[test]
    fn saved_state_restores_the_run() {
        let mut cells = Cells::new(hnn_cells::l5_pyramidal(37.0), 2, 0.025);
        let mut v = vec![0.0; 2];
        let bias = [300.0, 0.0];
        let mut inputs = vec![0.0; cells.n_channels() * 2];
        inputs[1] = 5.0; // proximal_ampa of cell 1
        cells.receive(&mut inputs);
        for _ in 0..400 {
            cells.integrate(&mut v, &[0, 0], &bias);
        }
        let mut saved = Vec::new();
        cells.save_state(&mut saved);
        let run = |c: &mut Cells| {
            let mut v = vec![0.0; 2];
            for _ in 0..400 {
                c.integrate(&mut v, &[0, 0], &bias);
            }
            (v, c.dipole().unwrap())
        };
        let first = run(&mut cells);
        cells.load_state(&saved);
        assert_eq!(run(&mut cells), first);
        assert!(first.1.abs() > 0.0);
    }
}
