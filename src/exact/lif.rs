//! Single-cell dynamics of the two LIF models: the per-step propagators that integrate the linear
//! parts exactly, and closed-form results the tests and the mean-field theory rely on.

use crate::spec::{Kick, LifConductance, LifCurrent};

/// Exact one-step propagator of the current-based LIF with exponential channels.
///
/// Over one step the system `tau_m v' = -(v - v_inf) + sum u_c`, `tau_c u_c' = -u_c` is linear, so
/// `v(t+dt) = v_inf + (v - v_inf) p_vv + sum_c p_vu[c] u_c` and `u_c(t+dt) = p_uu[c] u_c` hold exactly.
#[derive(Debug, Clone)]
pub struct CurrentPropagator {
    pub p_vv: f64,
    pub p_vu: Vec<f64>,
    pub p_uu: Vec<f64>,
    /// Jump of `u_c` per unit weight of an arriving spike.
    pub kick: Vec<f64>,
    pub v_rest: f64,
    pub v_threshold: f64,
    pub v_reset: f64,
    pub ref_steps: u32,
}

impl CurrentPropagator {
    pub fn new(c: &LifCurrent, dt: f64) -> Self {
        let tm = c.tau_m_ms;
        let p_vv = (-dt / tm).exp();
        let mut p_vu = Vec::new();
        let mut p_uu = Vec::new();
        let mut kick = Vec::new();
        for ch in &c.channels {
            let ts = ch.tau_ms;
            p_uu.push((-dt / ts).exp());
            p_vu.push(psp_kernel(tm, ts, dt));
            kick.push(match ch.kick {
                Kick::DeltaPsp => tm / ts,
                Kick::Charge => 1.0 / ts,
            });
        }
        CurrentPropagator {
            p_vv,
            p_vu,
            p_uu,
            kick,
            v_rest: c.v_rest_mv,
            v_threshold: c.v_threshold_mv,
            v_reset: c.v_reset_mv,
            ref_steps: (c.t_ref_ms / dt).round() as u32,
        }
    }
}

/// Voltage at time `t` produced by a unit channel current `u(0) = 1` decaying with `tau_s`, in a
/// membrane with `tau_m` starting at rest: `tau_s / (tau_s - tau_m) (e^{-t/tau_s} - e^{-t/tau_m})`.
pub fn psp_kernel(tau_m: f64, tau_s: f64, t: f64) -> f64 {
    if ((tau_s - tau_m) / tau_m).abs() < 1e-9 {
        // Limit tau_s -> tau_m.
        t / tau_m * (-t / tau_m).exp()
    } else {
        tau_s / (tau_s - tau_m) * ((-t / tau_s).exp() - (-t / tau_m).exp())
    }
}

/// Deterministic firing period (ms) of a current-based LIF under constant drive `mu` (mV, steady-state
/// voltage): `t_ref + tau_m ln((mu - v_reset) / (mu - theta))`, infinite when `mu <= theta`.
pub fn lif_period_ms(tau_m: f64, t_ref: f64, mu: f64, v_reset: f64, theta: f64) -> f64 {
    if mu <= theta {
        f64::INFINITY
    } else {
        t_ref + tau_m * ((mu - v_reset) / (mu - theta)).ln()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psp_kernel_solves_the_membrane_equation() {
        // Check tau_m v' = -v + e^{-t/tau_s} by central differences at several times.
        for &(tm, ts) in &[(20.0, 5.0), (10.0, 3.0), (10.0, 10.0), (5.0, 150.0)] {
            for &t in &[0.3, 2.0, 7.5, 40.0] {
                let h = 1e-5;
                let dv = (psp_kernel(tm, ts, t + h) - psp_kernel(tm, ts, t - h)) / (2.0 * h);
                let rhs = (-psp_kernel(tm, ts, t) + (-t / ts).exp()) / tm;
                assert!(
                    (dv - rhs).abs() < 1e-7,
                    "tm {tm} ts {ts} t {t}: {dv} vs {rhs}"
                );
            }
        }
    }

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
