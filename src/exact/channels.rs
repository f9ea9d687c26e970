//! Membrane channels of hnn-core's cells, from the equations of their NMODL files (kinetics as
//! published; no NMODL code). Each channel keeps its gating state per node and gives, at the
//! current gates, a conductance and reversal the cable's implicit step takes as linear in `v`.

/// `x / (exp(x / y) - 1)`, continued through `x = 0` (the rate functions' removable singularity).
fn vtrap(x: f64, y: f64) -> f64 {
    if (x / y).abs() < 1e-6 {
        y * (1.0 - x / y / 2.0)
    } else {
        x / ((x / y).exp() - 1.0)
    }
}

/// `hh2`: Hodgkin-Huxley sodium, potassium and leak, shifted to rest near -65 mV, with the
/// temperature factor `3^((celsius - 6.3 - 30.7) / 10)` (1 at hnn-core's 37 C).
#[derive(Debug, Clone, Copy)]
pub struct Hh2 {
    /// S/cm2.
    pub gnabar: f64,
    pub gkbar: f64,
    pub gl: f64,
    /// mV.
    pub el: f64,
    pub ena: f64,
    pub ek: f64,
    pub celsius: f64,
}

impl Default for Hh2 {
    /// hnn-core's defaults (NMODL parameters) with NEURON's default sodium and potassium
    /// reversal potentials, at 37 C.
    fn default() -> Self {
        Hh2 {
            gnabar: 0.12,
            gkbar: 0.036,
            gl: 0.0003,
            el: -54.3,
            ena: 50.0,
            ek: -77.0,
            celsius: 37.0,
        }
    }
}

/// The gates `m`, `h`, `n` of one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hh2Gates {
    pub m: f64,
    pub h: f64,
    pub n: f64,
}

impl Hh2 {
    /// `(inf, tau)` of `m`, `h`, `n` at `v`.
    pub fn rates(&self, v: f64) -> [(f64, f64); 3] {
        let q10 = 3f64.powf((self.celsius - 6.3 - 30.7) / 10.0);
        let pair = |alpha: f64, beta: f64| {
            let sum = alpha + beta;
            (alpha / sum, 1.0 / (q10 * sum))
        };
        [
            pair(
                0.1 * vtrap(-(v + 40.0), 10.0),
                4.0 * (-(v + 65.0) / 18.0).exp(),
            ),
            pair(
                0.07 * (-(v + 65.0) / 20.0).exp(),
                1.0 / ((-(v + 35.0) / 10.0).exp() + 1.0),
            ),
            pair(
                0.01 * vtrap(-(v + 55.0), 10.0),
                0.125 * (-(v + 65.0) / 80.0).exp(),
            ),
        ]
    }

    /// The gates at rest at `v` (their steady states).
    pub fn steady(&self, v: f64) -> Hh2Gates {
        let [m, h, n] = self.rates(v);
        Hh2Gates {
            m: m.0,
            h: h.0,
            n: n.0,
        }
    }

    /// Advances the gates `dt` ms at the constant voltage `v` (exact for a linear relaxation).
    pub fn advance(&self, g: &mut Hh2Gates, v: f64, dt: f64) {
        let [m, h, n] = self.rates(v);
        let relax =
            |x: &mut f64, (inf, tau): (f64, f64)| *x += (1.0 - (-dt / tau).exp()) * (inf - *x);
        relax(&mut g.m, m);
        relax(&mut g.h, h);
        relax(&mut g.n, n);
    }

    /// Total conductance (mS/cm2) and its reversal (mV) at the gates.
    pub fn conductance(&self, g: &Hh2Gates) -> (f64, f64) {
        let gna = self.gnabar * g.m.powi(3) * g.h;
        let gk = self.gkbar * g.n.powi(4);
        let total = gna + gk + self.gl;
        (
            total * 1e3,
            (gna * self.ena + gk * self.ek + self.gl * self.el) / total,
        )
    }
}
