//! The cable equation on a tree of sections, NEURON's way: each section of length `L` is cut into
//! `nseg` segments with a node at each centre, and each section's two ends are nodes of zero area;
//! neighbouring nodes are joined by the axial conductance of the half-segments between them, and a
//! child section's 0 end is its parent's node at the connection point. The nodes are numbered so
//! that every node's parent comes first (Hines 1984), so the implicit (backward Euler) step is a
//! tree-tridiagonal solve in linear time. Membrane, channels and synapses enter as a conductance and
//! a current per node ([`Cable::step`]).

/// One unbranched section. Units as in NEURON: um, ohm cm, uF/cm2.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub length_um: f64,
    pub diam_um: f64,
    pub ra_ohm_cm: f64,
    pub cm_uf_cm2: f64,
    pub nseg: usize,
    /// The parent section and where on it (0 or 1: its ends; between: the segment containing it)
    /// this section's 0 end attaches; `None` for the root.
    pub parent: Option<(usize, f64)>,
}

/// A tree of sections discretised into nodes in Hines order.
#[derive(Debug, Clone)]
pub struct Cable {
    /// Parent node of each node (`usize::MAX` for the root); always a smaller index.
    pub parent: Vec<usize>,
    /// Axial conductance to the parent node (uS).
    pub g_axial_us: Vec<f64>,
    /// Membrane area (cm2); 0 at section ends.
    pub area_cm2: Vec<f64>,
    pub cm_uf_cm2: Vec<f64>,
    /// Membrane capacitance (nF).
    c_nf: Vec<f64>,
    /// The axial conductances (uS) meeting at each node.
    g_axial_sum: Vec<f64>,
    /// The centre node of each segment of each section: `segments[section][k]`.
    pub segments: Vec<Vec<usize>>,
}

/// Axial resistance (Mohm) of a cylinder `length_um` long, `diam_um` wide.
fn axial_mohm(ra_ohm_cm: f64, length_um: f64, diam_um: f64) -> f64 {
    let r_cm = diam_um * 1e-4 / 2.0;
    ra_ohm_cm * (length_um * 1e-4) / (std::f64::consts::PI * r_cm * r_cm) * 1e-6
}

impl Cable {
    /// Discretises `sections` (each parent listed before its children).
    pub fn new(sections: &[Section]) -> Self {
        let mut c = Cable {
            parent: Vec::new(),
            g_axial_us: Vec::new(),
            area_cm2: Vec::new(),
            cm_uf_cm2: Vec::new(),
            c_nf: Vec::new(),
            g_axial_sum: Vec::new(),
            segments: Vec::new(),
        };
        // The node at each section's 1 end, and its 0 end (the parent's node for children).
        let mut end1 = Vec::with_capacity(sections.len());
        let mut end0 = Vec::with_capacity(sections.len());
        for (si, s) in sections.iter().enumerate() {
            assert!(s.nseg > 0 && s.parent.is_none_or(|(p, _)| p < si));
            let seg_len = s.length_um / s.nseg as f64;
            let half = axial_mohm(s.ra_ohm_cm, seg_len / 2.0, s.diam_um);
            let mut push = |parent: usize, g: f64, area: f64| {
                c.parent.push(parent);
                c.g_axial_us.push(g);
                c.area_cm2.push(area);
                c.cm_uf_cm2.push(s.cm_uf_cm2);
                c.parent.len() - 1
            };
            // The 0 end: a node of its own for the root, the parent's node for a child.
            let first = match s.parent {
                None => push(usize::MAX, 0.0, 0.0),
                Some((p, x)) if x <= 0.0 => end0[p],
                Some((p, x)) if x >= 1.0 => end1[p],
                Some((p, x)) => {
                    let ps: &Section = &sections[p];
                    c.segments[p][((x * ps.nseg as f64) as usize).min(ps.nseg - 1)]
                }
            };
            end0.push(first);
            let area = std::f64::consts::PI * s.diam_um * seg_len * 1e-8;
            let mut prev = first;
            let mut nodes = Vec::with_capacity(s.nseg);
            for k in 0..s.nseg {
                // From the previous node: half a segment on each side (the 0 end has only one).
                let r = if k == 0 { half } else { 2.0 * half };
                let n = push(prev, 1.0 / r, area);
                nodes.push(n);
                prev = n;
            }
            let last = push(prev, 1.0 / half, 0.0);
            end1.push(last);
            c.segments.push(nodes);
        }
        c.c_nf = (0..c.len())
            .map(|i| c.cm_uf_cm2[i] * c.area_cm2[i] * 1e3)
            .collect();
        c.g_axial_sum = vec![0.0; c.len()];
        for i in 1..c.len() {
            c.g_axial_sum[i] += c.g_axial_us[i];
            c.g_axial_sum[c.parent[i]] += c.g_axial_us[i];
        }
        c
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Membrane area of node `i` in the units that turn a density (mS/cm2) into uS.
    #[inline]
    pub fn us_per_ms_cm2(&self, i: usize) -> f64 {
        self.area_cm2[i] * 1e3
    }

    /// One backward-Euler step of `dt` ms of `C dv/dt = -g v + ge + axial currents` in each of `L`
    /// cells of this shape (lanes): per node, the total conductance `g_us` (uS) of membrane and
    /// synapses at the step's start, and `ge_na` (nA): the sum of each conductance times its
    /// reversal plus injected current. `work` is scratch space (resized as needed).
    #[inline(always)]
    pub fn step<const L: usize>(
        &self,
        v: &mut [[f64; L]],
        g_us: &[[f64; L]],
        ge_na: &[[f64; L]],
        dt: f64,
        work: &mut Vec<[f64; L]>,
    ) {
        let n = self.len();
        work.resize(2 * n, [0.0; L]);
        let (d, b) = work.split_at_mut(n);
        let per_dt = 1.0 / dt;
        for i in 0..n {
            let c_nf = self.c_nf[i] * per_dt;
            let base = c_nf + self.g_axial_sum[i];
            for l in 0..L {
                d[i][l] = base + g_us[i][l];
                b[i][l] = c_nf * v[i][l] + ge_na[i][l];
            }
        }
        // Eliminate from the leaves up (children have larger indices), then substitute down.
        // `d` holds its reciprocal once a node is eliminated (one division per node).
        for i in (1..n).rev() {
            let (p, g) = (self.parent[i], self.g_axial_us[i]);
            let (di, bi) = (d[i], b[i]);
            for l in 0..L {
                let inv = 1.0 / di[l];
                let f = g * inv;
                d[i][l] = inv;
                d[p][l] -= f * g;
                b[p][l] += f * bi[l];
            }
        }
        for l in 0..L {
            v[0][l] = b[0][l] / d[0][l];
        }
        for i in 1..n {
            let (p, g) = (self.parent[i], self.g_axial_us[i]);
            let vp = v[p];
            for l in 0..L {
                v[i][l] = (b[i][l] + g * vp[l]) * d[i][l];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A passive step: leak `g` (mS/cm2) to `e` (mV) everywhere, current `i_na` (nA) injected.
    fn passive(c: &Cable, v: &mut [f64], g: f64, e: f64, i_na: &[f64], dt: f64) {
        let g_us: Vec<[f64; 1]> = (0..c.len()).map(|i| [g * c.us_per_ms_cm2(i)]).collect();
        let ge: Vec<[f64; 1]> = g_us.iter().zip(i_na).map(|(g, i)| [g[0] * e + i]).collect();
        let mut lanes: Vec<[f64; 1]> = v.iter().map(|&x| [x]).collect();
        c.step(&mut lanes, &g_us, &ge, dt, &mut Vec::new());
        for (x, l) in v.iter_mut().zip(lanes) {
            *x = l[0];
        }
    }

    fn cable(length_um: f64, nseg: usize) -> Section {
        Section {
            name: "dend".into(),
            length_um,
            diam_um: 2.0,
            ra_ohm_cm: 100.0,
            cm_uf_cm2: 1.0,
            nseg,
            parent: None,
        }
    }

    /// A sealed cable with a current injected at its 0 end settles to Rall's
    /// `V(x) = I R_inf cosh((L - x) / lambda) / sinh(L / lambda)`.
    #[test]
    fn sealed_cable_settles_to_the_analytic_profile() {
        let (len, nseg) = (1000.0, 201);
        let c = Cable::new(&[cable(len, nseg)]);
        let (g_pas, e) = (1e-4 * 1e3, 0.0); // 1e-4 S/cm2 in mS/cm2
        let n = c.len();
        let mut v = vec![0.0; n];
        let mut i_na = vec![0.0; n];
        i_na[0] = 0.1;
        for _ in 0..20_000 {
            passive(&c, &mut v, g_pas, e, &i_na, 0.05);
        }
        // lambda = sqrt(d Rm / (4 Ra)), R_inf = 2 Ra lambda / (pi (d/2)^2 ... ) in cgs units.
        let (d_cm, rm, ra): (f64, f64, f64) = (2e-4, 1.0 / 1e-4, 100.0);
        let lambda = (d_cm * rm / (4.0 * ra)).sqrt();
        let r_inf_mohm = (4.0 * ra * rm).sqrt() / (std::f64::consts::PI * d_cm.powf(1.5)) * 1e-6;
        let l_cm = len * 1e-4;
        let want =
            |x_cm: f64| 0.1 * r_inf_mohm * ((l_cm - x_cm) / lambda).cosh() / (l_cm / lambda).sinh();
        assert!(
            (v[0] - want(0.0)).abs() < 0.01 * want(0.0),
            "{} vs {}",
            v[0],
            want(0.0)
        );
        for k in [0, 50, 100, 150, 200] {
            let x = (k as f64 + 0.5) / nseg as f64 * l_cm;
            let got = v[c.segments[0][k]];
            assert!(
                (got - want(x)).abs() < 0.01 * want(x),
                "segment {k}: {got} vs {}",
                want(x)
            );
        }
    }

    /// An isopotential patch (one segment) relaxes with tau = Cm / g_pas.
    #[test]
    fn a_patch_relaxes_with_the_membrane_time_constant() {
        let c = Cable::new(&[cable(20.0, 1)]);
        let n = c.len();
        let zero = vec![0.0; n];
        let mut v = vec![-55.0; n];
        for _ in 0..10_000 {
            passive(&c, &mut v, 0.1, -65.0, &zero, 0.001);
        }
        // tau = 1 uF/cm2 / 0.1 mS/cm2 = 10 ms; after 10 ms the excess has fallen to 1/e.
        let want = -65.0 + 10.0 * (-1.0f64).exp();
        assert!((v[1] - want).abs() < 0.01, "{} vs {want}", v[1]);
    }

    /// Two equal branches on a stem's 1 end load it as one branch of diameter `d` with
    /// `d^3/2 = d1^3/2 + d2^3/2` and the same electrotonic length (Rall): the same input resistance.
    #[test]
    fn two_branches_obey_the_three_halves_rule() {
        let stem = cable(200.0, 21);
        // Equal electrotonic length: length grows with sqrt(diameter), as lambda does.
        let child = |d: f64| Section {
            name: "branch".into(),
            diam_um: d,
            length_um: 300.0 * d.sqrt(),
            nseg: 31,
            parent: Some((0, 1.0)),
            ..cable(300.0, 31)
        };
        let d1: f64 = 1.0;
        let d_eq = (2.0 * d1.powf(1.5)).powf(2.0 / 3.0);
        let y = Cable::new(&[stem.clone(), child(d1), child(d1)]);
        let one = Cable::new(&[stem, child(d_eq)]);
        let settle = |c: &Cable| {
            let n = c.len();
            let mut i = vec![0.0; n];
            i[0] = 0.05;
            let mut v = vec![0.0; n];
            for _ in 0..5_000 {
                passive(c, &mut v, 0.1, 0.0, &i, 0.1);
            }
            v[0]
        };
        let (a, b) = (settle(&y), settle(&one));
        assert!(a > 0.1, "{a}");
        assert!((a - b).abs() < 0.01 * b, "Y {a} vs equivalent cylinder {b}");
    }
}
