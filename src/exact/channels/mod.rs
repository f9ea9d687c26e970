//! Membrane channels of hnn-core's cells (`hh2`, `km`, `ca`, `cad`, `kca`, `cat`, `ar`), from the
//! equations of their NMODL files ([`rates`]), stepped as NEURON steps them: the gates' steady states
//! and time constants come from tables on the same voltage grids NEURON's `TABLE` statements use,
//! interpolated linearly; each gate relaxes exponentially over a step at the voltage the step ended
//! at (`cnexp`); the membrane current is linear in `v` at the current gates, which is what the
//! cable's implicit step takes.

// Per-lane loops index several `[f64; L]` arrays at once; an index reads plainest there.
#![allow(clippy::needless_range_loop)]

pub mod rates;

/// Physical constants as NEURON 8 uses them (2019 SI).
const FARADAY: f64 = 96_485.332_123_310_02;
const GAS_CONSTANT: f64 = 8.314_462_618_153_24;
/// NEURON's default extracellular calcium (mM), which the Nernst potential of `ca` reads.
const CAO_MM: f64 = 2.0;
/// `cad`: the depth of the submembrane shell (um) and the resting calcium (mM).
const CAD_DEPTH_UM: f64 = 0.1;
pub const CAI_REST_MM: f64 = 100e-6;
/// Fixed reversal potentials (mV): NEURON's defaults for sodium and potassium, `cat`'s and `ar`'s own.
const ENA: f64 = 50.0;
const EK: f64 = -77.0;
const E_CAT: f64 = 125.0;
const E_AR: f64 = -35.0;

/// The temperature factor `2.3^((celsius - 23 - 30.7) / 10)` of `km`, `ca` and `kca`, which their
/// NMODL files apply to the rates and to the conductance.
pub fn tadj(celsius: f64) -> f64 {
    2.3f64.powf((celsius - 23.0 - 30.7) / 10.0)
}

/// A rate table on a uniform grid of `n + 1` voltages from `lo` to `hi`, read by linear
/// interpolation and clamped at its ends (NEURON's `TABLE ... FROM lo TO hi WITH n`). Each interval
/// keeps its first row and the difference to the next, so a lookup is one index and `a + w d`.
#[derive(Debug, Clone)]
struct Table<const K: usize> {
    lo: f64,
    per_mv: f64,
    /// Intervals as `[row i, row i+1 - row i]`.
    segments: Vec<[[f64; K]; 2]>,
    last: [f64; K],
}

impl<const K: usize> Table<K> {
    fn new(lo: f64, hi: f64, n: usize, f: impl Fn(f64) -> [f64; K]) -> Self {
        assert!(n > 0 && n < i32::MAX as usize);
        let step = (hi - lo) / n as f64;
        let rows: Vec<[f64; K]> = (0..=n).map(|i| f(lo + i as f64 * step)).collect();
        Table {
            lo,
            per_mv: 1.0 / step,
            segments: rows
                .windows(2)
                .map(|w| [w[0], std::array::from_fn(|k| w[1][k] - w[0][k])])
                .collect(),
            last: rows[n],
        }
    }

    #[inline(always)]
    fn at(&self, v: f64) -> [f64; K] {
        let x = (v - self.lo) * self.per_mv;
        // At or below 0 (or NaN): the first row; at or past the last grid point: the last row.
        if x.is_nan() || x <= 0.0 {
            return self.segments[0][0];
        }
        if x >= self.segments.len() as f64 {
            return self.last;
        }
        // SAFETY: `x` is finite and in (0, n) with n < i32::MAX (checked above and in `new`).
        let i = unsafe { x.to_int_unchecked::<i32>() } as usize;
        let w = x - i as f64;
        let [a, d] = &self.segments[i];
        let mut out = [0.0; K];
        for k in 0..K {
            out[k] = a[k] + w * d[k];
        }
        out
    }
}

/// `1 - exp(-x)` for `x >= 0`: five terms of its series where they are exact to rounding (the
/// `kca` gate's step is of order 1e-4), `exp_m1` beyond.
#[inline(always)]
fn one_minus_exp_neg(x: f64) -> f64 {
    if x < 1e-3 {
        x * (1.0 - x * (1.0 / 2.0 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x * (1.0 / 120.0)))))
    } else {
        -(-x).exp_m1()
    }
}

/// Per gate, its steady state and the fraction of the way to it covered in one step `dt`.
fn relax_pair((inf, tau): (f64, f64), dt: f64) -> [f64; 2] {
    [inf, 1.0 - (-dt / tau).exp()]
}

/// Channel densities at one compartment (S/cm2, with the channel's temperature factor on its
/// conductance where its NMODL file puts one), and its calcium removal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Densities {
    pub gnabar_hh2: f64,
    pub gkbar_hh2: f64,
    pub gl_hh2: f64,
    pub el_hh2: f64,
    pub km: f64,
    pub ca: f64,
    pub kca: f64,
    pub cat: f64,
    pub ar: f64,
    /// `cad`'s removal time constant (ms); 0 when the compartment has no `cad`.
    pub taur_cad: f64,
}

/// The gating state of one compartment in each of `L` cells stepped together (lanes), and its
/// internal calcium (mM).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gates<const L: usize> {
    pub hh2: [[f64; L]; 3],
    pub km: [f64; L],
    pub ca: [[f64; L]; 2],
    pub cai: [f64; L],
    pub kca: [f64; L],
    pub cat: [[f64; L]; 2],
    pub ar: [f64; L],
}

/// Numbers per lane in a [`Gates`].
pub const GATE_VALUES: usize = 11;

impl<const L: usize> Gates<L> {
    /// Lane `l`'s gates as numbers, in a fixed order.
    pub fn lane(&self, l: usize) -> [f64; GATE_VALUES] {
        [
            self.hh2[0][l],
            self.hh2[1][l],
            self.hh2[2][l],
            self.km[l],
            self.ca[0][l],
            self.ca[1][l],
            self.cai[l],
            self.kca[l],
            self.cat[0][l],
            self.cat[1][l],
            self.ar[l],
        ]
    }

    /// Sets lane `l` from [`Gates::lane`]'s numbers.
    pub fn set_lane(&mut self, l: usize, x: &[f64]) {
        [self.hh2[0][l], self.hh2[1][l], self.hh2[2][l]] = [x[0], x[1], x[2]];
        self.km[l] = x[3];
        [self.ca[0][l], self.ca[1][l]] = [x[4], x[5]];
        self.cai[l] = x[6];
        self.kca[l] = x[7];
        [self.cat[0][l], self.cat[1][l]] = [x[8], x[9]];
        self.ar[l] = x[10];
    }
}

/// The channels' kinetics at one temperature and step: rate tables and temperature factors.
#[derive(Debug, Clone)]
pub struct Kinetics {
    dt: f64,
    hh2: Table<6>,
    /// `km`'s `n`, then `ca`'s `m` and `h` (one grid).
    km_ca: Table<6>,
    /// `cat`'s `m` and `h`, then `ar`'s `m` (one grid).
    cat_ar: Table<6>,
    /// `q10^((celsius - 23 - 30.7) / 10)` with q10 2.3: `km`, `ca`, `kca` (rates and conductance).
    tadj: f64,
    /// `RT/F` (mV).
    ktf: f64,
}

impl Kinetics {
    pub fn new(celsius: f64, dt: f64) -> Self {
        let q_hh2 = 3f64.powf((celsius - 6.3 - 30.7) / 10.0);
        let tadj = tadj(celsius);
        let flat = |pairs: &[(f64, f64)]| -> Vec<f64> {
            pairs.iter().flat_map(|&p| relax_pair(p, dt)).collect()
        };
        Kinetics {
            dt,
            hh2: Table::new(-100.0, 100.0, 200, |v| {
                flat(&rates::hh2(v, q_hh2)).try_into().unwrap()
            }),
            km_ca: Table::new(-120.0, 100.0, 199, |v| {
                let [m, h] = rates::ca(v, tadj);
                flat(&[rates::km(v, tadj), m, h]).try_into().unwrap()
            }),
            cat_ar: Table::new(-120.0, 40.0, 641, |v| {
                let [m, h] = rates::cat(v);
                flat(&[m, h, rates::ar(v)]).try_into().unwrap()
            }),
            tadj,
            ktf: 1e3 * GAS_CONSTANT * (celsius + 273.15) / FARADAY,
        }
    }

    /// The gates at rest at `v` as NEURON initialises them (`cat`'s `m` at 0, `ar`'s at 0.25), in
    /// every lane.
    pub fn initial<const L: usize>(&self, v: f64) -> Gates<L> {
        let h = self.hh2.at(v);
        let k = self.km_ca.at(v);
        let cai = CAI_REST_MM;
        Gates {
            hh2: [[h[0]; L], [h[2]; L], [h[4]; L]],
            km: [k[0]; L],
            ca: [[k[2]; L], [k[4]; L]],
            cai: [cai; L],
            kca: [rates::kca(cai, self.tadj).0; L],
            cat: [[0.0; L], [self.cat_ar.at(v)[2]; L]],
            ar: [0.25; L],
        }
    }

    /// The Nernst potential of calcium (mV) at internal concentration `cai` (mM).
    #[inline(always)]
    pub fn eca(&self, cai: f64) -> f64 {
        self.ktf / 2.0 * (CAO_MM.ln() - cai.ln())
    }

    /// Per lane: the membrane's conductance (mS/cm2), the sum of conductance times reversal
    /// (mS/cm2 x mV), and the calcium current through `ca` (mA/cm2), at `v` and the gates `g`.
    #[inline(always)]
    pub fn membrane<const L: usize>(
        &self,
        d: &Densities,
        g: &Gates<L>,
        v: &[f64; L],
    ) -> ([f64; L], [f64; L], [f64; L]) {
        let mut total = [0.0; L];
        let mut ge = [0.0; L];
        let mut ica = [0.0; L];
        for l in 0..L {
            let (m, h, n) = (g.hh2[0][l], g.hh2[1][l], g.hh2[2][l]);
            let gna = d.gnabar_hh2 * m * m * m * h;
            let gk = d.gkbar_hh2 * (n * n) * (n * n);
            total[l] = gna + gk + d.gl_hh2;
            ge[l] = gna * ENA + gk * EK + d.gl_hh2 * d.el_hh2;
        }
        if d.km > 0.0 {
            for l in 0..L {
                total[l] += d.km * g.km[l];
                ge[l] += d.km * g.km[l] * EK;
            }
        }
        if d.kca > 0.0 {
            for l in 0..L {
                total[l] += d.kca * g.kca[l];
                ge[l] += d.kca * g.kca[l] * EK;
            }
        }
        if d.ca > 0.0 {
            for l in 0..L {
                let gca = d.ca * g.ca[0][l] * g.ca[0][l] * g.ca[1][l];
                let eca = self.eca(g.cai[l]);
                total[l] += gca;
                ge[l] += gca * eca;
                ica[l] = gca * (v[l] - eca);
            }
        }
        if d.cat > 0.0 {
            for l in 0..L {
                let gcat = d.cat * g.cat[0][l] * g.cat[0][l] * g.cat[1][l];
                total[l] += gcat;
                ge[l] += gcat * E_CAT;
            }
        }
        if d.ar > 0.0 {
            for l in 0..L {
                total[l] += d.ar * g.ar[l];
                ge[l] += d.ar * g.ar[l] * E_AR;
            }
        }
        for l in 0..L {
            total[l] *= 1e3;
            ge[l] *= 1e3;
        }
        (total, ge, ica)
    }

    /// The fraction of calcium above rest that `cad` keeps over one step (per compartment, fixed).
    pub fn cad_decay(&self, d: &Densities) -> f64 {
        if d.taur_cad > 0.0 {
            (-self.dt / d.taur_cad).exp()
        } else {
            0.0
        }
    }

    /// Advances the gates one step at the voltages `v` the step ended at; `ica` is the calcium
    /// current the step's membrane carried (NEURON updates `cad` before `kca`, which reads the new
    /// `cai`); `cad_decay` is [`Kinetics::cad_decay`] of `d`.
    #[inline(always)]
    pub fn advance<const L: usize>(
        &self,
        d: &Densities,
        g: &mut Gates<L>,
        v: &[f64; L],
        ica: &[f64; L],
        cad_decay: f64,
    ) {
        for l in 0..L {
            let h = self.hh2.at(v[l]);
            g.hh2[0][l] += h[1] * (h[0] - g.hh2[0][l]);
            g.hh2[1][l] += h[3] * (h[2] - g.hh2[1][l]);
            g.hh2[2][l] += h[5] * (h[4] - g.hh2[2][l]);
        }
        if d.km > 0.0 || d.ca > 0.0 {
            for l in 0..L {
                let k = self.km_ca.at(v[l]);
                g.km[l] += k[1] * (k[0] - g.km[l]);
                g.ca[0][l] += k[3] * (k[2] - g.ca[0][l]);
                g.ca[1][l] += k[5] * (k[4] - g.ca[1][l]);
            }
        }
        if d.taur_cad > 0.0 {
            // mM/ms of calcium per mA/cm2 of inward current.
            const INFLOW: f64 = -1e4 / (2.0 * FARADAY * CAD_DEPTH_UM);
            for l in 0..L {
                // Inflow only (the pump removes, the channel cannot), in mM/ms.
                let drive = (INFLOW * ica[l]).max(0.0);
                let inf = CAI_REST_MM + drive * d.taur_cad;
                g.cai[l] = inf + (g.cai[l] - inf) * cad_decay;
            }
        }
        if d.kca > 0.0 {
            for l in 0..L {
                // `rates::kca` without its divisions: tau = 1 / (tadj (a + b)).
                let (a, b) = rates::kca_rates(g.cai[l]);
                let f = one_minus_exp_neg(self.dt * self.tadj * (a + b));
                g.kca[l] += f * (a / (a + b) - g.kca[l]);
            }
        }
        if d.cat > 0.0 || d.ar > 0.0 {
            for l in 0..L {
                let c = self.cat_ar.at(v[l]);
                g.cat[0][l] += c[1] * (c[0] - g.cat[0][l]);
                g.cat[1][l] += c[3] * (c[2] - g.cat[1][l]);
                g.ar[l] += c[5] * (c[4] - g.ar[l]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linear interpolation reproduces a linear function exactly and clamps outside the grid.
    #[test]
    fn tables_interpolate_and_clamp() {
        let t = Table::new(-120.0, 100.0, 199, |v| [2.0 * v + 1.0]);
        for v in [-119.3, -30.0, 0.0, 57.77, 99.9] {
            assert!((t.at(v)[0] - (2.0 * v + 1.0)).abs() < 1e-9);
        }
        assert_eq!(t.at(-500.0)[0], t.at(-120.0)[0]);
        assert_eq!(t.at(500.0)[0], t.at(100.0)[0]);
    }

    /// The series form of `1 - exp(-x)` agrees with `exp` to rounding on both sides of its switch.
    #[test]
    fn short_step_relaxation_is_exact() {
        for x in [1e-8f64, 1e-5, 1.25e-4, 9.99e-4, 1e-3, 0.5] {
            let want = -(-x).exp_m1();
            assert!((one_minus_exp_neg(x) - want).abs() <= 2e-15 * want, "{x}");
        }
    }

    /// At 37 C the calcium reversal at rest is `RT/2F ln(2 / 1e-4)`, about 132 mV.
    #[test]
    fn calcium_reversal_at_rest() {
        let k = Kinetics::new(37.0, 0.025);
        let e = k.eca(CAI_REST_MM);
        assert!((e - 132.3).abs() < 0.2, "{e}");
    }

    /// With a constant calcium current, `cad` settles at `cainf + drive taur`.
    #[test]
    fn calcium_settles_at_inflow_times_removal_time() {
        let k = Kinetics::new(37.0, 0.025);
        let d = Densities {
            taur_cad: 20.0,
            ..Default::default()
        };
        let mut g = k.initial::<1>(-65.0);
        let decay = k.cad_decay(&d);
        for _ in 0..20_000 {
            k.advance(&d, &mut g, &[-65.0], &[-1e-4], decay);
        }
        let want = CAI_REST_MM + 1e-4 * 1e4 / (2.0 * FARADAY * 0.1) * 20.0;
        assert!((g.cai[0] - want).abs() < 1e-9 * want, "{} {want}", g.cai[0]);
    }
}
