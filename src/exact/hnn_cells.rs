//! hnn-core's cell types as data (hnn-core 0.6: `cells_default`, `params_default`; Jones et al.
//! 2009): the L2/3 and L5 pyramidal cells (soma, apical trunk, obliques and tuft, three basal
//! sections) and the basket cell (one soma), with their geometry, channel densities, initial
//! voltages, synapses and where those sit ("proximal": oblique and basal dendrites; "distal":
//! the tuft; "soma": inhibition). hnn-core's network runs them at 37 C.

use super::cable::Section;
use super::channels::{Densities, tadj};
use super::compartmental::{CellType, ChannelSpec, Receptor, SectionSpec};
use crate::spec::{CellSpec, ChannelParams, HnnCell};

/// Input channels of the pyramidal cells, in channel order.
pub const PYRAMIDAL_CHANNELS: [&str; 10] = [
    "proximal_ampa",
    "proximal_nmda",
    "proximal_gabaa",
    "proximal_gabab",
    "distal_ampa",
    "distal_nmda",
    "distal_gabaa",
    "distal_gabab",
    "soma_gabaa",
    "soma_gabab",
];
/// Input channels of the basket cell, in channel order.
pub const BASKET_CHANNELS: [&str; 3] = ["soma_ampa", "soma_nmda", "soma_gabaa"];

/// hnn-core's initial somatic voltages (mV).
pub const L2_PYRAMIDAL_V_INIT: f64 = -71.46;
pub const L5_PYRAMIDAL_V_INIT: f64 = -72.0;
pub const BASKET_V_INIT: f64 = -64.9737;

/// hnn-core's number of segments: one up to 100 um, else `L / 50` made odd.
fn nseg(length_um: f64) -> usize {
    if length_um <= 100.0 {
        1
    } else {
        let n = (length_um / 50.0) as usize;
        if n.is_multiple_of(2) { n + 1 } else { n }
    }
}

/// Receptors `(rise ms, decay ms, reversal mV)` of hnn-core's Exp2Syn synapses.
pub const AMPA: Receptor = (0.5, 5.0, 0.0);
pub const NMDA: Receptor = (1.0, 20.0, 0.0);
pub const GABAA: Receptor = (0.5, 5.0, -80.0);
pub const GABAB: Receptor = (1.0, 20.0, -80.0);

const PROXIMAL: &[&str] = &["apical_oblique", "basal_2", "basal_3"];
const DISTAL: &[&str] = &["apical_tuft"];
const SOMA: &[&str] = &["soma"];

/// The pyramidal cells' input channels ([`PYRAMIDAL_CHANNELS`]): excitation and inhibition on the
/// proximal and distal dendrites, inhibition at the soma.
fn pyramidal_channels() -> Vec<ChannelSpec<'static>> {
    let sites = [
        PROXIMAL, PROXIMAL, PROXIMAL, PROXIMAL, DISTAL, DISTAL, DISTAL, DISTAL, SOMA, SOMA,
    ];
    let receptors = [
        AMPA, NMDA, GABAA, GABAB, AMPA, NMDA, GABAA, GABAB, GABAA, GABAB,
    ];
    (0..PYRAMIDAL_CHANNELS.len())
        .map(|k| (PYRAMIDAL_CHANNELS[k], receptors[k], sites[k]))
        .collect()
}

/// One section: name, length, diameter, parent (name, end), direction (x, z) from hnn-core's end
/// points.
type Geometry = (
    &'static str,
    f64,
    f64,
    Option<(&'static str, f64)>,
    [f64; 2],
);

/// One part's channels in hnn-core's units: `hh2` in S/cm2 and mV, `km`, `ca`, `kca` in pS/um2,
/// `cat` and `ar` in S/cm2, `cad`'s removal time in ms (0: no `cad`).
#[derive(Debug, Clone, Copy, Default)]
struct Membrane {
    gnabar_hh2: f64,
    gkbar_hh2: f64,
    gl_hh2: f64,
    el_hh2: f64,
    gbar_km: f64,
    gbar_ca: f64,
    gbar_kca: f64,
    gbar_cat: f64,
    gbar_ar: f64,
    taur_cad: f64,
}

impl Membrane {
    /// hnn-core's values replaced by those an experiment sets.
    fn with(mut self, p: &ChannelParams) -> Self {
        let set = |x: &mut f64, v: Option<f64>| *x = v.unwrap_or(*x);
        set(&mut self.gnabar_hh2, p.gnabar_hh2);
        set(&mut self.gkbar_hh2, p.gkbar_hh2);
        set(&mut self.gl_hh2, p.gl_hh2);
        set(&mut self.el_hh2, p.el_hh2);
        set(&mut self.gbar_km, p.gbar_km);
        set(&mut self.gbar_ca, p.gbar_ca);
        set(&mut self.gbar_kca, p.gbar_kca);
        set(&mut self.gbar_cat, p.gbar_cat);
        set(&mut self.gbar_ar, p.gbar_ar);
        set(&mut self.taur_cad, p.taur_cad);
        self
    }

    /// The densities the solver takes (S/cm2, temperature factors on `km`, `ca`, `kca` as their
    /// NMODL files put them), with `ar` scaled by `ar_scale`.
    fn densities(&self, tadj: f64, ar_scale: f64) -> Densities {
        let per_ps_um2 = 1e-4 * tadj;
        Densities {
            gnabar_hh2: self.gnabar_hh2,
            gkbar_hh2: self.gkbar_hh2,
            gl_hh2: self.gl_hh2,
            el_hh2: self.el_hh2,
            km: self.gbar_km * per_ps_um2,
            ca: self.gbar_ca * per_ps_um2,
            kca: self.gbar_kca * per_ps_um2,
            cat: self.gbar_cat,
            ar: self.gbar_ar * ar_scale,
            taur_cad: self.taur_cad,
        }
    }
}

/// A cell type in hnn-core's terms, before an experiment's overrides.
struct Recipe {
    name: &'static str,
    geometry: Vec<Geometry>,
    ra_ohm_cm: f64,
    cm_uf_cm2: f64,
    v_init: fn(&str) -> f64,
    soma: Membrane,
    dendrites: Membrane,
    /// Whether the dendrites' `ar` grows as `exp(0.003 x)` with path distance `x` (L5).
    ar_grows: bool,
    apical: Option<&'static str>,
    channels: Vec<ChannelSpec<'static>>,
}

impl Recipe {
    fn build(&self, p: &HnnCell) -> CellType {
        let tadj = tadj(p.celsius);
        let soma = self.soma.with(&p.soma);
        let dend = self.dendrites.with(&p.dendrites);
        let grows = self.ar_grows;
        let soma_at = move |_: f64| soma.densities(tadj, 1.0);
        let dend_at =
            move |x: f64| dend.densities(tadj, if grows { (3e-3 * x).exp() } else { 1.0 });
        let index = |name: &str| self.geometry.iter().position(|g| g.0 == name);
        let specs: Vec<SectionSpec> = self
            .geometry
            .iter()
            .map(|&(name, length, diam, parent, direction)| {
                let o = p.sections.get(name).copied().unwrap_or_default();
                let length_um = o.length_um.unwrap_or(length);
                SectionSpec {
                    section: Section {
                        name: name.into(),
                        length_um,
                        diam_um: o.diam_um.unwrap_or(diam),
                        ra_ohm_cm: o.ra_ohm_cm.unwrap_or(self.ra_ohm_cm),
                        cm_uf_cm2: o.cm_uf_cm2.unwrap_or(self.cm_uf_cm2),
                        nseg: nseg(length_um),
                        parent: parent.map(|(p, x)| (index(p).expect("parent listed"), x)),
                    },
                    direction,
                    v_init: (self.v_init)(name),
                    densities: if name == "soma" { &soma_at } else { &dend_at },
                }
            })
            .collect();
        let mut cell = CellType::new(self.name, &specs, self.apical, &self.channels, p.celsius);
        cell.threshold_mv = p.threshold_mv;
        cell
    }
}

/// The section names of each cell type, in order.
const L2_SECTIONS: [&str; 8] = [
    "soma",
    "apical_trunk",
    "apical_1",
    "apical_tuft",
    "apical_oblique",
    "basal_1",
    "basal_2",
    "basal_3",
];
const L5_SECTIONS: [&str; 9] = [
    "soma",
    "apical_trunk",
    "apical_1",
    "apical_2",
    "apical_tuft",
    "apical_oblique",
    "basal_1",
    "basal_2",
    "basal_3",
];

/// The section names of an hnn-core model (`None` for other models).
pub fn section_names(spec: &CellSpec) -> Option<&'static [&'static str]> {
    match spec {
        CellSpec::HnnL2Pyramidal(_) => Some(&L2_SECTIONS),
        CellSpec::HnnL5Pyramidal(_) => Some(&L5_SECTIONS),
        CellSpec::HnnBasket(_) => Some(&["soma"]),
        _ => None,
    }
}

/// hnn-core's L2/3 pyramidal cell (`L2_pyramidal`): `hh2` and `km` everywhere.
fn l2_recipe() -> Recipe {
    let part = |gnabar: f64| Membrane {
        gnabar_hh2: gnabar,
        gkbar_hh2: 0.01,
        gl_hh2: 4.26e-5,
        el_hh2: -65.0,
        gbar_km: 250.0,
        ..Default::default()
    };
    Recipe {
        name: "hnn_l2_pyramidal",
        geometry: vec![
            ("soma", 22.1, 23.4, None, [0.0, 13.0]),
            ("apical_trunk", 59.5, 4.25, Some(("soma", 1.0)), [0.0, 35.0]),
            (
                "apical_1",
                306.0,
                4.08,
                Some(("apical_trunk", 1.0)),
                [0.0, 180.0],
            ),
            (
                "apical_tuft",
                238.0,
                3.4,
                Some(("apical_1", 1.0)),
                [0.0, 140.0],
            ),
            (
                "apical_oblique",
                340.0,
                3.91,
                Some(("apical_trunk", 1.0)),
                [-200.0, 0.0],
            ),
            ("basal_1", 85.0, 4.25, Some(("soma", 0.0)), [0.0, -50.0]),
            (
                "basal_2",
                255.0,
                2.72,
                Some(("basal_1", 1.0)),
                [-106.0, -106.0],
            ),
            (
                "basal_3",
                255.0,
                2.72,
                Some(("basal_1", 1.0)),
                [106.0, -106.0],
            ),
        ],
        ra_ohm_cm: 200.0,
        cm_uf_cm2: 0.6195,
        v_init: |_| L2_PYRAMIDAL_V_INIT,
        soma: part(0.18),
        dendrites: part(0.15),
        ar_grows: false,
        apical: Some("apical_trunk"),
        channels: pyramidal_channels(),
    }
}

/// hnn-core's L5 pyramidal cell (`L5_pyramidal`), with calcium channels, calcium-dependent
/// potassium and the anomalous rectifier, whose density grows along the dendrites as
/// `1e-6 exp(0.003 x)` S/cm2 at path distance `x` um from the soma.
fn l5_recipe() -> Recipe {
    let part = |gnabar: f64, el: f64| Membrane {
        gnabar_hh2: gnabar,
        gkbar_hh2: 0.01,
        gl_hh2: 4.26e-5,
        el_hh2: el,
        gbar_km: 200.0,
        gbar_ca: 60.0,
        gbar_kca: 2e-4,
        gbar_cat: 2e-4,
        gbar_ar: 1e-6,
        taur_cad: 20.0,
    };
    Recipe {
        name: "hnn_l5_pyramidal",
        geometry: vec![
            ("soma", 39.0, 28.9, None, [0.0, 23.0]),
            (
                "apical_trunk",
                102.0,
                10.2,
                Some(("soma", 1.0)),
                [0.0, 60.0],
            ),
            (
                "apical_1",
                680.0,
                7.48,
                Some(("apical_trunk", 1.0)),
                [0.0, 400.0],
            ),
            (
                "apical_2",
                680.0,
                4.93,
                Some(("apical_1", 1.0)),
                [0.0, 400.0],
            ),
            (
                "apical_tuft",
                425.0,
                3.4,
                Some(("apical_2", 1.0)),
                [0.0, 250.0],
            ),
            (
                "apical_oblique",
                255.0,
                5.1,
                Some(("apical_trunk", 1.0)),
                [-150.0, 0.0],
            ),
            ("basal_1", 85.0, 6.8, Some(("soma", 0.0)), [0.0, -50.0]),
            (
                "basal_2",
                255.0,
                8.5,
                Some(("basal_1", 1.0)),
                [-106.0, -106.0],
            ),
            (
                "basal_3",
                255.0,
                8.5,
                Some(("basal_1", 1.0)),
                [106.0, -106.0],
            ),
        ],
        ra_ohm_cm: 200.0,
        cm_uf_cm2: 0.85,
        v_init: |name| match name {
            "apical_1" => -71.32,
            "apical_2" => -69.08,
            "apical_tuft" => -67.30,
            _ => L5_PYRAMIDAL_V_INIT,
        },
        soma: part(0.16, -65.0),
        dendrites: part(0.14, -71.0),
        ar_grows: true,
        apical: Some("apical_trunk"),
        channels: pyramidal_channels(),
    }
}

/// hnn-core's basket cell (L2 and L5 alike): one 39 x 20 um soma with `hh2` at its defaults;
/// excitation and inhibition all at the soma.
fn basket_recipe() -> Recipe {
    Recipe {
        name: "hnn_basket",
        geometry: vec![("soma", 39.0, 20.0, None, [0.0, 39.0])],
        ra_ohm_cm: 200.0,
        cm_uf_cm2: 0.85,
        v_init: |_| BASKET_V_INIT,
        soma: Membrane {
            gnabar_hh2: 0.12,
            gkbar_hh2: 0.036,
            gl_hh2: 0.0003,
            el_hh2: -54.3,
            ..Default::default()
        },
        dendrites: Membrane::default(),
        ar_grows: false,
        apical: None,
        channels: vec![
            ("soma_ampa", AMPA, SOMA),
            ("soma_nmda", NMDA, SOMA),
            ("soma_gabaa", GABAA, SOMA),
        ],
    }
}

/// hnn-core's L2/3 pyramidal cell with the parameters of `p` (hnn-core's own where unset).
pub fn l2_pyramidal(p: &HnnCell) -> CellType {
    l2_recipe().build(p)
}

/// hnn-core's L5 pyramidal cell with the parameters of `p`.
pub fn l5_pyramidal(p: &HnnCell) -> CellType {
    l5_recipe().build(p)
}

/// hnn-core's basket cell with the parameters of `p`.
pub fn basket(p: &HnnCell) -> CellType {
    basket_recipe().build(p)
}

/// The cell type of an hnn-core model in an experiment file (`None` for other models).
pub fn cell_type(spec: &CellSpec) -> Option<CellType> {
    let c = spec.hnn()?;
    Some(match spec {
        CellSpec::HnnL2Pyramidal(_) => l2_pyramidal(c),
        CellSpec::HnnL5Pyramidal(_) => l5_pyramidal(c),
        _ => basket(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::compartmental::{Stepper, Work};

    fn spec(text: &str) -> CellSpec {
        toml::from_str(text).unwrap()
    }

    /// An experiment's overrides reach the cell: a longer section gets hnn-core's segment count for
    /// its new length, and a basket cell without its sodium and potassium conductances is a passive
    /// patch relaxing from its initial voltage to `el_hh2` with `tau = cm / gl`.
    #[test]
    fn overrides_reach_the_cell() {
        let long = spec("model = \"hnn_l5_pyramidal\"\nsections.apical_1 = { length_um = 1000.0 }");
        assert_eq!(cell_type(&long).unwrap().n_compartments(), 55 - 13 + 21);
        let passive = spec(
            "model = \"hnn_basket\"\nsoma = { gnabar_hh2 = 0.0, gkbar_hh2 = 0.0, el_hh2 = -60.0 }",
        );
        let st = Stepper::new(cell_type(&passive).unwrap(), 0.001);
        let mut s = st.initial::<1>();
        let mut w = Work::default();
        for _ in 0..5_000 {
            st.step(&mut s, &[0.0], &mut w);
        }
        let tau: f64 = 0.85 / 0.0003 * 1e-3;
        let want = -60.0 + (BASKET_V_INIT + 60.0) * (-5.0 / tau).exp();
        let got = st.v_soma(&s, 0);
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
    }

    /// hnn-core's segment counts: L5 has 1 + 3 + 13 + 13 + 9 + 5 + 1 + 5 + 5 compartments.
    #[test]
    fn segment_counts_follow_hnn_core() {
        assert_eq!(l5_pyramidal(&HnnCell::default()).n_compartments(), 55);
        assert_eq!(
            l2_pyramidal(&HnnCell::default()).n_compartments(),
            1 + 1 + 7 + 5 + 7 + 1 + 5 + 5
        );
        assert_eq!(basket(&HnnCell::default()).n_compartments(), 1);
        assert_eq!(nseg(100.0), 1);
        assert_eq!(nseg(102.0), 3);
        assert_eq!(nseg(425.0), 9);
    }
}
