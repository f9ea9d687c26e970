//! Each neuron model's step, backward. The forward step is the exact engine's own
//! ([`crate::exact::models`]); here the adjoints go back through it: from the voltage after
//! `integrate` and the synaptic state after its decay, to the voltage and state before `receive`
//! and to the input that arrived at the step.

use crate::exact::models::lif_conductance::{ConductancePropagator, NMDA};
use crate::exact::models::lif_current::CurrentPropagator;
use crate::spec::CellSpec;

/// A population's model, as the backward pass needs it.
pub enum CellBackward {
    Current(CurrentPropagator),
    Conductance(ConductancePropagator),
}

/// What the forward pass recorded at one step for one population (slices over its cells).
pub struct StepRecord<'a> {
    /// Voltage before `integrate`.
    pub v: &'a [f64],
    /// The model's state after `receive` ([`crate::exact::models::NeuronModel::save_state`]).
    pub state: &'a [f64],
    /// Non-zero where the cell was refractory (its voltage held).
    pub refractory: &'a [u8],
    /// The constant input in force.
    pub bias: &'a [f64],
}

impl CellBackward {
    /// The backward step of `cell`'s model; `None` for models without one (hnn-core's cells).
    pub fn new(cell: &CellSpec, dt: f64) -> Option<Self> {
        match cell {
            CellSpec::LifCurrent(c) => Some(CellBackward::Current(CurrentPropagator::new(c, dt))),
            CellSpec::LifConductance(c) => {
                Some(CellBackward::Conductance(ConductancePropagator::new(c, dt)))
            }
            _ => None,
        }
    }

    /// Whether the backward pass needs the voltages and states of each step (the current-based
    /// model's step is linear with constant coefficients, so it needs only the refractory mask).
    pub fn needs_state(&self) -> bool {
        matches!(self, CellBackward::Conductance(_))
    }

    /// One step back. On entry `lam_v` is the adjoint of the voltage after `integrate` and
    /// `lam_state` that of the state after its decay; on return they are the adjoints of the voltage
    /// before `integrate` and of the state before `receive`, and `lam_in` (`[channel][cell]`) holds
    /// the adjoint of the input that arrived at the step.
    pub fn step_back(
        &self,
        rec: &StepRecord,
        lam_v: &mut [f64],
        lam_state: &mut [f64],
        lam_in: &mut [f64],
    ) {
        let size = lam_v.len();
        match self {
            CellBackward::Current(p) => {
                for (c, (lu, li)) in lam_state
                    .chunks_exact_mut(size)
                    .zip(lam_in.chunks_exact_mut(size))
                    .enumerate()
                {
                    let (k, d, kick) = (p.p_vu[c], p.p_uu[c], p.kick[c]);
                    for i in 0..size {
                        let free = rec.refractory[i] == 0;
                        lu[i] = d * lu[i] + if free { k * lam_v[i] } else { 0.0 };
                        li[i] = kick * lu[i];
                    }
                }
                for (lv, &r) in lam_v.iter_mut().zip(rec.refractory) {
                    if r == 0 {
                        *lv *= p.p_vv;
                    }
                }
            }
            CellBackward::Conductance(p) => conductance_back(p, rec, lam_v, lam_state, lam_in),
        }
    }
}

/// The conductance-based step backward. Forward, per free cell: `G_c = (d_c - r_c) B_c(v)` (`B` the
/// Mg block on NMDA, 1 elsewhere), `g = g_L + sum G_c`, `n = g_L E_L + b + sum G_c E_c`,
/// `v_inf = n / g`, `E = exp(-dt g / C)`, `v' = v_inf + (v - v_inf) E`; then `r_c *= p_rise`,
/// `d_c *= p_decay`; `receive` added `norm_c x_c` to both states.
fn conductance_back(
    p: &ConductancePropagator,
    rec: &StepRecord,
    lam_v: &mut [f64],
    lam_state: &mut [f64],
    lam_in: &mut [f64],
) {
    let size = lam_v.len();
    let (rise, decay) = rec.state.split_at(4 * size);
    let (lam_r, lam_d) = lam_state.split_at_mut(4 * size);
    let k = -p.dt / p.c_m;
    for i in 0..size {
        // Through the decay.
        for c in 0..4 {
            lam_r[c * size + i] *= p.p_rise[c];
            lam_d[c * size + i] *= p.p_decay[c];
        }
        if rec.refractory[i] == 0 {
            let v = rec.v[i];
            let raw: [f64; 4] = std::array::from_fn(|c| decay[c * size + i] - rise[c * size + i]);
            let block = p.mg_block(v);
            let mut g_tot = p.g_l;
            let mut num = p.g_l * p.e_l + rec.bias[i];
            for (c, (&r, &e_rev)) in raw.iter().zip(&p.e_rev).enumerate() {
                let g = if c == NMDA { r * block } else { r };
                g_tot += g;
                num += g * e_rev;
            }
            let v_inf = num / g_tot;
            let e = (k * g_tot).exp();
            let lv = lam_v[i];
            // d v' / d G_c = (1 - E)(E_c - v_inf) / g + (v - v_inf) E k.
            let common = (v - v_inf) * e * k;
            let mut dv = e;
            for c in 0..4 {
                let d_g = (1.0 - e) * (p.e_rev[c] - v_inf) / g_tot + common;
                let factor = if c == NMDA { block } else { 1.0 };
                lam_d[c * size + i] += lv * d_g * factor;
                lam_r[c * size + i] -= lv * d_g * factor;
                if c == NMDA && raw[c] != 0.0 {
                    // B'(v) = 0.062 B (1 - B).
                    dv += d_g * raw[c] * 0.062 * block * (1.0 - block);
                }
            }
            lam_v[i] = lv * dv;
        }
        for c in 0..4 {
            lam_in[c * size + i] = p.norm[c] * (lam_r[c * size + i] + lam_d[c * size + i]);
        }
    }
}
