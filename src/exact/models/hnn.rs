//! hnn-core's multi-compartment cells as a population ([`crate::exact::hnn_cells`] on
//! [`crate::exact::compartmental`]): each cell keeps its compartments, gates and synapses; the kernel
//! sees the somatic voltage, and a spike is its upward crossing of the threshold (no reset).

use super::{NeuronModel, SpikeRule};
use crate::exact::channels::GATE_VALUES;
use crate::exact::compartmental::{CellState, CellType, Stepper, Work};

/// Cells stepped together: the cable solve and the channels run on this many lanes at once.
const LANES: usize = 4;

avx2_dispatch! {
    /// One step of a group of cells (four lanes fill an AVX2 register).
    fn step_group(
        stepper: &Stepper,
        s: &mut CellState<LANES>,
        i_na: &[f64; LANES],
        work: &mut Work<LANES>,
    ) = step_group_body;
}

#[inline(always)]
fn step_group_body(
    stepper: &Stepper,
    s: &mut CellState<LANES>,
    i_na: &[f64; LANES],
    work: &mut Work<LANES>,
) {
    stepper.step(s, i_na, work)
}

pub struct Cells {
    stepper: Stepper,
    /// Cell `i` is lane `i % LANES` of group `i / LANES`; the last group's spare lanes run idle.
    groups: Vec<CellState<LANES>>,
    size: usize,
    work: Work<LANES>,
    threshold: f64,
}

impl Cells {
    pub fn new(cell: CellType, size: usize, dt: f64) -> Self {
        let threshold = cell.threshold_mv;
        let stepper = Stepper::new(cell, dt);
        let groups = vec![stepper.initial(); size.div_ceil(LANES)];
        Cells {
            stepper,
            groups,
            size,
            work: Work::default(),
            threshold,
        }
    }
}

impl NeuronModel for Cells {
    fn n_channels(&self) -> usize {
        self.stepper.cell.channels.len()
    }

    fn receive(&mut self, inputs: &mut [f64]) {
        for (c, row) in inputs.chunks_mut(self.size).enumerate() {
            for (i, x) in row.iter_mut().enumerate() {
                if *x != 0.0 {
                    self.stepper
                        .receive(&mut self.groups[i / LANES], i % LANES, c, *x);
                    *x = 0.0;
                }
            }
        }
    }

    /// Every cell steps (no refractory hold); `bias` (pA) is injected at the soma.
    fn integrate(&mut self, v: &mut [f64], _refractory: &[u32], bias: &[f64]) {
        for (gi, s) in self.groups.iter_mut().enumerate() {
            let cells = gi * LANES..((gi + 1) * LANES).min(self.size);
            let mut i_na = [0.0; LANES];
            for (l, b) in bias[cells.clone()].iter().enumerate() {
                i_na[l] = b * 1e-3;
            }
            step_group(&self.stepper, s, &i_na, &mut self.work);
            for (l, v) in v[cells].iter_mut().enumerate() {
                *v = self.stepper.v_soma(s, l);
            }
        }
    }

    /// pA, as for the conductance-based LIF.
    fn synaptic_current_sum(&self, _v: &[f64]) -> f64 {
        self.lanes_sum(|s| self.stepper.synaptic_current(s)) * 1e3
    }

    /// The channel's conductance (nS).
    fn channel_value(&self, channel: usize, cell: usize) -> f64 {
        let st = self.groups[cell / LANES].syn[channel];
        st[1][cell % LANES] - st[0][cell % LANES]
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

    /// Per group and lane: voltages of all nodes, gates of each compartment, synaptic states.
    fn save_state(&self, out: &mut Vec<f64>) {
        out.clear();
        for s in &self.groups {
            for l in 0..LANES {
                out.extend(s.v.iter().map(|x| x[l]));
                for g in &s.gates {
                    out.extend_from_slice(&g.lane(l));
                }
                for st in &s.syn {
                    out.extend_from_slice(&[st[0][l], st[1][l]]);
                }
            }
        }
    }

    fn load_state(&mut self, state: &[f64]) {
        let mut at = 0;
        for s in &mut self.groups {
            for l in 0..LANES {
                for x in s.v.iter_mut() {
                    x[l] = state[at];
                    at += 1;
                }
                for g in &mut s.gates {
                    g.set_lane(l, &state[at..at + GATE_VALUES]);
                    at += GATE_VALUES;
                }
                for st in &mut s.syn {
                    [st[0][l], st[1][l]] = [state[at], state[at + 1]];
                    at += 2;
                }
            }
        }
    }

    /// nA m, summed over the cells.
    fn dipole(&self) -> Option<f64> {
        Some(self.lanes_sum(|s| self.stepper.dipole(s)) * 1e-6)
    }
}

impl Cells {
    /// The sum of a per-lane quantity over the population's cells (spare lanes left out).
    fn lanes_sum(&self, f: impl Fn(&CellState<LANES>) -> [f64; LANES]) -> f64 {
        let mut total = 0.0;
        for (gi, s) in self.groups.iter().enumerate() {
            let n = (self.size - gi * LANES).min(LANES);
            total += f(s)[..n].iter().sum::<f64>();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::hnn_cells;
    use crate::spec::HnnCell;

    /// A cell stepped in a lane of a group (the AVX2 build where the CPU has it) follows the same
    /// trajectory, bit for bit, as the cell stepped alone (the baseline build).
    #[test]
    fn lanes_are_independent_cells() {
        let bias = [250.0, 0.0, 120.0, 0.0, 300.0];
        let mut cells = Cells::new(hnn_cells::l2_pyramidal(&HnnCell::default()), 5, 0.025);
        let mut v = vec![0.0; 5];
        for _ in 0..2_000 {
            cells.integrate(&mut v, &[0; 5], &bias);
        }
        let stepper = Stepper::new(hnn_cells::l2_pyramidal(&HnnCell::default()), 0.025);
        for (i, &b) in bias.iter().enumerate() {
            let mut s = stepper.initial::<1>();
            let mut work = Work::default();
            for _ in 0..2_000 {
                stepper.step(&mut s, &[b * 1e-3], &mut work);
            }
            assert_eq!(stepper.v_soma(&s, 0), v[i], "cell {i}");
        }
        println!("AVX2 build compared: {}", crate::simd::has_avx2());
    }

    /// Saving and restoring the state reproduces the same trajectory bit for bit.
    #[test]
    fn saved_state_restores_the_run() {
        let mut cells = Cells::new(hnn_cells::l5_pyramidal(&HnnCell::default()), 2, 0.025);
        assert_eq!(cells.groups.len(), 1);
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
