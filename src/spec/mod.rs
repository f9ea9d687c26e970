//! The network as data: an experiment file (TOML) describes populations, connections, drives,
//! the simulation and what to record. Loading validates every field and names the offending one,
//! so a mistake is caught before a long run starts. [`Connectome`] turns a spec into concrete,
//! seeded synapses shared by every engine that runs the spec.

mod cells;
mod connectome;
pub mod edges_file;

pub use cells::{
    CellSpec, ChannelParams, ConductanceReceptor, CurrentChannel, HnnCell, Kick, LifConductance,
    LifCurrent, Receptors, SectionParams,
};
pub use connectome::{Connectome, Segment};
pub use edges_file::FileEdges;

use crate::error::{Result, SurgeError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// A complete, seeded experiment description.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Short name; the default output folder is `experiments/out/<name>/`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// HDF5 file of the synapses of `rule = "file"` connections (written by `surge import sonata`),
    /// relative to the experiment file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectome: Option<String>,
    /// Checksum of the synapses the experiment was written for ([`edges_file::checksum`]); a
    /// connectome file that no longer matches it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectome_checksum: Option<String>,
    pub simulation: SimulationSpec,
    pub populations: Vec<PopulationSpec>,
    #[serde(default)]
    pub connections: Vec<ConnectionSpec>,
    #[serde(default)]
    pub drives: Vec<DriveSpec>,
    #[serde(default)]
    pub recording: RecordingSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimulationSpec {
    /// Integration step (ms).
    #[serde(default = "default_dt")]
    pub dt_ms: f64,
    /// Simulated biological time (ms).
    pub duration_ms: f64,
    /// Seed for the connectome, initial conditions and drive noise. Required: nothing in Surge is unseeded.
    pub seed: Option<u64>,
}

fn default_dt() -> f64 {
    0.1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    pub name: String,
    pub size: usize,
    pub neuron: CellSpec,
    /// Initial membrane potential: a number (mV) or `[low, high]` for a uniform draw. Default: the reset potential.
    #[serde(default)]
    pub v_init_mv: Option<VInit>,
    /// Where the cells sit in the plane of the column, for distance-dependent (`gaussian`) connections.
    #[serde(default)]
    pub layout: Option<Layout>,
}

/// Cell positions in the plane, in units of the grid spacing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Layout {
    /// `layout = { grid = [nx, ny] }`: one cell per grid point, x-major (hnn-core's pyramidal cells).
    Grid([usize; 2]),
    /// `layout = { hnn_basket = [nx, ny] }`: hnn-core's basket cells on the pyramidal grid: every
    /// third column from x = 0 on even rows, from x = 1 on odd rows, ordered by row (35 on 10 x 10).
    HnnBasket([usize; 2]),
}

impl Layout {
    pub fn positions(&self) -> Vec<[f64; 2]> {
        match *self {
            Layout::Grid([nx, ny]) => (0..nx)
                .flat_map(|x| (0..ny).map(move |y| [x as f64, y as f64]))
                .collect(),
            Layout::HnnBasket([nx, ny]) => {
                let rows = |x0: usize, y0: usize| {
                    (x0..nx)
                        .step_by(3)
                        .flat_map(move |x| (y0..ny).step_by(2).map(move |y| [x as f64, y as f64]))
                };
                let mut p: Vec<[f64; 2]> = rows(0, 0).chain(rows(1, 1)).collect();
                // Stable: within a row, the order above is kept.
                p.sort_by(|a, b| a[1].total_cmp(&b[1]));
                p
            }
        }
    }
}

/// Initial voltage: a constant or a uniform range.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum VInit {
    Constant(f64),
    Uniform([f64; 2]),
}

/// How presynaptic cells are chosen for each postsynaptic cell.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Every post cell receives exactly `k` inputs from distinct pre cells.
    FixedIndegree,
    /// Every pair is connected independently with probability `p`.
    Probability,
    /// Every pair is connected.
    AllToAll,
    /// Every pair is connected with hnn-core's distance dependence: at in-plane distance `d` (grid
    /// units, from both populations' `layout`), weight `weight exp(-d^2 / lamtha^2)` and delay
    /// `delay_ms / exp(-d^2 / lamtha^2)`. A synapse whose delay would exceed the longest the engine
    /// holds (65535 steps / 2) is left out; its weight is below `delay_ms / that` of the peak.
    Gaussian,
    /// The synapses listed in group `edges` of the experiment's `connectome` file: each with its
    /// own weight (times `gain`) and delay.
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    pub pre: String,
    pub post: String,
    /// Receptor channel of the post population's neuron model (e.g. `syn`, `ampa`, `gabaa`).
    pub channel: String,
    pub rule: Rule,
    /// In-degree for `fixed_indegree`.
    pub k: Option<usize>,
    /// Connection probability for `probability`.
    pub p: Option<f64>,
    /// Mean weight: mV for current-based cells (see the channel's `kick`), nS peak conductance for
    /// conductance-based cells. Negative values are inhibitory for current-based cells only.
    /// Required by every rule but `file`, whose weights are in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// Standard deviation of a normal weight distribution; weights are clipped at zero so none changes sign.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight_sd: f64,
    /// Axonal + synaptic delay (ms), rounded to the nearest step, at least one step. Required by
    /// every rule but `file`, whose delays are in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    /// Standard deviation of a normal delay distribution (ms), clipped below at one step.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_sd_ms: f64,
    /// hnn-style gain multiplying every weight of this connection group (the quantity optimizers fit).
    #[serde(default = "one")]
    pub gain: f64,
    /// Allow a cell to connect to itself when pre == post.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autapses: bool,
    /// Space constant (grid units) of the `gaussian` rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lamtha: Option<f64>,
    /// The group of the `connectome` file holding this connection's synapses (`rule = "file"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<String>,
    /// The synapses read from that group when the experiment is loaded.
    #[serde(skip)]
    pub synapses: Option<Arc<FileEdges>>,
}

fn one() -> f64 {
    1.0
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// External input to a set of populations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DriveSpec {
    pub name: String,
    pub kind: DriveKind,
    /// Target populations.
    pub targets: Vec<String>,
    /// Fraction of the cells of each target population that receive the drive (chosen with the seed).
    #[serde(default = "one")]
    pub fraction: f64,
    /// Receptor channel (poisson and spikes drives).
    pub channel: Option<String>,
    /// Rate of each independent source (Hz), poisson drives.
    pub rate_hz: Option<f64>,
    /// Number of independent Poisson sources per cell (their sum is one Poisson process).
    #[serde(default = "one_usize")]
    pub n_sources: usize,
    /// Weight of each input spike (same units as connection weights).
    pub weight: Option<f64>,
    /// Constant input for bias drives: mV for current-based cells (added to the membrane equation), pA for conductance-based cells.
    pub amplitude: Option<f64>,
    /// Noise strength (mV) of white_noise drives.
    pub sigma: Option<f64>,
    /// Spike times (ms) for spikes drives; every target cell receives every time.
    pub times_ms: Option<Vec<f64>>,
    /// The drive acts on [start_ms, stop_ms).
    #[serde(default)]
    pub start_ms: f64,
    pub stop_ms: Option<f64>,
}

fn one_usize() -> usize {
    1
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DriveKind {
    /// Independent Poisson spike trains per cell.
    Poisson,
    /// Constant input.
    Bias,
    /// The same given spike times to every target cell.
    Spikes,
    /// Gaussian white noise of mean `amplitude` and strength `sigma` (current-based cells only):
    /// `tau_m dv/dt = ... + amplitude + sigma sqrt(tau_m) xi(t)`, so the free membrane's std is `sigma / sqrt(2)`.
    WhiteNoise,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RecordingSpec {
    /// Populations whose spikes are recorded; default all.
    pub spikes: Option<Vec<String>>,
    /// Cells whose voltage and per-channel synaptic drive are recorded every step.
    #[serde(default)]
    pub voltages: Vec<VoltageRecord>,
    /// Named population signals, recorded every step.
    #[serde(default)]
    pub signals: Vec<SignalSpec>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VoltageRecord {
    pub population: String,
    /// Cell indices within the population.
    pub cells: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignalSpec {
    pub name: String,
    pub kind: SignalKind,
    pub populations: Vec<String>,
}

/// Population signals. The same definitions are used by every engine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Mean somatic voltage over the cells (mV).
    MeanVoltage,
    /// Population firing rate (Hz): spikes in the step / cells / dt.
    Rate,
    /// Summed synaptic drive over the cells: sum of channel currents u_c (mV) for current-based cells,
    /// sum of g_c B(v) (E_c - v) (pA) for conductance-based cells. A dipole proxy for pyramidal cells.
    SynapticCurrent,
    /// The current dipole (nA m) along the apical dendrites, summed over the cells: each axial current
    /// times its length along the apical axis, as HNN computes it (multi-compartment cells only).
    Dipole,
}

impl NetworkSpec {
    /// Parses and validates an experiment from TOML text; `origin` names the source in errors.
    /// A `connectome` file is found relative to the working directory.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        Self::from_toml_str_in(text, origin, Path::new(""))
    }

    /// Parses and validates an experiment from TOML text whose `connectome` file (if any) is
    /// relative to `folder`.
    pub fn from_toml_str_in(text: &str, origin: &str, folder: &Path) -> Result<Self> {
        let mut spec: NetworkSpec = toml::from_str(text).map_err(|e| SurgeError::Toml {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        spec.validate()?;
        if spec.connectome_checksum.is_some() && spec.connectome.is_none() {
            return Err(SurgeError::spec(
                "connectome_checksum",
                "given without a connectome file",
                "remove it, or name the file with connectome = \"<file>.h5\"",
            ));
        }
        if spec.connectome.is_some() {
            spec.read_connectome(folder)?;
            spec.check_network_fits()?;
        }
        Ok(spec)
    }

    /// Reads, parses and validates an experiment file.
    pub fn load(path: &Path) -> Result<(Self, String)> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
        let folder = path.parent().unwrap_or(Path::new(""));
        let spec = Self::from_toml_str_in(&text, &path.display().to_string(), folder)?;
        Ok((spec, text))
    }

    /// Reads the synapses of every `rule = "file"` connection from the `connectome` file and checks
    /// them against the populations: indices in range, finite weights (non-negative conductances),
    /// delays of at least one step that the engine can hold.
    fn read_connectome(&mut self, folder: &Path) -> Result<()> {
        let name = self.connectome.clone().expect("checked by the caller");
        let path = folder.join(&name);
        if !self.connections.iter().any(|c| c.rule == Rule::File) {
            return Err(SurgeError::spec(
                "connectome",
                format!("`{name}` is named, and no connection has rule = \"file\""),
                "remove connectome, or take connections from it with rule = \"file\" and edges",
            ));
        }
        let missing = |why: String| {
            SurgeError::spec(
                "connectome",
                format!("cannot open `{}`: {why}", path.display()),
                "give the path of the connectome file relative to the experiment file's folder",
            )
        };
        if !path.is_file() {
            return Err(missing("no such file".into()));
        }
        let file = hdf5::File::open(&path).map_err(|e| missing(e.to_string()))?;
        let dt = self.simulation.dt_ms;
        let max_delay = u16::MAX as f64 * dt / 2.0;
        for i in 0..self.connections.len() {
            let c = &self.connections[i];
            if c.rule != Rule::File {
                continue;
            }
            let group = c.edges.clone().expect("validated");
            let e = edges_file::read(&file, &path, &group)?;
            let pre = &self.populations[self.population_index(&c.pre).expect("validated")];
            let post = &self.populations[self.population_index(&c.post).expect("validated")];
            let bad = |k: usize, problem: String| {
                SurgeError::data(
                    &path,
                    format!(
                        "`/edges/{group}` (connection {i}, {}->{}), synapse {k}: {problem}",
                        c.pre, c.post
                    ),
                    "rewrite the file with `surge import sonata`, or correct the synapse",
                )
            };
            for k in 0..e.len() {
                if e.source[k] as usize >= pre.size {
                    return Err(bad(
                        k,
                        format!(
                            "source {} is past the {} cells of `{}`",
                            e.source[k], pre.size, pre.name
                        ),
                    ));
                }
                if e.target[k] as usize >= post.size {
                    return Err(bad(
                        k,
                        format!(
                            "target {} is past the {} cells of `{}`",
                            e.target[k], post.size, post.name
                        ),
                    ));
                }
                let w = e.weight[k];
                if !w.is_finite() || (w < 0.0 && post.neuron.is_conductance_based()) {
                    return Err(bad(
                        k,
                        format!("weight {w} is not finite, or a negative conductance"),
                    ));
                }
                let d = e.delay_ms[k];
                if !(d.is_finite() && d >= dt * (1.0 - 1e-9) && d <= max_delay) {
                    return Err(bad(
                        k,
                        format!(
                            "delay {d} ms is not in [dt_ms, {max_delay}] = [{dt}, {max_delay}] ms"
                        ),
                    ));
                }
            }
            self.connections[i].synapses = Some(Arc::new(e));
        }
        if let Some(want) = &self.connectome_checksum {
            let got = self.connectome_checksum_now();
            if &got != want {
                return Err(SurgeError::spec(
                    "connectome_checksum",
                    format!(
                        "`{}` holds other synapses than this experiment was written for (checksum {got}, expected {want})",
                        path.display()
                    ),
                    "use the connectome file written with the experiment (re-import it), or remove connectome_checksum to accept the file as it is",
                ));
            }
        }
        Ok(())
    }

    /// The checksum of the synapses read for the `rule = "file"` connections, in order.
    pub fn connectome_checksum_now(&self) -> String {
        edges_file::checksum(
            self.connections
                .iter()
                .filter_map(|c| Some((c.edges.as_deref()?, c.synapses.as_deref()?))),
        )
    }

    /// The seed; validation guarantees it is present.
    pub fn seed(&self) -> u64 {
        self.simulation.seed.unwrap_or_default()
    }

    /// Number of integration steps.
    pub fn steps(&self) -> usize {
        (self.simulation.duration_ms / self.simulation.dt_ms).round() as usize
    }

    /// Total number of cells.
    pub fn n_cells(&self) -> usize {
        self.populations.iter().map(|p| p.size).sum()
    }

    /// Index of a population by name.
    pub fn population_index(&self, name: &str) -> Option<usize> {
        self.populations.iter().position(|p| p.name == name)
    }

    /// Delay in steps as the engines use it (rounded, at least one step).
    pub fn delay_steps(&self, delay_ms: f64) -> u16 {
        ((delay_ms / self.simulation.dt_ms).round() as u16).max(1)
    }

    /// Checks every field; the first problem found is returned with the field path and a fix.
    pub fn validate(&self) -> Result<()> {
        self.validate_simulation()?;
        self.validate_populations()?;
        self.validate_connections()?;
        self.validate_drives()?;
        self.validate_recording()?;
        self.check_network_fits()
    }

    /// Refuses, before anything is built, a network whose connectome and state would not fit in this
    /// machine's memory: synapses (expected count), the ring buffer of delayed input, per-cell state.
    fn check_network_fits(&self) -> Result<()> {
        let size = |name: &str| {
            self.population_index(name)
                .map_or(0.0, |i| self.populations[i].size as f64)
        };
        let synapses: f64 = self
            .connections
            .iter()
            .map(|c| {
                let (pre, post) = (size(&c.pre), size(&c.post));
                match c.rule {
                    Rule::FixedIndegree => post * c.k.unwrap_or(0) as f64,
                    Rule::Probability => pre * post * c.p.unwrap_or(0.0),
                    Rule::AllToAll | Rule::Gaussian => pre * post,
                    Rule::File => c.synapses.as_ref().map_or(0, |e| e.len()) as f64,
                }
            })
            .sum();
        let dt = self.simulation.dt_ms;
        let slots = self
            .connections
            .iter()
            .map(|c| match &c.synapses {
                Some(e) => e.delay_ms.iter().fold(0.0, |a: f64, &d| a.max(d)) / dt,
                None => (c.delay_ms.unwrap_or(0.0) + 5.0 * c.delay_sd_ms) / dt,
            })
            .fold(0.0, f64::max)
            + 2.0;
        let inputs: f64 = self
            .populations
            .iter()
            .map(|p| p.size as f64 * p.neuron.n_channels() as f64)
            .sum();
        let cells = self.n_cells() as f64;
        let state: f64 = self
            .populations
            .iter()
            .map(|p| p.size as f64 * p.neuron.state_bytes())
            .sum();
        let bytes = 8.0 * synapses + 8.0 * slots * inputs + state;
        crate::memory::check_fits(
            bytes,
            &format!("the network ({cells:.0} cells, about {synapses:.3e} synapses)"),
            "populations.size",
            "use smaller populations or sparser connections",
        )
    }

    /// The name, seed, time step and duration.
    fn validate_simulation(&self) -> Result<()> {
        let sim = &self.simulation;
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            return Err(SurgeError::spec(
                "name",
                format!("`{}` is not usable as a folder name", self.name),
                "use a short name of letters, digits, '-' and '_'",
            ));
        }
        if sim.seed.is_none() {
            return Err(SurgeError::spec(
                "simulation.seed",
                "missing",
                "add `seed = <integer>` to [simulation]; every run in Surge is seeded",
            ));
        }
        if !(sim.dt_ms.is_finite() && sim.dt_ms > 0.0 && sim.dt_ms <= 1.0) {
            return Err(SurgeError::spec(
                "simulation.dt_ms",
                format!("{} is not in (0, 1] ms", sim.dt_ms),
                "use a step such as 0.1 ms",
            ));
        }
        if !(sim.duration_ms.is_finite() && sim.duration_ms >= sim.dt_ms) {
            return Err(SurgeError::spec(
                "simulation.duration_ms",
                format!("{} ms is shorter than one step", sim.duration_ms),
                "give a positive duration in ms, e.g. 1000",
            ));
        }
        Ok(())
    }

    /// Each population: size, neuron parameters, initial voltage.
    fn validate_populations(&self) -> Result<()> {
        if self.populations.is_empty() {
            return Err(SurgeError::spec(
                "populations",
                "no population defined",
                "add at least one [[populations]] table with name, size and neuron",
            ));
        }
        for (i, p) in self.populations.iter().enumerate() {
            let f = format!("populations[{i}] ({})", p.name);
            if p.name.trim().is_empty() {
                return Err(SurgeError::spec(
                    format!("populations[{i}].name"),
                    "empty",
                    "give every population a name",
                ));
            }
            if self.populations[..i].iter().any(|q| q.name == p.name) {
                return Err(SurgeError::spec(
                    format!("{f}.name"),
                    "duplicate population name",
                    "population names must be unique",
                ));
            }
            if p.size == 0 {
                return Err(SurgeError::spec(
                    format!("{f}.size"),
                    "the population is empty",
                    "give size >= 1",
                ));
            }
            if p.size > u32::MAX as usize / 2 {
                return Err(SurgeError::spec(
                    format!("{f}.size"),
                    "too large",
                    "use fewer than 2^31 cells",
                ));
            }
            p.neuron.validate(
                &format!("{f}.neuron"),
                self.simulation.dt_ms,
                "simulation.dt_ms",
            )?;
            if p.v_init_mv.is_some() && p.neuron.hnn().is_some() {
                return Err(SurgeError::spec(
                    format!("{f}.v_init_mv"),
                    format!(
                        "`{}` cells start from hnn-core's initial voltages, section by section",
                        p.neuron.model_name()
                    ),
                    "remove v_init_mv",
                ));
            }
            if let Some(layout) = &p.layout {
                let n = layout.positions().len();
                if n != p.size {
                    return Err(SurgeError::spec(
                        format!("{f}.layout"),
                        format!("{layout:?} places {n} cells, the population has {}", p.size),
                        "make the layout's cell count equal size",
                    ));
                }
            }
            if let Some(v) = &p.v_init_mv {
                let ok = match v {
                    VInit::Constant(x) => x.is_finite(),
                    VInit::Uniform([a, b]) => a.is_finite() && b.is_finite() && a <= b,
                };
                if !ok {
                    return Err(SurgeError::spec(
                        format!("{f}.v_init_mv"),
                        "not a finite value or an ordered [low, high] pair",
                        "write e.g. v_init_mv = -65.0 or v_init_mv = [10.0, 20.0]",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The index of population `name`, or an error at `field` listing the known ones.
    fn known_population(&self, field: &str, name: &str) -> Result<usize> {
        self.population_index(name).ok_or_else(|| {
            let known: Vec<&str> = self.populations.iter().map(|p| p.name.as_str()).collect();
            SurgeError::spec(
                field,
                format!("unknown population `{name}`"),
                format!("use one of {known:?}"),
            )
        })
    }

    /// The index of channel `name` of population `post`, or an error at `field` listing its channels.
    fn known_channel(&self, field: &str, post: usize, name: &str) -> Result<usize> {
        let cell = &self.populations[post].neuron;
        cell.channel_index(name).ok_or_else(|| {
            SurgeError::spec(
                field,
                format!(
                    "population `{}` has no channel `{name}`",
                    self.populations[post].name
                ),
                format!("use one of {:?}", cell.channel_names()),
            )
        })
    }

    /// Each connection group: populations, channel, rule, weights and delays.
    fn validate_connections(&self) -> Result<()> {
        for (i, c) in self.connections.iter().enumerate() {
            let f = format!("connections[{i}] ({}->{})", c.pre, c.post);
            let pre = self.known_population(&format!("{f}.pre"), &c.pre)?;
            let post = self.known_population(&format!("{f}.post"), &c.post)?;
            self.known_channel(&format!("{f}.channel"), post, &c.channel)?;
            let n_pre = self.populations[pre].size;
            let candidates = if pre == post && !c.autapses {
                n_pre - 1
            } else {
                n_pre
            };
            match c.rule {
                Rule::FixedIndegree => match c.k {
                    None => {
                        return Err(SurgeError::spec(
                            format!("{f}.k"),
                            "missing for rule fixed_indegree",
                            "add k = <in-degree>",
                        ));
                    }
                    Some(k) if k > candidates => {
                        return Err(SurgeError::spec(
                            format!("{f}.k"),
                            format!(
                                "k = {k} is larger than the {candidates} available presynaptic cells of `{}`",
                                c.pre
                            ),
                            format!("use k <= {candidates}, or rule = \"probability\""),
                        ));
                    }
                    _ => {}
                },
                Rule::Probability => match c.p {
                    Some(p) if (0.0..=1.0).contains(&p) => {}
                    Some(p) => {
                        return Err(SurgeError::spec(
                            format!("{f}.p"),
                            format!("{p} is not a probability"),
                            "use 0 <= p <= 1",
                        ));
                    }
                    None => {
                        return Err(SurgeError::spec(
                            format!("{f}.p"),
                            "missing for rule probability",
                            "add p = <probability>",
                        ));
                    }
                },
                Rule::AllToAll => {}
                Rule::File => {
                    if c.edges.is_none() {
                        return Err(SurgeError::spec(
                            format!("{f}.edges"),
                            "missing for rule file",
                            "add edges = \"<group of the connectome file>\"",
                        ));
                    }
                    if self.connectome.is_none() {
                        return Err(SurgeError::spec(
                            "connectome",
                            format!(
                                "connection {f} takes its synapses from a file, and none is named"
                            ),
                            "add connectome = \"<file>.h5\" at the top of the experiment (written by `surge import sonata`)",
                        ));
                    }
                    for (name, given) in [
                        ("weight", c.weight.is_some()),
                        ("delay_ms", c.delay_ms.is_some()),
                        ("weight_sd", c.weight_sd != 0.0),
                        ("delay_sd_ms", c.delay_sd_ms != 0.0),
                        ("autapses", c.autapses),
                    ] {
                        if given {
                            return Err(SurgeError::spec(
                                format!("{f}.{name}"),
                                "rule file takes every synapse, weight and delay from the connectome file",
                                format!("remove {name} (scale the group's weights with gain)"),
                            ));
                        }
                    }
                }
                Rule::Gaussian => {
                    if !c.lamtha.is_some_and(|l| l.is_finite() && l > 0.0) {
                        return Err(SurgeError::spec(
                            format!("{f}.lamtha"),
                            "missing or not > 0 for rule gaussian",
                            "add lamtha = <space constant in grid units>, e.g. 3.0",
                        ));
                    }
                    for (role, pi) in [("pre", pre), ("post", post)] {
                        if self.populations[pi].layout.is_none() {
                            return Err(SurgeError::spec(
                                format!("populations[{pi}] ({}).layout", self.populations[pi].name),
                                format!(
                                    "missing: the {role} population of a gaussian connection needs positions"
                                ),
                                "add layout = { grid = [nx, ny] } (or { hnn_basket = [nx, ny] })",
                            ));
                        }
                    }
                    if c.weight_sd > 0.0 || c.delay_sd_ms > 0.0 {
                        return Err(SurgeError::spec(
                            format!("{f}.weight_sd"),
                            "rule gaussian sets each weight and delay from distance",
                            "remove weight_sd and delay_sd_ms",
                        ));
                    }
                }
            }
            if c.rule != Rule::Gaussian && c.lamtha.is_some() {
                return Err(SurgeError::spec(
                    format!("{f}.lamtha"),
                    "lamtha is only used by rule gaussian",
                    "remove lamtha or set rule = \"gaussian\"",
                ));
            }
            if c.rule != Rule::FixedIndegree && c.k.is_some() {
                return Err(SurgeError::spec(
                    format!("{f}.k"),
                    "k is only used by rule fixed_indegree",
                    "remove k or set rule = \"fixed_indegree\"",
                ));
            }
            if c.rule != Rule::Probability && c.p.is_some() {
                return Err(SurgeError::spec(
                    format!("{f}.p"),
                    "p is only used by rule probability",
                    "remove p or set rule = \"probability\"",
                ));
            }
            if c.rule != Rule::File && c.edges.is_some() {
                return Err(SurgeError::spec(
                    format!("{f}.edges"),
                    "edges is only used by rule file",
                    "remove edges or set rule = \"file\"",
                ));
            }
            if !(c.gain.is_finite() && c.gain >= 0.0) {
                return Err(SurgeError::spec(
                    format!("{f}.gain"),
                    format!("{} is not >= 0", c.gain),
                    "use a non-negative gain",
                ));
            }
            if c.rule == Rule::File {
                continue;
            }
            let Some(weight) = c.weight else {
                return Err(SurgeError::spec(
                    format!("{f}.weight"),
                    "missing",
                    "give the connection's weight (mV for current-based cells, nS for conductance-based)",
                ));
            };
            let Some(delay_ms) = c.delay_ms else {
                return Err(SurgeError::spec(
                    format!("{f}.delay_ms"),
                    "missing",
                    "give the connection's delay in ms (at least dt_ms; 1-5 ms is typical)",
                ));
            };
            if !weight.is_finite() {
                return Err(SurgeError::spec(
                    format!("{f}.weight"),
                    "not finite",
                    "give a finite weight",
                ));
            }
            if self.populations[post].neuron.is_conductance_based() && weight < 0.0 {
                return Err(SurgeError::spec(
                    format!("{f}.weight"),
                    format!("{weight} nS: conductances cannot be negative"),
                    "use a positive conductance; inhibition comes from the channel's reversal potential (gabaa, gabab)",
                ));
            }
            if !(c.weight_sd.is_finite() && c.weight_sd >= 0.0) {
                return Err(SurgeError::spec(
                    format!("{f}.weight_sd"),
                    "must be >= 0",
                    "give a non-negative standard deviation",
                ));
            }
            let max_delay = u16::MAX as f64 * self.simulation.dt_ms / 2.0;
            if !(delay_ms.is_finite() && delay_ms > 0.0 && delay_ms <= max_delay) {
                return Err(SurgeError::spec(
                    format!("{f}.delay_ms"),
                    format!("{delay_ms} ms is not in (0, {max_delay}] ms"),
                    "give a positive delay in ms (at least dt_ms; 1-5 ms is typical)",
                ));
            }
            if !(c.delay_sd_ms.is_finite()
                && c.delay_sd_ms >= 0.0
                && delay_ms + 6.0 * c.delay_sd_ms <= max_delay)
            {
                return Err(SurgeError::spec(
                    format!("{f}.delay_sd_ms"),
                    "negative or too large",
                    "give 0 <= delay_sd_ms << delay_ms",
                ));
            }
        }
        Ok(())
    }

    /// Each drive: kind, targets, channel, rate or times, window.
    fn validate_drives(&self) -> Result<()> {
        for (i, d) in self.drives.iter().enumerate() {
            let f = format!("drives[{i}] ({})", d.name);
            if d.targets.is_empty() {
                return Err(SurgeError::spec(
                    format!("{f}.targets"),
                    "no target population",
                    "list at least one population",
                ));
            }
            let mut posts = Vec::new();
            for t in &d.targets {
                posts.push(self.known_population(&format!("{f}.targets"), t)?);
            }
            if !(d.fraction > 0.0 && d.fraction <= 1.0) {
                return Err(SurgeError::spec(
                    format!("{f}.fraction"),
                    format!("{} is not in (0, 1]", d.fraction),
                    "use a fraction of cells in (0, 1]",
                ));
            }
            if !(d.start_ms.is_finite() && d.start_ms >= 0.0) {
                return Err(SurgeError::spec(
                    format!("{f}.start_ms"),
                    "must be >= 0",
                    "give a start time in ms",
                ));
            }
            if let Some(stop) = d.stop_ms
                && !(stop.is_finite() && stop > d.start_ms)
            {
                return Err(SurgeError::spec(
                    format!("{f}.stop_ms"),
                    format!("{stop} is not after start_ms = {}", d.start_ms),
                    "give stop_ms > start_ms, or omit it to drive until the end",
                ));
            }
            let needs_channel = matches!(d.kind, DriveKind::Poisson | DriveKind::Spikes);
            if needs_channel {
                let Some(ch) = &d.channel else {
                    return Err(SurgeError::spec(
                        format!("{f}.channel"),
                        "missing",
                        "name the receptor channel the drive's spikes arrive on",
                    ));
                };
                for &p in &posts {
                    self.known_channel(&format!("{f}.channel"), p, ch)?;
                }
                let Some(w) = d.weight else {
                    return Err(SurgeError::spec(
                        format!("{f}.weight"),
                        "missing",
                        "give the weight of each input spike",
                    ));
                };
                if !w.is_finite()
                    || (w < 0.0
                        && posts
                            .iter()
                            .any(|&p| self.populations[p].neuron.is_conductance_based()))
                {
                    return Err(SurgeError::spec(
                        format!("{f}.weight"),
                        format!("{w} is not a valid weight"),
                        "give a finite weight (non-negative for conductance-based cells)",
                    ));
                }
            } else if d.channel.is_some() || d.weight.is_some() {
                return Err(SurgeError::spec(
                    format!("{f}.channel"),
                    "a bias drive has no channel or weight",
                    "remove channel/weight and give amplitude",
                ));
            }
            match d.kind {
                DriveKind::Poisson => match d.rate_hz {
                    Some(r) if r.is_finite() && r >= 0.0 => {
                        if d.n_sources == 0 {
                            return Err(SurgeError::spec(
                                format!("{f}.n_sources"),
                                "zero sources",
                                "use n_sources >= 1",
                            ));
                        }
                    }
                    Some(r) => {
                        return Err(SurgeError::spec(
                            format!("{f}.rate_hz"),
                            format!("{r} Hz is negative or not finite"),
                            "give a rate >= 0 Hz",
                        ));
                    }
                    None => {
                        return Err(SurgeError::spec(
                            format!("{f}.rate_hz"),
                            "missing for a poisson drive",
                            "add rate_hz = <Hz per source>",
                        ));
                    }
                },
                DriveKind::Bias => match d.amplitude {
                    Some(a) if a.is_finite() => {}
                    _ => {
                        return Err(SurgeError::spec(
                            format!("{f}.amplitude"),
                            "missing or not finite for a bias drive",
                            "add amplitude = <mV for current-based, pA for conductance-based cells>",
                        ));
                    }
                },
                DriveKind::Spikes => match &d.times_ms {
                    Some(t) if t.iter().all(|x| x.is_finite() && *x >= 0.0) => {}
                    _ => {
                        return Err(SurgeError::spec(
                            format!("{f}.times_ms"),
                            "missing or has negative values",
                            "list spike times in ms, e.g. times_ms = [10.0, 50.0]",
                        ));
                    }
                },
                DriveKind::WhiteNoise => {
                    if posts
                        .iter()
                        .any(|&p| self.populations[p].neuron.is_conductance_based())
                    {
                        return Err(SurgeError::spec(
                            format!("{f}.kind"),
                            "white_noise drives act on current-based cells only",
                            "drive conductance-based cells with a poisson drive",
                        ));
                    }
                    if !d.amplitude.is_none_or(f64::is_finite) {
                        return Err(SurgeError::spec(
                            format!("{f}.amplitude"),
                            "not finite",
                            "give the noise mean in mV (or omit it for 0)",
                        ));
                    }
                    match d.sigma {
                        Some(s) if s.is_finite() && s >= 0.0 => {}
                        _ => {
                            return Err(SurgeError::spec(
                                format!("{f}.sigma"),
                                "missing or negative for a white_noise drive",
                                "add sigma = <mV>, the noise strength",
                            ));
                        }
                    }
                }
            }
            if d.sigma.is_some() && d.kind != DriveKind::WhiteNoise {
                return Err(SurgeError::spec(
                    format!("{f}.sigma"),
                    "only white_noise drives have sigma",
                    "remove sigma or set kind = \"white_noise\"",
                ));
            }
        }
        Ok(())
    }

    /// Recorded spikes, voltages and signals.
    fn validate_recording(&self) -> Result<()> {
        if let Some(pops) = &self.recording.spikes {
            for p in pops {
                self.known_population("recording.spikes", p)?;
            }
        }
        for (i, v) in self.recording.voltages.iter().enumerate() {
            let f = format!("recording.voltages[{i}]");
            let p = self.known_population(&format!("{f}.population"), &v.population)?;
            if let Some(&c) = v.cells.iter().find(|&&c| c >= self.populations[p].size) {
                return Err(SurgeError::spec(
                    format!("{f}.cells"),
                    format!(
                        "cell {c} does not exist in `{}` of size {}",
                        v.population, self.populations[p].size
                    ),
                    "use indices from 0 to size - 1",
                ));
            }
        }
        for (i, s) in self.recording.signals.iter().enumerate() {
            let f = format!("recording.signals[{i}] ({})", s.name);
            if s.populations.is_empty() {
                return Err(SurgeError::spec(
                    format!("{f}.populations"),
                    "empty",
                    "list the populations the signal sums over",
                ));
            }
            for p in &s.populations {
                let pi = self.known_population(&format!("{f}.populations"), p)?;
                if s.kind == SignalKind::Dipole && self.populations[pi].neuron.hnn().is_none() {
                    return Err(SurgeError::spec(
                        format!("{f}.kind"),
                        format!(
                            "population `{p}` ({}) has no morphology to carry a dipole",
                            self.populations[pi].neuron.model_name()
                        ),
                        "sum the dipole over hnn_* populations, or use kind = \"synaptic_current\" as a proxy",
                    ));
                }
            }
            if self.recording.signals[..i].iter().any(|o| o.name == s.name) {
                return Err(SurgeError::spec(
                    format!("{f}.name"),
                    "duplicate signal name",
                    "signal names must be unique",
                ));
            }
        }
        Ok(())
    }
}
