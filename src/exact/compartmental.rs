//! A multi-compartment cell: a [`Cable`] with channels at every compartment and Exp2Syn synapses
//! grouped into input channels (one channel may sit on several sections, as hnn-core's
//! "proximal" does), stepped as NEURON steps it at a fixed `dt`: events first, then the implicit
//! voltage step with currents linear in `v` at the step's start, then the gates at the new voltage.

// Per-lane loops index several `[f64; L]` arrays at once; an index reads plainest there.
#![allow(clippy::needless_range_loop)]

use super::cable::{Cable, Section};
use super::channels::{Densities, Gates, Kinetics};
use super::models::lif_conductance::exp2_norm;

/// An Exp2Syn receptor: rise (ms), decay (ms), reversal (mV).
pub type Receptor = (f64, f64, f64);

/// An input channel as data: its name, receptor and the sections it sits on.
pub type ChannelSpec<'a> = (&'a str, Receptor, &'a [&'a str]);

/// One input channel: an Exp2Syn receptor at one or more nodes, each receiving every event.
#[derive(Debug, Clone)]
pub struct SynapseChannel {
    pub name: String,
    pub rise_ms: f64,
    pub decay_ms: f64,
    pub e_rev_mv: f64,
    pub nodes: Vec<usize>,
}

/// A cell type as data: sections, their channel densities and initial voltages, synapses, and the
/// direction of each section along the apical axis (for the current dipole).
#[derive(Debug, Clone)]
pub struct CellType {
    pub name: String,
    pub sections: Vec<Section>,
    pub cable: Cable,
    /// Per node (defaults at zero-area nodes, which carry no membrane).
    pub densities: Vec<Densities>,
    pub v_init: Vec<f64>,
    pub channels: Vec<SynapseChannel>,
    pub soma: usize,
    /// Per node: the length (um) of the link to its parent projected on the apical axis, so that the
    /// axial current along it times this is its contribution to the dipole (0 for the root).
    pub dipole_dz_um: Vec<f64>,
    pub celsius: f64,
    /// The somatic voltage (mV) whose upward crossing is a spike.
    pub threshold_mv: f64,
}

/// Where a section's channel densities come from: a function of the path distance (um) from the
/// soma's 0 end to a segment's centre, so that distance-dependent densities (`ar` on the L5
/// dendrites) are per segment.
pub type DensityAt<'a> = &'a dyn Fn(f64) -> Densities;

/// Per section: its geometry, its direction in the plane of the cell (for the dipole), its initial
/// voltage and densities.
pub struct SectionSpec<'a> {
    pub section: Section,
    pub direction: [f64; 2],
    pub v_init: f64,
    pub densities: DensityAt<'a>,
}

impl CellType {
    /// Builds the cable and per-node tables. `apical` names the section whose direction is the
    /// dipole axis (`None`: no dipole); `channels` lists `(name, receptor (rise, decay, e_rev),
    /// sections)`, each synapse at its section's middle.
    pub fn new(
        name: &str,
        specs: &[SectionSpec],
        apical: Option<&str>,
        channels: &[ChannelSpec],
        celsius: f64,
    ) -> Self {
        let sections: Vec<Section> = specs.iter().map(|s| s.section.clone()).collect();
        let cable = Cable::new(&sections);
        let n = cable.len();
        let index = |name: &str| {
            sections
                .iter()
                .position(|s| s.name == name)
                .unwrap_or_else(|| panic!("no section {name}"))
        };
        // Path distance from the soma's (root's) 0 end to each section's 0 end.
        let mut start = vec![0.0; sections.len()];
        for (si, s) in sections.iter().enumerate() {
            if let Some((p, x)) = s.parent {
                start[si] = start[p] + x * sections[p].length_um;
            }
        }
        let axis = apical.map(|a| {
            let d = specs[index(a)].direction;
            let norm = (d[0] * d[0] + d[1] * d[1]).sqrt();
            [d[0] / norm, d[1] / norm]
        });
        let mut densities = vec![Densities::default(); n];
        let mut v_init = vec![0.0; n];
        let mut dz = vec![0.0; n];
        for (si, spec) in specs.iter().enumerate() {
            let s = &spec.section;
            let seg = s.length_um / s.nseg as f64;
            let cos = axis.map_or(0.0, |a| {
                let d = spec.direction;
                (a[0] * d[0] + a[1] * d[1]) / (d[0] * d[0] + d[1] * d[1]).sqrt()
            });
            for (k, &node) in cable.segments[si].iter().enumerate() {
                densities[node] = (spec.densities)(start[si] + (k as f64 + 0.5) * seg);
                v_init[node] = spec.v_init;
                dz[node] = cos * if k == 0 { seg / 2.0 } else { seg };
            }
            // The zero-area node at the section's 1 end: half a segment beyond the last centre.
            let last = *cable.segments[si].last().unwrap() + 1;
            v_init[last] = spec.v_init;
            dz[last] = cos * seg / 2.0;
            if s.parent.is_none() {
                v_init[0] = spec.v_init;
            }
        }
        let soma = cable.segments[index("soma")][sections[index("soma")].nseg / 2];
        let mut cell = CellType {
            name: name.into(),
            sections,
            cable,
            densities,
            v_init,
            channels: Vec::new(),
            soma,
            dipole_dz_um: dz,
            celsius,
            threshold_mv: 0.0,
        };
        for &(name, receptor, secs) in channels {
            cell.add_channel(name, receptor, secs);
        }
        cell
    }

    /// Adds an input channel: a receptor `(rise ms, decay ms, reversal mV)` at the middle of each
    /// of `sections`.
    pub fn add_channel(&mut self, name: &str, receptor: Receptor, sections: &[&str]) {
        let nodes = sections
            .iter()
            .map(|name| {
                let si = self
                    .sections
                    .iter()
                    .position(|s| s.name == *name)
                    .unwrap_or_else(|| panic!("no section {name}"));
                self.cable.segments[si][self.sections[si].nseg / 2]
            })
            .collect();
        self.channels.push(SynapseChannel {
            name: name.into(),
            rise_ms: receptor.0,
            decay_ms: receptor.1,
            e_rev_mv: receptor.2,
            nodes,
        });
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.channels.iter().map(|c| c.name.clone()).collect()
    }

    pub fn n_compartments(&self) -> usize {
        self.cable.area_cm2.iter().filter(|&&a| a > 0.0).count()
    }
}

/// A cell type prepared for stepping at one `dt`.
#[derive(Debug, Clone)]
pub struct Stepper {
    pub cell: CellType,
    pub kinetics: Kinetics,
    pub dt: f64,
    /// Nodes with membrane, their area factor (uS per mS/cm2) and `cad`'s decay per step.
    active: Vec<(usize, f64, f64)>,
    /// Per channel: rise and decay factors per step, Exp2Syn normalisation.
    syn: Vec<[f64; 3]>,
}

/// The state of `L` cells of one type stepped together (lanes): voltage per node, gates per
/// compartment, each channel's rise and decay conductance (nS).
#[derive(Debug, Clone, PartialEq)]
pub struct CellState<const L: usize> {
    pub v: Vec<[f64; L]>,
    pub gates: Vec<Gates<L>>,
    pub syn: Vec<[[f64; L]; 2]>,
}

/// Scratch space for one step.
#[derive(Debug, Clone)]
pub struct Work<const L: usize> {
    g_us: Vec<[f64; L]>,
    ge_na: Vec<[f64; L]>,
    ica: Vec<[f64; L]>,
    solve: Vec<[f64; L]>,
}

impl<const L: usize> Default for Work<L> {
    fn default() -> Self {
        Work {
            g_us: Vec::new(),
            ge_na: Vec::new(),
            ica: Vec::new(),
            solve: Vec::new(),
        }
    }
}

impl Stepper {
    pub fn new(cell: CellType, dt: f64) -> Self {
        let kinetics = Kinetics::new(cell.celsius, dt);
        let active = (0..cell.cable.len())
            .filter(|&i| cell.cable.area_cm2[i] > 0.0)
            .map(|i| {
                let decay = kinetics.cad_decay(&cell.densities[i]);
                (i, cell.cable.us_per_ms_cm2(i), decay)
            })
            .collect();
        let syn = cell
            .channels
            .iter()
            .map(|c| {
                [
                    (-dt / c.rise_ms).exp(),
                    (-dt / c.decay_ms).exp(),
                    exp2_norm(c.rise_ms, c.decay_ms),
                ]
            })
            .collect();
        Stepper {
            cell,
            kinetics,
            dt,
            active,
            syn,
        }
    }

    /// The state NEURON's `finitialize` gives: hnn-core's initial voltages, gates at rest there,
    /// in every lane.
    pub fn initial<const L: usize>(&self) -> CellState<L> {
        let v: Vec<[f64; L]> = self.cell.v_init.iter().map(|&x| [x; L]).collect();
        let gates = self
            .active
            .iter()
            .map(|&(i, _, _)| self.kinetics.initial(self.cell.v_init[i]))
            .collect();
        CellState {
            v,
            gates,
            syn: vec![[[0.0; L]; 2]; self.cell.channels.len()],
        }
    }

    /// An event of weight `w` (nS, the peak conductance it alone would give) on `channel` of lane `l`.
    #[inline]
    pub fn receive<const L: usize>(&self, s: &mut CellState<L>, l: usize, channel: usize, w: f64) {
        let x = w * self.syn[channel][2];
        s.syn[channel][0][l] += x;
        s.syn[channel][1][l] += x;
    }

    /// One step with `i_soma_na` injected at each lane's soma (inlined whole, so that a caller
    /// compiled for AVX2 runs all of it on AVX2).
    #[inline(always)]
    pub fn step<const L: usize>(
        &self,
        s: &mut CellState<L>,
        i_soma_na: &[f64; L],
        w: &mut Work<L>,
    ) {
        let n = self.cell.cable.len();
        if w.g_us.len() != n {
            w.g_us.resize(n, [0.0; L]);
            w.ge_na.resize(n, [0.0; L]);
            w.ica.resize(self.active.len(), [0.0; L]);
        }
        // Zero-area nodes carry no membrane: only synapses (never there) could change them.
        w.g_us.fill([0.0; L]);
        w.ge_na.fill([0.0; L]);
        for (k, &(i, a, _)) in self.active.iter().enumerate() {
            let (g, ge, ica) =
                self.kinetics
                    .membrane(&self.cell.densities[i], &s.gates[k], &s.v[i]);
            for l in 0..L {
                w.g_us[i][l] = g[l] * a;
                w.ge_na[i][l] = ge[l] * a;
            }
            w.ica[k] = ica;
        }
        for (c, st) in self.cell.channels.iter().zip(&s.syn) {
            for &i in &c.nodes {
                for l in 0..L {
                    let g = (st[1][l] - st[0][l]) * 1e-3;
                    w.g_us[i][l] += g;
                    w.ge_na[i][l] += g * c.e_rev_mv;
                }
            }
        }
        for l in 0..L {
            w.ge_na[self.cell.soma][l] += i_soma_na[l];
        }
        self.cell
            .cable
            .step(&mut s.v, &w.g_us, &w.ge_na, self.dt, &mut w.solve);
        for (k, &(i, _, decay)) in self.active.iter().enumerate() {
            self.kinetics.advance(
                &self.cell.densities[i],
                &mut s.gates[k],
                &s.v[i],
                &w.ica[k],
                decay,
            );
        }
        for (st, f) in s.syn.iter_mut().zip(&self.syn) {
            for l in 0..L {
                st[0][l] *= f[0];
                st[1][l] *= f[1];
            }
        }
    }

    /// The somatic voltage (mV) of lane `l`.
    #[inline]
    pub fn v_soma<const L: usize>(&self, s: &CellState<L>, l: usize) -> f64 {
        s.v[self.cell.soma][l]
    }

    /// The current dipole (nA um = fA m) of each lane along the apical axis: each axial current,
    /// parent to child, times the link's projection on the axis.
    pub fn dipole<const L: usize>(&self, s: &CellState<L>) -> [f64; L] {
        let c = &self.cell.cable;
        let mut q = [0.0; L];
        for i in 1..c.len() {
            let k = c.g_axial_us[i] * self.cell.dipole_dz_um[i];
            if k != 0.0 {
                for l in 0..L {
                    q[l] += k * (s.v[c.parent[i]][l] - s.v[i][l]);
                }
            }
        }
        q
    }

    /// The summed synaptic current (nA) into each lane at its voltages.
    pub fn synaptic_current<const L: usize>(&self, s: &CellState<L>) -> [f64; L] {
        let mut total = [0.0; L];
        for (c, st) in self.cell.channels.iter().zip(&s.syn) {
            for &i in &c.nodes {
                for l in 0..L {
                    total[l] += (st[1][l] - st[0][l]) * 1e-3 * (c.e_rev_mv - s.v[i][l]);
                }
            }
        }
        total
    }
}
