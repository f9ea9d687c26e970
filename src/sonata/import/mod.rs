//! A SONATA circuit in: node populations of NEST point-neuron types Surge has a model for become
//! populations (one per node population and node type), edges between them become `rule = "file"`
//! connections whose synapses (weights in Surge's units, delays) go to a connectome file, and
//! generator nodes become drives. Anything Surge cannot represent is refused by name; what had to
//! change is listed in [`Import::notes`].

mod models;
mod read;

use crate::error::{Result, SurgeError};
use crate::spec::{
    ConnectionSpec, DriveKind, DriveSpec, FileEdges, NetworkSpec, PopulationSpec, RecordingSpec,
    Rule, SimulationSpec, VInit,
};
use models::{Ports, Unit, UnitKind, generator_drive, generator_name};
use read::{Edge, NodePop, err, read_circuit, read_edges, read_json, read_nodes};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An imported circuit: the experiment, its connection groups' synapses, and what was changed.
#[derive(Debug)]
pub struct Import {
    pub spec: NetworkSpec,
    /// One group per `rule = "file"` connection, named by its `edges`.
    pub connectome: Vec<(String, FileEdges)>,
    pub notes: Vec<String>,
}

/// The edges of one generator node onto one population.
#[derive(Default)]
struct GeneratorEdges {
    cells: Vec<usize>,
    /// In Surge's units, except a `dc_generator`'s (NEST's pA until its drive is made).
    weights: Vec<f64>,
    delays: Vec<f64>,
    channel: Option<usize>,
}

/// The channel of the target cell an edge arrives on: its receptor port, or its sign.
fn channel_of(e: &Edge, ports: Ports, target: &str, types_file: &Path) -> Result<usize> {
    match ports {
        Ports::Sign => Ok(usize::from(e.weight < 0.0)),
        Ports::Numbered(k) => {
            if e.receptor < 1 || e.receptor as usize > k {
                return Err(err(
                    types_file,
                    format!("edge_type_id {}.receptor_type", e.edge_type),
                    format!(
                        "receptor {} on `{target}`, whose model has ports 1..={k}",
                        e.receptor
                    ),
                    "give a receptor port of the target model",
                ));
            }
            Ok(e.receptor as usize - 1)
        }
    }
}

/// Drives from generator nodes: each node's edges onto a population must reach every cell once
/// with one weight and delay; populations with equal weight, channel and delay share a drive.
fn generator_drives(
    generators: BTreeMap<(usize, usize, usize), GeneratorEdges>,
    units: &[Unit],
    dt: f64,
    tstop: f64,
    circuit: &Path,
) -> Result<Vec<DriveSpec>> {
    struct Target {
        units: Vec<usize>,
        channel: Option<String>,
        weight: f64,
        delay: f64,
    }
    let mut by_node: BTreeMap<(usize, usize), Vec<Target>> = BTreeMap::new();
    for ((gu, node, tu), g) in generators {
        let size = units[tu].nodes.len();
        let mut seen = vec![false; size];
        for &c in &g.cells {
            seen[c] = true;
        }
        let gname = generator_name(&units[gu], node);
        let reached = seen.iter().filter(|&&x| x).count();
        if g.cells.len() != size || reached != size {
            return Err(err(
                circuit,
                format!("generator `{gname}`"),
                format!(
                    "{} edges onto {reached} of the {size} cells of `{}`; a Surge drive reaches every cell of a population once",
                    g.cells.len(),
                    units[tu].name
                ),
                "connect each generator to whole populations, one edge per cell",
            ));
        }
        let same = |v: &[f64]| v.iter().all(|&x| (x - v[0]).abs() <= 1e-12 * v[0].abs());
        if !same(&g.weights) || !same(&g.delays) {
            return Err(err(
                circuit,
                format!("generator `{gname}`"),
                format!(
                    "its edges onto `{}` differ in weight or delay",
                    units[tu].name
                ),
                "give a generator's edges onto one population one weight and one delay",
            ));
        }
        let UnitKind::Cells {
            cell,
            bias_to_surge,
            ..
        } = &units[tu].kind
        else {
            unreachable!("edges onto generators are refused")
        };
        let (channel, weight) = match g.channel {
            Some(c) => (Some(cell.channel_names()[c].clone()), g.weights[0]),
            None => (None, g.weights[0] * bias_to_surge),
        };
        let targets = by_node.entry((gu, node)).or_default();
        match targets
            .iter_mut()
            .find(|t| t.channel == channel && t.weight == weight && t.delay == g.delays[0])
        {
            Some(t) => t.units.push(tu),
            None => targets.push(Target {
                units: vec![tu],
                channel,
                weight,
                delay: g.delays[0],
            }),
        }
    }
    let mut drives = Vec::new();
    for ((gu, node), targets) in by_node {
        let UnitKind::Generator { template, params } = &units[gu].kind else {
            unreachable!("keyed by generator")
        };
        let gname = generator_name(&units[gu], node);
        let several = targets.len() > 1;
        for t in targets {
            let name = if several {
                format!("{gname}_{}", units[t.units[0]].name)
            } else {
                gname.clone()
            };
            drives.push(generator_drive(
                &name,
                template,
                params,
                t.units.iter().map(|&u| units[u].name.clone()).collect(),
                t.channel,
                t.weight,
                t.delay - dt,
                tstop,
                circuit,
            )?);
        }
    }
    Ok(drives)
}

/// Reads the circuit at `circuit` (and its simulation config, for the step and duration) into an
/// experiment named `name` with seed `seed`.
pub fn import(circuit: &Path, simulation: Option<&Path>, name: &str, seed: u64) -> Result<Import> {
    let mut notes = Vec::new();
    let (dt, tstop) = match simulation {
        Some(p) => {
            let s = read_json(p)?;
            let run = s
                .get("run")
                .ok_or_else(|| err(p, "run", "missing", "give run.dt and run.tstop"))?;
            let get = |k: &str| {
                run.get(k).and_then(Value::as_f64).ok_or_else(|| {
                    err(
                        p,
                        format!("run.{k}"),
                        "missing or not a number",
                        format!("give run.{k} in ms"),
                    )
                })
            };
            (get("dt")?, get("tstop")?)
        }
        None => {
            notes.push(
                "no simulation config: dt_ms = 0.1 and duration_ms = 1000 (edit [simulation])"
                    .into(),
            );
            (0.1, 1000.0)
        }
    };
    let c = read_circuit(circuit)?;
    let mut units: Vec<Unit> = Vec::new();
    let mut v_init: Vec<Vec<f64>> = Vec::new();
    let mut pops: Vec<NodePop> = Vec::new();
    for (nodes, types) in &c.nodes {
        for p in read_nodes(nodes, types, &c.neuron_dir, &mut units, &mut v_init)? {
            if pops.iter().any(|q| q.name == p.name) {
                return Err(err(
                    nodes,
                    format!("/nodes/{}", p.name),
                    "a node population of this name is in another nodes file too",
                    "give node populations unique names",
                ));
            }
            pops.push(p);
        }
    }
    let mut edge_pops = Vec::new();
    for (edges, types) in &c.edges {
        edge_pops.push((
            edges.clone(),
            types.clone(),
            read_edges(edges, types, &c.synapse_dir, &pops, dt)?,
        ));
    }

    // Populations: the cell units, in order.
    let cell_units: Vec<usize> = (0..units.len())
        .filter(|&u| matches!(units[u].kind, UnitKind::Cells { .. }))
        .collect();
    if cell_units.is_empty() {
        return Err(err(
            &c.nodes[0].0,
            "/nodes",
            "no point-neuron populations",
            "import a circuit with point neurons",
        ));
    }
    let mut populations = Vec::new();
    for &u in &cell_units {
        let UnitKind::Cells { cell, .. } = &units[u].kind else {
            unreachable!()
        };
        let v = &v_init[u];
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let init = if lo == hi {
            VInit::Constant(lo)
        } else {
            notes.push(format!(
                "`{}`: per-cell initial voltages replaced by a uniform draw over their range [{lo}, {hi}] mV",
                units[u].name
            ));
            VInit::Uniform([lo, hi])
        };
        populations.push(PopulationSpec {
            name: units[u].name.clone(),
            size: units[u].nodes.len(),
            neuron: (**cell).clone(),
            v_init_mv: Some(init),
            layout: None,
        });
    }

    // Connections: one per (edge type, edge population, source and target population, channel),
    // in order of edge type, so an export's groups come back in its order.
    let mut groups: BTreeMap<(i64, usize, usize, usize, usize), FileEdges> = BTreeMap::new();
    let mut generators: BTreeMap<(usize, usize, usize), GeneratorEdges> = BTreeMap::new();
    for (ei, (file, types_file, list)) in edge_pops.iter().enumerate() {
        for (pop_name, edges) in list {
            for e in edges {
                let ((su, sc), (tu, tc)) = (e.src, e.dst);
                let UnitKind::Cells {
                    cell,
                    ports,
                    to_surge,
                    ..
                } = &units[tu].kind
                else {
                    return Err(err(
                        file,
                        format!("/edges/{pop_name}/target_node_id"),
                        format!("edges end on `{}`, a virtual population", units[tu].name),
                        "point edges at cells",
                    ));
                };
                let bias = matches!(&units[su].kind,
                    UnitKind::Generator { template, .. } if template == "dc_generator");
                let channel = if bias {
                    None
                } else {
                    Some(channel_of(e, *ports, &units[tu].name, types_file)?)
                };
                let weight = channel.map_or(e.weight, |ch| e.weight * to_surge[ch]);
                if cell.is_conductance_based() && weight < 0.0 {
                    return Err(err(
                        file,
                        format!("/edges/{pop_name}/syn_weight"),
                        format!(
                            "negative conductance {} nS onto `{}`",
                            e.weight, units[tu].name
                        ),
                        "give conductance-based targets non-negative weights (inhibition comes from E_rev)",
                    ));
                }
                if let UnitKind::Generator { .. } = units[su].kind {
                    let g = generators
                        .entry((su, sc, tu))
                        .or_insert_with(|| GeneratorEdges {
                            channel,
                            ..Default::default()
                        });
                    if g.channel != channel {
                        return Err(err(
                            file,
                            format!("/edges/{pop_name}"),
                            format!(
                                "generator {sc} of `{}` reaches `{}` on more than one receptor",
                                units[su].name, units[tu].name
                            ),
                            "give a generator one receptor per target population",
                        ));
                    }
                    g.cells.push(tc);
                    g.weights.push(weight);
                    g.delays.push(e.delay);
                } else {
                    let ch = channel.expect("cells send spikes");
                    groups
                        .entry((e.edge_type, ei, su, tu, ch))
                        .or_default()
                        .push(sc as u32, tc as u32, weight, e.delay);
                }
            }
        }
    }
    let mut connections = Vec::new();
    let mut connectome = Vec::new();
    for ((tid, _, su, tu, ch), edges) in groups {
        let UnitKind::Cells { cell, .. } = &units[tu].kind else {
            unreachable!("connections end on cells")
        };
        let channel = cell.channel_names()[ch].clone();
        let name = format!(
            "{}_to_{}.type{tid}.{channel}",
            units[su].name, units[tu].name
        );
        connections.push(ConnectionSpec {
            pre: units[su].name.clone(),
            post: units[tu].name.clone(),
            channel,
            rule: Rule::File,
            k: None,
            p: None,
            weight: None,
            weight_sd: 0.0,
            delay_ms: None,
            delay_sd_ms: 0.0,
            gain: 1.0,
            autapses: false,
            lamtha: None,
            edges: Some(name.clone()),
            synapses: None,
        });
        connectome.push((name, edges));
    }
    let mut drives = generator_drives(generators, &units, dt, tstop, circuit)?;
    for &u in &cell_units {
        if let UnitKind::Cells {
            i_e, bias_to_surge, ..
        } = &units[u].kind
            && *i_e != 0.0
        {
            drives.push(DriveSpec {
                name: format!("{}_I_e", units[u].name),
                kind: DriveKind::Bias,
                targets: vec![units[u].name.clone()],
                fraction: 1.0,
                channel: None,
                rate_hz: None,
                n_sources: 1,
                weight: None,
                amplitude: Some(i_e * bias_to_surge),
                sigma: None,
                times_ms: None,
                start_ms: 0.0,
                stop_ms: None,
            });
        }
    }
    let spec = NetworkSpec {
        name: name.to_string(),
        description: format!("Imported from the SONATA circuit {}", circuit.display()),
        connectome: None,
        connectome_checksum: None,
        simulation: SimulationSpec {
            dt_ms: dt,
            duration_ms: tstop,
            seed: Some(seed),
        },
        populations,
        connections,
        drives,
        recording: RecordingSpec::default(),
    };
    Ok(Import {
        spec,
        connectome,
        notes,
    })
}

impl Import {
    /// The connectome file's name beside `toml` (`net.toml` -> `net.connectome.h5`).
    pub fn connectome_path(toml: &Path) -> PathBuf {
        let stem = toml
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "network".into());
        toml.with_file_name(format!("{stem}.connectome.h5"))
    }

    /// Writes the experiment to `toml` and its synapses beside it (each atomically, the synapses
    /// first), after checking that the experiment loads back; returns the experiment as loaded.
    pub fn write(mut self, toml: &Path) -> Result<NetworkSpec> {
        let h5 = Self::connectome_path(toml);
        let file_name = h5
            .file_name()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        self.spec.connectome = (!self.connectome.is_empty()).then_some(file_name);
        self.spec.connectome_checksum = self.spec.connectome.is_some().then(|| {
            crate::spec::edges_file::checksum(self.connectome.iter().map(|(n, e)| (n.as_str(), e)))
        });
        let body = toml::to_string(&self.spec).map_err(|e| SurgeError::Usage {
            problem: format!("cannot write the imported experiment as TOML: {e}"),
            fix: "report this; the circuit imported, its description could not be written".into(),
        })?;
        let mut text = format!(
            "# {}\n# written by `surge import sonata` (Surge {}); synapses in {}\n",
            self.spec.description,
            env!("CARGO_PKG_VERSION"),
            self.spec.connectome.as_deref().unwrap_or("(none)")
        );
        for n in &self.notes {
            text.push_str(&format!("# changed: {n}\n"));
        }
        text.push('\n');
        text.push_str(&body);
        if self.spec.connectome.is_some() {
            crate::spec::edges_file::write(&h5, &self.connectome, &self.spec.description)?;
        }
        let folder = toml.parent().unwrap_or(Path::new(""));
        let loaded = match NetworkSpec::from_toml_str_in(&text, &toml.display().to_string(), folder)
        {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&h5);
                return Err(e);
            }
        };
        crate::results::atomic_write(toml, text.as_bytes())?;
        Ok(loaded)
    }
}
