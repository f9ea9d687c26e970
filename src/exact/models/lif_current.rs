//! The current-based LIF with exponential synaptic channels, integrated exactly over each step.

use super::{NeuronModel, SpikeRule};
use crate::spec::{Kick, LifCurrent};

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

/// A population of current-based LIF cells: the channel currents `u` (`[channel][cell]`).
pub struct Cells {
    prop: CurrentPropagator,
    u: Vec<f64>,
    size: usize,
}

impl Cells {
    pub fn new(c: &LifCurrent, size: usize, dt: f64) -> Self {
        let prop = CurrentPropagator::new(c, dt);
        Cells {
            u: vec![0.0; prop.p_uu.len() * size],
            prop,
            size,
        }
    }
}

impl NeuronModel for Cells {
    fn n_channels(&self) -> usize {
        self.prop.p_uu.len()
    }

    fn receive(&mut self, inputs: &mut [f64]) {
        let size = self.size;
        for (c, &k) in self.prop.kick.iter().enumerate() {
            let (uc, ic) = (
                &mut self.u[c * size..(c + 1) * size],
                &mut inputs[c * size..(c + 1) * size],
            );
            for (x, inp) in uc.iter_mut().zip(ic.iter_mut()) {
                *x += k * *inp;
                *inp = 0.0;
            }
        }
    }

    fn integrate(&mut self, v: &mut [f64], refractory: &[u32], bias: &[f64]) {
        let prop = &self.prop;
        // Separate passes so the linear update vectorises.
        for ((v, &r), &b) in v.iter_mut().zip(refractory).zip(bias) {
            let v_inf = prop.v_rest + b;
            let next = v_inf + (*v - v_inf) * prop.p_vv;
            *v = if r == 0 { next } else { *v };
        }
        for (c, uc) in self.u.chunks_exact_mut(self.size).enumerate() {
            let (k, d) = (prop.p_vu[c], prop.p_uu[c]);
            for ((v, &r), x) in v.iter_mut().zip(refractory).zip(uc.iter_mut()) {
                *v += if r == 0 { k * *x } else { 0.0 };
                *x *= d;
            }
        }
    }

    fn synaptic_current_sum(&self, _v: &[f64]) -> f64 {
        let mut total = 0.0;
        for uc in self.u.chunks_exact(self.size) {
            total += super::super::network::sum(uc);
        }
        total
    }

    fn channel_value(&self, channel: usize, cell: usize) -> f64 {
        self.u[channel * self.size + cell]
    }

    fn noise_scale(&self) -> Option<f64> {
        // Exact OU step: the noise added over dt has std sigma sqrt((1 - e^{-2 dt / tau_m}) / 2).
        Some(((1.0 - self.prop.p_vv * self.prop.p_vv) / 2.0).sqrt())
    }

    fn spike_rule(&self) -> SpikeRule {
        SpikeRule {
            threshold: self.prop.v_threshold,
            reset: self.prop.v_reset,
            refractory_steps: self.prop.ref_steps,
            crossing: false,
        }
    }

    /// `u`, channel-major.
    fn save_state(&self, out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.u);
    }

    fn load_state(&mut self, state: &[f64]) {
        self.u.copy_from_slice(state);
    }
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

    /// A cell under a constant drive above threshold fires with the analytic period.
    #[test]
    fn suprathreshold_drive_fires_at_the_analytic_period() {
        let c: LifCurrent = toml::from_str(
            "tau_m_ms = 20.0\nt_ref_ms = 2.0\nv_rest_mv = 0.0\nv_reset_mv = 10.0\nv_threshold_mv = 20.0\n[[channels]]\nname = \"syn\"\ntau_ms = 5.0",
        )
        .unwrap();
        let dt = 0.001;
        let mut cells = Cells::new(&c, 1, dt);
        let rule = cells.spike_rule();
        let (mu, mut v, mut r) = (30.0, [10.0], [0u32]);
        let mut spikes = Vec::new();
        for n in 0..2_000_000 {
            cells.integrate(&mut v, &r, &[mu]);
            r[0] = r[0].saturating_sub(1);
            if v[0] >= rule.threshold {
                v[0] = rule.reset;
                r[0] = rule.refractory_steps;
                spikes.push((n + 1) as f64 * dt);
            }
        }
        let period = (spikes[spikes.len() - 1] - spikes[1]) / (spikes.len() - 2) as f64;
        let want = lif_period_ms(20.0, 2.0, mu, 10.0, 20.0);
        assert!((period - want).abs() < 2.0 * dt, "{period} vs {want}");
    }
}
