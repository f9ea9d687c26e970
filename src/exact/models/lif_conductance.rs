//! The conductance-based LIF with Exp2Syn receptors (AMPA, NMDA with its magnesium block, GABA-A,
//! GABA-B), integrated by exponential Euler (exact for conductances held over a step).

use super::{NeuronModel, SpikeRule};
use crate::spec::LifConductance;

/// Parameters of the conductance-based LIF prepared for stepping.
#[derive(Debug, Clone)]
pub struct ConductancePropagator {
    pub c_m: f64,
    pub g_l: f64,
    pub e_l: f64,
    pub e_rev: [f64; 4],
    /// Decay factors per step of the rise and decay state of each receptor.
    pub p_rise: [f64; 4],
    pub p_decay: [f64; 4],
    /// Exp2Syn normalisation: a spike of weight `w` adds `w * norm` to both states, so `g` peaks at `w`.
    pub norm: [f64; 4],
    pub mg: f64,
    pub v_threshold: f64,
    pub v_reset: f64,
    pub ref_steps: u32,
    pub dt: f64,
}

/// Index of the NMDA channel (the only one with a voltage-dependent block).
pub const NMDA: usize = 1;

impl ConductancePropagator {
    pub fn new(c: &LifConductance, dt: f64) -> Self {
        let r = c.receptors.as_array();
        let mut p_rise = [0.0; 4];
        let mut p_decay = [0.0; 4];
        let mut norm = [0.0; 4];
        let mut e_rev = [0.0; 4];
        for k in 0..4 {
            p_rise[k] = (-dt / r[k].rise_ms).exp();
            p_decay[k] = (-dt / r[k].decay_ms).exp();
            norm[k] = exp2_norm(r[k].rise_ms, r[k].decay_ms);
            e_rev[k] = r[k].e_rev_mv;
        }
        ConductancePropagator {
            c_m: c.c_m_pf,
            g_l: c.g_l_ns,
            e_l: c.e_l_mv,
            e_rev,
            p_rise,
            p_decay,
            norm,
            mg: c.mg_mm,
            v_threshold: c.v_threshold_mv,
            v_reset: c.v_reset_mv,
            ref_steps: (c.t_ref_ms / dt).round() as u32,
            dt,
        }
    }

    /// NMDA magnesium block (Jahr & Stevens 1990).
    #[inline]
    pub fn mg_block(&self, v: f64) -> f64 {
        1.0 / (1.0 + self.mg / 3.57 * (-0.062 * v).exp())
    }

    /// Conductances with the NMDA block at voltage `v` applied.
    #[inline]
    fn effective(&self, v: f64, g: &[f64; 4]) -> [f64; 4] {
        let mut e = *g;
        e[NMDA] *= self.mg_block(v);
        e
    }

    /// Advances `v` one step with the conductances `g` (nS) held constant over the step (exponential Euler:
    /// exact for piecewise-constant conductances) and bias current `i_bias` (pA).
    #[inline]
    pub fn step_v(&self, v: f64, g: &[f64; 4], i_bias: f64) -> f64 {
        let mut g_tot = self.g_l;
        let mut num = self.g_l * self.e_l + i_bias;
        for (gk, e) in self.effective(v, g).iter().zip(&self.e_rev) {
            g_tot += gk;
            num += gk * e;
        }
        let v_inf = num / g_tot;
        v_inf + (v - v_inf) * (-self.dt * g_tot / self.c_m).exp()
    }

    /// Synaptic current into the cell (pA) at voltage `v`: `sum_c g_c B_c(v) (E_c - v)`.
    #[inline]
    pub fn synaptic_current(&self, v: f64, g: &[f64; 4]) -> f64 {
        let eff = self.effective(v, g);
        eff.iter()
            .zip(&self.e_rev)
            .map(|(gk, e)| gk * (e - v))
            .sum()
    }
}

/// Peak normalisation of a difference of exponentials (NEURON's Exp2Syn): the factor that makes
/// `e^{-t/decay} - e^{-t/rise}` peak at 1, reached at `t_peak = rise decay / (decay - rise) ln(decay / rise)`.
pub fn exp2_norm(rise: f64, decay: f64) -> f64 {
    let tp = exp2_peak_time(rise, decay);
    1.0 / ((-tp / decay).exp() - (-tp / rise).exp())
}

/// Time of the peak of an Exp2Syn conductance after a spike (ms).
pub fn exp2_peak_time(rise: f64, decay: f64) -> f64 {
    rise * decay / (decay - rise) * (decay / rise).ln()
}

/// A population of conductance-based LIF cells: each receptor's rise and decay state
/// (`[receptor][cell]`; the conductance is decay - rise).
pub struct Cells {
    prop: ConductancePropagator,
    rise: Vec<f64>,
    decay: Vec<f64>,
    /// Scratch: total conductance and reversal-weighted conductance per cell.
    g_tot: Vec<f64>,
    num: Vec<f64>,
    size: usize,
}

impl Cells {
    pub fn new(c: &LifConductance, size: usize, dt: f64) -> Self {
        Cells {
            prop: ConductancePropagator::new(c, dt),
            rise: vec![0.0; 4 * size],
            decay: vec![0.0; 4 * size],
            g_tot: vec![0.0; size],
            num: vec![0.0; size],
            size,
        }
    }
}

impl NeuronModel for Cells {
    fn n_channels(&self) -> usize {
        4
    }

    fn receive(&mut self, inputs: &mut [f64]) {
        let (size, prop) = (self.size, &self.prop);
        for c in 0..4 {
            let ic = &mut inputs[c * size..(c + 1) * size];
            let (r, d) = (
                &mut self.rise[c * size..(c + 1) * size],
                &mut self.decay[c * size..(c + 1) * size],
            );
            for i in 0..size {
                let add = ic[i] * prop.norm[c];
                r[i] += add;
                d[i] += add;
                ic[i] = 0.0;
            }
        }
    }

    fn integrate(&mut self, v: &mut [f64], refractory: &[u32], bias: &[f64]) {
        let (size, prop) = (self.size, &self.prop);
        let (rise, decay) = (&mut self.rise, &mut self.decay);
        let (g_tot, num) = (&mut self.g_tot, &mut self.num);
        // Total conductance and its reversal-weighted sum per cell, channel by channel
        // (vectorisable), then one exact exponential step per cell.
        for ((gt, nm), &b) in g_tot.iter_mut().zip(num.iter_mut()).zip(bias) {
            *gt = prop.g_l;
            *nm = prop.g_l * prop.e_l + b;
        }
        for c in 0..4 {
            let (r, d) = (
                &rise[c * size..(c + 1) * size],
                &decay[c * size..(c + 1) * size],
            );
            let e = prop.e_rev[c];
            let cells = g_tot.iter_mut().zip(num.iter_mut()).zip(r.iter().zip(d));
            if c == NMDA {
                for (((gt, nm), (&ri, &di)), &v) in cells.zip(v.iter()) {
                    let g = di - ri;
                    let g = if g == 0.0 { 0.0 } else { g * prop.mg_block(v) };
                    *gt += g;
                    *nm += g * e;
                }
            } else {
                for ((gt, nm), (&ri, &di)) in cells {
                    let g = di - ri;
                    *gt += g;
                    *nm += g * e;
                }
            }
        }
        let k = -prop.dt / prop.c_m;
        for ((v, &r), (&gt, &nm)) in v
            .iter_mut()
            .zip(refractory)
            .zip(g_tot.iter().zip(num.iter()))
        {
            if r == 0 {
                let v_inf = nm / gt;
                *v = v_inf + (*v - v_inf) * (k * gt).exp();
            }
        }
        for c in 0..4 {
            let (pr, pd) = (prop.p_rise[c], prop.p_decay[c]);
            rise[c * size..(c + 1) * size]
                .iter_mut()
                .for_each(|x| *x *= pr);
            decay[c * size..(c + 1) * size]
                .iter_mut()
                .for_each(|x| *x *= pd);
        }
    }

    fn synaptic_current_sum(&self, v: &[f64]) -> f64 {
        let size = self.size;
        let mut total = 0.0;
        for (i, &v) in v.iter().enumerate() {
            let g: [f64; 4] =
                std::array::from_fn(|c| self.decay[c * size + i] - self.rise[c * size + i]);
            total += self.prop.synaptic_current(v, &g);
        }
        total
    }

    fn channel_value(&self, channel: usize, cell: usize) -> f64 {
        let i = channel * self.size + cell;
        self.decay[i] - self.rise[i]
    }

    fn noise_scale(&self) -> Option<f64> {
        None
    }

    fn spike_rule(&self) -> SpikeRule {
        SpikeRule {
            threshold: self.prop.v_threshold,
            reset: self.prop.v_reset,
            refractory_steps: self.prop.ref_steps,
            crossing: false,
        }
    }

    /// The rise states then the decay states, each `[receptor][cell]`.
    fn save_state(&self, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.rise);
        out.extend_from_slice(&self.decay);
    }

    fn load_state(&mut self, state: &[f64]) {
        let (r, d) = state.split_at(self.rise.len());
        self.rise.copy_from_slice(r);
        self.decay.copy_from_slice(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_conductance_peaks_at_one() {
        for &(r, d) in &[(0.5, 5.0), (1.0, 20.0)] {
            let n = exp2_norm(r, d);
            let g = |t: f64| n * ((-t / d).exp() - (-t / r).exp());
            let tp = exp2_peak_time(r, d);
            assert!((g(tp) - 1.0).abs() < 1e-12);
            assert!(g(tp - 0.01) < 1.0 && g(tp + 0.01) < 1.0);
        }
    }
}
