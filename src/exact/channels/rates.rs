//! The rate functions of hnn-core's channels, from the equations of its NMODL files (`hh2`, `km`,
//! `ca`, `kca`, `cat`, `ar`): for each gate, its steady state and time constant (ms) at `v` (mV).
//! Temperature factors are applied by the caller ([`super::Kinetics`]).

/// `x / (exp(x / y) - 1)`, continued through `x = 0` (the rate functions' removable singularity).
pub fn vtrap(x: f64, y: f64) -> f64 {
    if (x / y).abs() < 1e-6 {
        y * (1.0 - x / y / 2.0)
    } else {
        x / ((x / y).exp() - 1.0)
    }
}

/// `(inf, tau)` from opening and closing rates, with the temperature factor `q`.
fn pair(alpha: f64, beta: f64, q: f64) -> (f64, f64) {
    let sum = alpha + beta;
    (alpha / sum, 1.0 / (q * sum))
}

/// `hh2` (Hodgkin-Huxley shifted to rest near -65 mV): gates `m`, `h`, `n`.
pub fn hh2(v: f64, q: f64) -> [(f64, f64); 3] {
    [
        pair(
            0.1 * vtrap(-(v + 40.0), 10.0),
            4.0 * (-(v + 65.0) / 18.0).exp(),
            q,
        ),
        pair(
            0.07 * (-(v + 65.0) / 20.0).exp(),
            1.0 / ((-(v + 35.0) / 10.0).exp() + 1.0),
            q,
        ),
        pair(
            0.01 * vtrap(-(v + 55.0), 10.0),
            0.125 * (-(v + 65.0) / 80.0).exp(),
            q,
        ),
    ]
}

/// `km` (muscarinic potassium, Mainen): gate `n`, half-activation -30 mV, slope 9 mV, rates 0.001/ms.
pub fn km(v: f64, q: f64) -> (f64, f64) {
    let (tha, qa, ra, rb) = (-30.0, 9.0, 0.001, 0.001);
    // a = Ra (v - tha) / (1 - exp(-(v - tha)/qa)), b = -Rb (v - tha) / (1 - exp((v - tha)/qa)).
    let a = ra * vtrap(-(v - tha), qa);
    let b = rb * vtrap(v - tha, qa);
    pair(a, b, q)
}

/// `ca` (high-voltage-activated calcium, Reuveni et al. 1993): gates `m`, `h`.
pub fn ca(v: f64, q: f64) -> [(f64, f64); 2] {
    [
        pair(
            0.055 * vtrap(-27.0 - v, 3.8),
            0.94 * ((-75.0 - v) / 17.0).exp(),
            q,
        ),
        pair(
            0.000457 * ((-13.0 - v) / 50.0).exp(),
            0.0065 / (((-v - 15.0) / 28.0).exp() + 1.0),
            q,
        ),
    ]
}

/// `kca` (calcium-dependent potassium, Pennefather 1990): gate `n` at internal calcium `cai` (mM).
pub fn kca(cai: f64, q: f64) -> (f64, f64) {
    let (a, b) = kca_rates(cai);
    pair(a, b, q)
}

/// `kca`'s opening and closing rates (/ms) at `cai` (mM), before the temperature factor.
#[inline(always)]
pub fn kca_rates(cai: f64) -> (f64, f64) {
    (0.01 * cai, 0.02)
}

/// `cat` (low-threshold T-type calcium, Traub et al. 2003): gates `m`, `h`.
pub fn cat(v: f64) -> [(f64, f64); 2] {
    let m_tau = 0.204 + 0.333 / (((v + 15.8) / 18.2).exp() + ((-v - 131.0) / 16.7).exp());
    let h_tau = if v < -81.0 {
        0.333 * ((v + 466.0) / 66.6).exp()
    } else {
        9.32 + 0.333 * ((-v - 21.0) / 10.5).exp()
    };
    [
        (1.0 / (1.0 + ((-v - 56.0) / 6.2).exp()), m_tau),
        (1.0 / (1.0 + ((v + 80.0) / 4.0).exp()), h_tau),
    ]
}

/// `ar` (anomalous rectifier, Traub et al. 2003): gate `m`.
pub fn ar(v: f64) -> (f64, f64) {
    (
        1.0 / (1.0 + ((v + 75.0) / 5.5).exp()),
        1.0 / ((-14.6 - 0.086 * v).exp() + (-1.87 + 0.07 * v).exp()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The continued form agrees with the plain expression away from the singularity, and the
    /// `km` and `ca` rates written through it equal their NMODL forms.
    #[test]
    fn vtrap_is_the_rate_expression() {
        for x in [-30.0, -1.0, -1e-3, 1e-3, 2.0, 25.0] {
            assert!((vtrap(x, 10.0) - x / ((x / 10.0f64).exp() - 1.0)).abs() < 1e-9);
        }
        assert!((vtrap(1e-9, 10.0) - 10.0).abs() < 1e-6);
        let v: f64 = -42.0;
        let a = 0.001 * (v + 30.0) / (1.0 - (-(v + 30.0) / 9.0).exp());
        let b = -0.001 * (v + 30.0) / (1.0 - ((v + 30.0) / 9.0).exp());
        let (inf, tau) = km(v, 1.0);
        assert!((inf - a / (a + b)).abs() < 1e-12 && (tau - 1.0 / (a + b)).abs() < 1e-9);
        let a = 0.055 * (-27.0 - v) / (((-27.0 - v) / 3.8).exp() - 1.0);
        let b = 0.94 * ((-75.0 - v) / 17.0).exp();
        assert!((ca(v, 1.0)[0].0 - a / (a + b)).abs() < 1e-12);
    }

    /// Steady states are probabilities and time constants positive over the whole voltage range.
    #[test]
    fn gates_are_probabilities() {
        for k in 0..=300 {
            let v = -150.0 + k as f64;
            let mut all: Vec<(f64, f64)> = hh2(v, 1.0).to_vec();
            all.extend(ca(v, 1.0));
            all.extend(cat(v));
            all.push(km(v, 1.0));
            all.push(ar(v));
            for (inf, tau) in all {
                assert!(
                    (0.0..=1.0).contains(&inf) && tau > 0.0,
                    "v {v}: {inf} {tau}"
                );
            }
        }
    }
}
