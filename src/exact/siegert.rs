//! The LIF transfer function under Gaussian white-noise input (Siegert 1951; Brunel 2000, eq. 21),
//! with Fourcaud & Brunel's (2002) correction for exponentially filtered (coloured) noise, its inverse,
//! and the self-consistent mean-field rates of a current-based network.
//!
//! Notation: `tau dV/dt = -V + mu + sigma sqrt(tau) xi(t)`; rates in Hz, times in ms, voltages in mV.

use crate::spec::{CellSpec, DriveKind, Kick, NetworkSpec, Rule};

/// `sqrt(2) |zeta(1/2)|`: the threshold shift per unit `sigma sqrt(tau_s / tau_m) / 2` for filtered noise.
const ALPHA_FB: f64 = 2.065_392_5;

/// `e^{u^2} (1 + erf u)`, the Siegert integrand, stable for large negative `u`.
fn integrand(u: f64) -> f64 {
    if u < -5.0 {
        // erfcx(x) for x = -u >= 5 by its asymptotic series (relative error < 1e-7 here).
        let x = -u;
        let x2 = x * x;
        let s = 1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2)
            + 105.0 / (16.0 * x2 * x2 * x2 * x2);
        s / (x * std::f64::consts::PI.sqrt())
    } else {
        (u * u).exp() * libm::erfc(-u)
    }
}

/// Composite Simpson integral of the Siegert integrand over `[a, b]`.
fn integral(a: f64, b: f64) -> f64 {
    let n = ((b - a) * 200.0).ceil().clamp(64.0, 20_000.0) as usize * 2;
    let h = (b - a) / n as f64;
    let mut s = integrand(a) + integrand(b);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        s += w * integrand(a + i as f64 * h);
    }
    s * h / 3.0
}

/// Firing rate (Hz) of a LIF neuron with membrane time constant `tau_m`, refractory period `t_ref`,
/// threshold `theta` and reset `v_reset`, under white noise of mean `mu` and std `sigma`.
/// With `tau_s > 0` the noise is taken as exponentially filtered with that time constant and
/// threshold and reset are shifted by `alpha sigma sqrt(tau_s / tau_m) / 2` (Fourcaud & Brunel 2002).
pub fn siegert_rate_hz(
    mu: f64,
    sigma: f64,
    tau_m: f64,
    t_ref: f64,
    theta: f64,
    v_reset: f64,
    tau_s: f64,
) -> f64 {
    if sigma <= 1e-9 {
        let period = super::models::lif_current::lif_period_ms(tau_m, t_ref, mu, v_reset, theta);
        return if period.is_finite() {
            1000.0 / period
        } else {
            0.0
        };
    }
    let shift = if tau_s > 0.0 {
        ALPHA_FB / 2.0 * sigma * (tau_s / tau_m).sqrt()
    } else {
        0.0
    };
    let y_th = (theta + shift - mu) / sigma;
    let y_r = (v_reset + shift - mu) / sigma;
    if y_th > 26.0 {
        return 0.0;
    }
    let t = t_ref + tau_m * std::f64::consts::PI.sqrt() * integral(y_r, y_th);
    1000.0 / t
}

/// Inverse of the transfer function in `mu`: the mean input (mV) that makes the neuron fire at `rate_hz`
/// for noise `sigma`. Returns `None` for rates at or above the refractory limit.
pub fn siegert_inverse_mu(
    rate_hz: f64,
    sigma: f64,
    tau_m: f64,
    t_ref: f64,
    theta: f64,
    v_reset: f64,
    tau_s: f64,
) -> Option<f64> {
    if rate_hz <= 0.0 || (t_ref > 0.0 && rate_hz >= 1000.0 / t_ref) {
        return None;
    }
    let f = |mu: f64| siegert_rate_hz(mu, sigma, tau_m, t_ref, theta, v_reset, tau_s);
    let span = (theta - v_reset).abs().max(sigma).max(1.0);
    let (mut lo, mut hi) = (v_reset - 20.0 * span, theta + 20.0 * span);
    while f(hi) < rate_hz {
        hi += 20.0 * span;
        if hi > theta + 1e6 * span {
            return None;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < rate_hz {
            lo = mid
        } else {
            hi = mid
        }
        if hi - lo <= 1e-13 * (1.0 + mid.abs()) {
            break;
        }
    }
    Some(0.5 * (lo + hi))
}

/// The inverse transfer function for many rates at once. A root search per rate costs a few dozen
/// integrals; a recorded data set holds hundreds of thousands of rates (1,824 ALM neurons x 2 x 100
/// bins), so `f` is tabulated once on a grid of `mu` and each rate becomes a lookup. The grid is
/// doubled until linear interpolation of `mu` against `ln f` is within `tol` of the exact inverse at
/// every cell midpoint (the largest error of the interpolant), so the table's accuracy is checked,
/// not assumed.
#[derive(Debug, Clone)]
pub struct InverseTable {
    mu: Vec<f64>,
    log_rate: Vec<f64>,
    /// The largest error in `mu` found at the cell midpoints.
    pub max_error: f64,
}

impl InverseTable {
    /// Covers rates in `[r_min, r_max]` (Hz) for the neuron and noise of [`siegert_rate_hz`].
    /// `None` when a bound cannot be inverted (not positive, or at the refractory limit).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        r_min: f64,
        r_max: f64,
        sigma: f64,
        tau_m: f64,
        t_ref: f64,
        theta: f64,
        v_reset: f64,
        tau_s: f64,
        tol: f64,
    ) -> Option<Self> {
        use rayon::prelude::*;
        let f = |mu: f64| siegert_rate_hz(mu, sigma, tau_m, t_ref, theta, v_reset, tau_s);
        let lo = siegert_inverse_mu(r_min, sigma, tau_m, t_ref, theta, v_reset, tau_s)?;
        let hi = siegert_inverse_mu(r_max, sigma, tau_m, t_ref, theta, v_reset, tau_s)?;
        // A little room on both sides, so the bounds themselves fall inside the table.
        let pad = 1e-6 * (1.0 + (hi - lo).abs());
        let (lo, hi) = (lo - pad, hi + pad);
        let mut n = 256usize;
        loop {
            let h = (hi - lo) / n as f64;
            let mu: Vec<f64> = (0..=n).map(|i| lo + i as f64 * h).collect();
            let log_rate: Vec<f64> = mu.par_iter().map(|&m| f(m).ln()).collect();
            let increasing = log_rate.windows(2).all(|w| w[1] > w[0]);
            let max_error = (0..n)
                .into_par_iter()
                .map(|i| {
                    let mid = lo + (i as f64 + 0.5) * h;
                    let lm = f(mid).ln();
                    let at = mu[i] + (lm - log_rate[i]) / (log_rate[i + 1] - log_rate[i]) * h;
                    (at - mid).abs()
                })
                .reduce(|| 0.0, f64::max);
            if increasing && log_rate.iter().all(|x| x.is_finite()) && max_error <= tol
                || n >= 1 << 20
            {
                return (increasing && max_error.is_finite()).then_some(Self {
                    mu,
                    log_rate,
                    max_error,
                });
            }
            n *= 2;
        }
    }

    /// The drive `mu` that fires at `rate_hz`; `None` outside the table's range.
    pub fn mu(&self, rate_hz: f64) -> Option<f64> {
        let lr = rate_hz.ln();
        let (first, last) = (self.log_rate[0], *self.log_rate.last()?);
        if !(lr >= first && lr <= last) {
            return None;
        }
        let k = self
            .log_rate
            .partition_point(|&x| x <= lr)
            .clamp(1, self.log_rate.len() - 1);
        let (l0, l1) = (self.log_rate[k - 1], self.log_rate[k]);
        Some(self.mu[k - 1] + (lr - l0) / (l1 - l0) * (self.mu[k] - self.mu[k - 1]))
    }
}

/// Self-consistent stationary rates (Hz) of a network of current-based LIF populations in the
/// diffusion approximation: each cell sees the mean in-degree of every connection group, Poisson
/// drives and bias. Returns `None` when a population is conductance-based, a channel uses several
/// synaptic time constants, or the iteration does not converge.
pub fn mean_field_rates(spec: &NetworkSpec) -> Option<Vec<f64>> {
    let np = spec.populations.len();
    let mut cells = Vec::new();
    for p in &spec.populations {
        match &p.neuron {
            CellSpec::LifCurrent(c) => cells.push(c.clone()),
            _ => return None,
        }
    }
    // Per post population: (pre population or None for a drive, mean count K, jump J (mV), rate if drive).
    struct Input {
        pre: Option<usize>,
        k: f64,
        j: f64,
        rate_hz: f64,
    }
    let mut inputs: Vec<Vec<Input>> = (0..np).map(|_| Vec::new()).collect();
    let mut bias = vec![0.0; np];
    let mut tau_s = vec![0.0f64; np];
    let mut white_var = vec![0.0f64; np];
    let jump = |post: usize, channel: &str, w: f64| -> f64 {
        let c = &cells[post];
        let ch = &c.channels[c
            .channels
            .iter()
            .position(|x| x.name == channel)
            .expect("validated")];
        match ch.kick {
            Kick::DeltaPsp => w,
            Kick::Charge => w / c.tau_m_ms,
        }
    };
    for c in &spec.connections {
        let pre = spec.population_index(&c.pre)?;
        let post = spec.population_index(&c.post)?;
        let n_pre = spec.populations[pre].size as f64;
        let k = match c.rule {
            Rule::FixedIndegree => c.k? as f64,
            Rule::Probability => c.p? * n_pre,
            Rule::AllToAll => n_pre - if pre == post && !c.autapses { 1.0 } else { 0.0 },
            Rule::Gaussian | Rule::File => return None,
        };
        let ch_tau = cells[post]
            .channels
            .iter()
            .find(|x| x.name == c.channel)?
            .tau_ms;
        if tau_s[post] > 0.0 && (tau_s[post] - ch_tau).abs() > 1e-12 {
            return None;
        }
        tau_s[post] = ch_tau;
        inputs[post].push(Input {
            pre: Some(pre),
            k,
            j: jump(post, &c.channel, c.weight? * c.gain),
            rate_hz: 0.0,
        });
    }
    for d in &spec.drives {
        if d.fraction < 1.0 || d.start_ms > 0.0 || d.stop_ms.is_some() {
            return None;
        }
        for t in &d.targets {
            let post = spec.population_index(t)?;
            match d.kind {
                DriveKind::Bias => bias[post] += d.amplitude?,
                DriveKind::WhiteNoise => {
                    bias[post] += d.amplitude.unwrap_or(0.0);
                    white_var[post] += d.sigma? * d.sigma?;
                }
                DriveKind::Poisson => inputs[post].push(Input {
                    pre: None,
                    k: d.n_sources as f64,
                    j: jump(post, d.channel.as_deref()?, d.weight?),
                    rate_hz: d.rate_hz?,
                }),
                DriveKind::Spikes => return None,
            }
        }
    }
    let transfer = |rates: &[f64], post: usize| -> f64 {
        let c = &cells[post];
        let (mut mu, mut var) = (c.v_rest_mv + bias[post], 0.0);
        for inp in &inputs[post] {
            let r = inp.pre.map_or(inp.rate_hz, |p| rates[p]) / 1000.0;
            mu += c.tau_m_ms * inp.k * inp.j * r;
            var += c.tau_m_ms * inp.k * inp.j * inp.j * r;
        }
        siegert_rate_hz(
            mu,
            var.sqrt(),
            c.tau_m_ms,
            c.t_ref_ms,
            c.v_threshold_mv,
            c.v_reset_mv,
            tau_s[post],
        )
    };
    // Damped fixed-point iteration; inhibition-dominated networks need small steps.
    let mut rates = vec![5.0; np];
    let mut step = 0.2;
    let mut last_err = f64::INFINITY;
    for _ in 0..20_000 {
        let target: Vec<f64> = (0..np).map(|p| transfer(&rates, p)).collect();
        let err = rates
            .iter()
            .zip(&target)
            .map(|(r, t)| (r - t).abs())
            .fold(0.0, f64::max);
        if err < 1e-7 {
            return Some(rates);
        }
        if err > last_err {
            step *= 0.7;
        }
        last_err = err;
        for (r, t) in rates.iter_mut().zip(&target) {
            *r = (*r + step * (t - *r)).max(0.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_table_agrees_with_the_root_search() {
        let table = InverseTable::new(0.1, 60.0, 0.31, 10.0, 0.0, 1.0, 0.0, 0.0, 1e-9).unwrap();
        assert!(table.max_error <= 1e-9, "{}", table.max_error);
        for k in 0..200 {
            let r = 0.1 * (600.0f64).powf(k as f64 / 199.0);
            let want = siegert_inverse_mu(r, 0.31, 10.0, 0.0, 1.0, 0.0, 0.0).unwrap();
            let got = table.mu(r).unwrap();
            assert!((got - want).abs() < 1e-8, "rate {r}: {got} vs {want}");
        }
        assert!(table.mu(0.05).is_none() && table.mu(61.0).is_none());
    }

    #[test]
    fn siegert_tends_to_the_deterministic_rate_at_low_noise() {
        // tau 20 ms, theta 20, reset 10, t_ref 2, mu 25: T = 2 + 20 ln(15/5) ms.
        let expected = 1000.0 / (2.0 + 20.0 * 3.0f64.ln());
        let r = siegert_rate_hz(25.0, 0.05, 20.0, 2.0, 20.0, 10.0, 0.0);
        assert!((r - expected).abs() / expected < 0.01, "{r} vs {expected}");
    }

    #[test]
    fn inverse_recovers_mu() {
        for &mu in &[12.0, 18.0, 22.0, 30.0] {
            let r = siegert_rate_hz(mu, 4.0, 20.0, 2.0, 20.0, 10.0, 0.0);
            let back = siegert_inverse_mu(r, 4.0, 20.0, 2.0, 20.0, 10.0, 0.0).unwrap();
            assert!((back - mu).abs() < 1e-6, "{mu} -> {r} Hz -> {back}");
        }
    }
}
