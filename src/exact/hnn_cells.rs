//! hnn-core's cell types as data (hnn-core 0.6: `cells_default`, `params_default`; Jones et al.
//! 2009): the L2/3 and L5 pyramidal cells (soma, apical trunk, obliques and tuft, three basal
//! sections) and the basket cell (one soma), with their geometry, channel densities, initial
//! voltages, synapses and where those sit ("proximal": oblique and basal dendrites; "distal":
//! the tuft; "soma": inhibition). hnn-core's network runs them at 37 C.

use super::cable::Section;
use super::channels::{Densities, tadj};
use super::compartmental::{CellType, ChannelSpec, Receptor, SectionSpec};
use crate::spec::CellSpec;

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

/// One pyramidal section: name, length, diameter, parent (name, end), direction (x, z).
type Geometry = (
    &'static str,
    f64,
    f64,
    Option<(&'static str, f64)>,
    [f64; 2],
);

fn sections(geometry: &[Geometry], ra: f64, cm: f64) -> Vec<Section> {
    geometry
        .iter()
        .map(|&(name, length, diam, parent, _)| Section {
            name: name.into(),
            length_um: length,
            diam_um: diam,
            ra_ohm_cm: ra,
            cm_uf_cm2: cm,
            nseg: nseg(length),
            parent: parent.map(|(p, x)| {
                (
                    geometry
                        .iter()
                        .position(|g| g.0 == p)
                        .expect("parent listed"),
                    x,
                )
            }),
        })
        .collect()
}

/// hnn-core's L2/3 pyramidal cell (`L2_pyramidal`) at `celsius`.
pub fn l2_pyramidal(celsius: f64) -> CellType {
    // Directions from hnn-core's section end points (x, z).
    let geometry: [Geometry; 8] = [
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
    ];
    let tadj = tadj(celsius);
    // km 250 pS/um2 (1e-4 S/cm2 per pS/um2, scaled by its temperature factor).
    let membrane = |gnabar: f64| Densities {
        gnabar_hh2: gnabar,
        gkbar_hh2: 0.01,
        gl_hh2: 4.26e-5,
        el_hh2: -65.0,
        km: 250.0 * 1e-4 * tadj,
        ..Default::default()
    };
    let (soma, dend) = (membrane(0.18), membrane(0.15));
    let soma_at = move |_: f64| soma;
    let dend_at = move |_: f64| dend;
    let specs: Vec<SectionSpec> = sections(&geometry, 200.0, 0.6195)
        .into_iter()
        .zip(&geometry)
        .map(|(section, g)| SectionSpec {
            direction: g.4,
            v_init: L2_PYRAMIDAL_V_INIT,
            densities: if g.0 == "soma" { &soma_at } else { &dend_at },
            section,
        })
        .collect();
    CellType::new(
        "hnn_l2_pyramidal",
        &specs,
        Some("apical_trunk"),
        &pyramidal_channels(),
        celsius,
    )
}

/// hnn-core's L5 pyramidal cell (`L5_pyramidal`), with calcium channels, calcium-dependent
/// potassium and the anomalous rectifier, whose density grows along the dendrites as
/// `1e-6 exp(0.003 x)` S/cm2 at path distance `x` um from the soma.
pub fn l5_pyramidal(celsius: f64) -> CellType {
    let geometry: [Geometry; 9] = [
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
    ];
    let v_init = |name: &str| match name {
        "apical_1" => -71.32,
        "apical_2" => -69.08,
        "apical_tuft" => -67.30,
        _ => -72.0,
    };
    let tadj = tadj(celsius);
    let per_ps_um2 = 1e-4 * tadj;
    let membrane = |gnabar: f64, el: f64| Densities {
        gnabar_hh2: gnabar,
        gkbar_hh2: 0.01,
        gl_hh2: 4.26e-5,
        el_hh2: el,
        km: 200.0 * per_ps_um2,
        ca: 60.0 * per_ps_um2,
        kca: 2e-4 * per_ps_um2,
        cat: 2e-4,
        ar: 1e-6,
        taur_cad: 20.0,
    };
    let soma = membrane(0.16, -65.0);
    let dend = membrane(0.14, -71.0);
    let soma_at = move |_: f64| soma;
    let dend_at = move |x: f64| Densities {
        ar: 1e-6 * (3e-3 * x).exp(),
        ..dend
    };
    let specs: Vec<SectionSpec> = sections(&geometry, 200.0, 0.85)
        .into_iter()
        .zip(&geometry)
        .map(|(section, g)| SectionSpec {
            direction: g.4,
            v_init: v_init(g.0),
            densities: if g.0 == "soma" { &soma_at } else { &dend_at },
            section,
        })
        .collect();
    CellType::new(
        "hnn_l5_pyramidal",
        &specs,
        Some("apical_trunk"),
        &pyramidal_channels(),
        celsius,
    )
}

/// hnn-core's basket cell (L2 and L5 alike): one 39 x 20 um soma with `hh2` at its defaults;
/// excitation and inhibition all at the soma.
pub fn basket(celsius: f64) -> CellType {
    let soma = Densities {
        gnabar_hh2: 0.12,
        gkbar_hh2: 0.036,
        gl_hh2: 0.0003,
        el_hh2: -54.3,
        ..Default::default()
    };
    let at = move |_: f64| soma;
    let specs = [SectionSpec {
        section: Section {
            name: "soma".into(),
            length_um: 39.0,
            diam_um: 20.0,
            ra_ohm_cm: 200.0,
            cm_uf_cm2: 0.85,
            nseg: 1,
            parent: None,
        },
        direction: [0.0, 39.0],
        v_init: BASKET_V_INIT,
        densities: &at,
    }];
    CellType::new(
        "hnn_basket",
        &specs,
        None,
        &[
            ("soma_ampa", AMPA, SOMA),
            ("soma_nmda", NMDA, SOMA),
            ("soma_gabaa", GABAA, SOMA),
        ],
        celsius,
    )
}

/// The cell type of an hnn-core model in an experiment file (`None` for other models).
pub fn cell_type(spec: &CellSpec) -> Option<CellType> {
    let c = spec.hnn()?;
    let mut cell = match spec {
        CellSpec::HnnL2Pyramidal(_) => l2_pyramidal(c.celsius),
        CellSpec::HnnL5Pyramidal(_) => l5_pyramidal(c.celsius),
        _ => basket(c.celsius),
    };
    cell.threshold_mv = c.threshold_mv;
    Some(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hnn-core's segment counts: L5 has 1 + 3 + 13 + 13 + 9 + 5 + 1 + 5 + 5 compartments.
    #[test]
    fn segment_counts_follow_hnn_core() {
        assert_eq!(l5_pyramidal(37.0).n_compartments(), 55);
        assert_eq!(
            l2_pyramidal(37.0).n_compartments(),
            1 + 1 + 7 + 5 + 7 + 1 + 5 + 5
        );
        assert_eq!(basket(37.0).n_compartments(), 1);
        assert_eq!(nseg(100.0), 1);
        assert_eq!(nseg(102.0), 3);
        assert_eq!(nseg(425.0), 9);
    }
}
