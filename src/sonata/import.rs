//! A SONATA circuit in: node populations of NEST point-neuron types Surge has a model for become
//! populations (one per node population and node type), edges between them become `rule = "file"`
//! connections whose synapses (weights in Surge's units, delays) go to a connectome file, and
//! generator nodes become drives. Anything Surge cannot represent is refused by name; what had to
//! change is listed in [`Import::notes`].

use crate::error::{Result, SurgeError};
use crate::spec::{
    CellSpec, ConnectionSpec, CurrentChannel, DriveKind, DriveSpec, FileEdges, Kick,
    LifConductance, LifCurrent, NetworkSpec, PopulationSpec, RecordingSpec, Rule, SimulationSpec,
    VInit,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// An imported circuit: the experiment, its connection groups' synapses, and what was changed.
#[derive(Debug)]
pub struct Import {
    pub spec: NetworkSpec,
    /// One group per `rule = "file"` connection, named by its `edges`.
    pub connectome: Vec<(String, FileEdges)>,
    pub notes: Vec<String>,
}

fn err(
    path: &Path,
    field: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> SurgeError {
    SurgeError::Sonata {
        path: path.to_path_buf(),
        field: field.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        err(
            path,
            "(file)",
            format!("not valid JSON: {e}"),
            "give a SONATA JSON file",
        )
    })
}

/// The files a circuit config names, with its manifest's `$VARIABLES` resolved.
struct Circuit {
    nodes: Vec<(PathBuf, PathBuf)>,
    edges: Vec<(PathBuf, PathBuf)>,
    neuron_dir: Option<PathBuf>,
    synapse_dir: Option<PathBuf>,
}

fn read_circuit(path: &Path) -> Result<Circuit> {
    let cfg = read_json(path)?;
    let folder = path.parent().unwrap_or(Path::new(""));
    let mut manifest: Vec<(String, String)> = Vec::new();
    if let Some(m) = cfg.get("manifest").and_then(Value::as_object) {
        for (k, v) in m {
            let v = v.as_str().ok_or_else(|| {
                err(
                    path,
                    format!("manifest.{k}"),
                    "not a string",
                    "give each manifest entry as a path string",
                )
            })?;
            manifest.push((k.trim_start_matches('$').to_string(), v.to_string()));
        }
    }
    // Longer names first, so `$BASE_DIR2` is not read as `$BASE_DIR` followed by `2`.
    manifest.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let resolve = |field: &str, s: &str| -> Result<PathBuf> {
        let mut s = s.to_string();
        for _ in 0..=manifest.len() {
            if !s.contains('$') {
                break;
            }
            for (k, v) in &manifest {
                s = s
                    .replace(&format!("${{{k}}}"), v)
                    .replace(&format!("${k}"), v);
            }
        }
        if s.contains('$') {
            return Err(err(
                path,
                field,
                format!("`{s}` names a variable the manifest does not define"),
                "define it in the manifest",
            ));
        }
        Ok(folder.join(s.trim_start_matches("./")))
    };
    let networks = cfg.get("networks").ok_or_else(|| {
        err(
            path,
            "networks",
            "missing",
            "give networks.nodes and networks.edges",
        )
    })?;
    let list = |key: &str, file: &str, types: &str| -> Result<Vec<(PathBuf, PathBuf)>> {
        let Some(v) = networks.get(key) else {
            return Ok(Vec::new());
        };
        let arr = v.as_array().ok_or_else(|| {
            err(
                path,
                format!("networks.{key}"),
                "not a list",
                format!("give a list of {{\"{file}\": ..., \"{types}\": ...}}"),
            )
        })?;
        arr.iter()
            .enumerate()
            .map(|(i, e)| {
                let get = |k: &str| -> Result<PathBuf> {
                    let s = e.get(k).and_then(Value::as_str).ok_or_else(|| {
                        err(
                            path,
                            format!("networks.{key}[{i}].{k}"),
                            "missing",
                            format!("give the path of the {k}"),
                        )
                    })?;
                    resolve(&format!("networks.{key}[{i}].{k}"), s)
                };
                Ok((get(file)?, get(types)?))
            })
            .collect()
    };
    let nodes = list("nodes", "nodes_file", "node_types_file")?;
    let edges = list("edges", "edges_file", "edge_types_file")?;
    if nodes.is_empty() {
        return Err(err(
            path,
            "networks.nodes",
            "no node files",
            "list the circuit's nodes files",
        ));
    }
    let dir = |key: &str| -> Result<Option<PathBuf>> {
        match cfg
            .get("components")
            .and_then(|c| c.get(key))
            .and_then(Value::as_str)
        {
            Some(s) => resolve(&format!("components.{key}"), s).map(Some),
            None => Ok(None),
        }
    };
    Ok(Circuit {
        nodes,
        edges,
        neuron_dir: dir("point_neuron_models_dir")?,
        synapse_dir: dir("synaptic_models_dir")?,
    })
}

/// A SONATA type table (space-separated CSV with a header): rows keyed by the id column.
fn read_types(path: &Path, id: &str) -> Result<HashMap<i64, BTreeMap<String, String>>> {
    let text = std::fs::read_to_string(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| err(path, "(header)", "empty file", "give a header line"))?
        .split_whitespace()
        .collect();
    if !header.contains(&id) {
        return Err(err(
            path,
            id,
            "no such column",
            format!("give a `{id}` column"),
        ));
    }
    let mut rows = HashMap::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() != header.len() {
            return Err(err(
                path,
                format!("line {}", n + 2),
                format!("{} values under {} columns", cells.len(), header.len()),
                "give one space-separated value per column",
            ));
        }
        let row: BTreeMap<String, String> = header
            .iter()
            .zip(&cells)
            .filter(|(_, v)| !matches!(**v, "NULL" | "NONE" | "None"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let key: i64 = row[id].parse().map_err(|_| {
            err(
                path,
                format!("line {}.{id}", n + 2),
                format!("`{}` is not an integer", row[id]),
                "give integer type ids",
            )
        })?;
        rows.insert(key, row);
    }
    Ok(rows)
}

fn read_ints(path: &Path, g: &hdf5::Group, name: &str, field: &str) -> Result<Vec<i64>> {
    let ds = g.dataset(name).map_err(|_| {
        err(
            path,
            format!("{field}/{name}"),
            "missing",
            format!("give the `{name}` dataset"),
        )
    })?;
    ds.read_raw::<i64>().map_err(|e| {
        err(
            path,
            format!("{field}/{name}"),
            format!("not integers ({e})"),
            "store it as an integer dataset",
        )
    })
}

fn read_floats(path: &Path, g: &hdf5::Group, name: &str, field: &str) -> Result<Vec<f64>> {
    g.dataset(name)
        .and_then(|d| d.read_raw::<f64>())
        .map_err(|e| {
            err(
                path,
                format!("{field}/{name}"),
                format!("not numbers ({e})"),
                "store it as a numeric dataset",
            )
        })
}

fn read_str_attr(path: &Path, ds: &hdf5::Dataset, name: &str, field: &str) -> Result<String> {
    use hdf5::types::{VarLenAscii, VarLenUnicode};
    let a = ds.attr(name).map_err(|_| {
        err(
            path,
            format!("{field}@{name}"),
            "missing",
            "name the node population with this attribute",
        )
    })?;
    if let Ok(s) = a.read_scalar::<VarLenUnicode>() {
        return Ok(s.as_str().to_string());
    }
    if let Ok(s) = a.read_scalar::<VarLenAscii>() {
        return Ok(s.as_str().to_string());
    }
    a.read_scalar::<hdf5::types::FixedAscii<256>>()
        .map(|s| s.as_str().to_string())
        .map_err(|e| {
            err(
                path,
                format!("{field}@{name}"),
                format!("not a string ({e})"),
                "store the population name as a string",
            )
        })
}

/// How a cell population receives spikes, by NEST model.
#[derive(Debug, Clone, Copy)]
enum Ports {
    /// `iaf_psc_exp`: receptor 0, the sign of the weight picks `ex` or `in`.
    Sign,
    /// Multisynapse models: receptor ports `1..=n`, one channel each.
    Numbered(usize),
}

/// One Surge population: the nodes of one node type within one node population.
struct Unit {
    name: String,
    /// Node indices (within the SONATA population) in order; the i-th is cell i.
    nodes: Vec<usize>,
    kind: UnitKind,
}

enum UnitKind {
    Cells {
        cell: CellSpec,
        ports: Ports,
        /// Per channel: Surge weight = NEST weight x this.
        to_surge: Vec<f64>,
        /// NEST pA to Surge's bias units.
        bias_to_surge: f64,
        i_e: f64,
        v_m: f64,
    },
    Generator {
        template: String,
        params: Map<String, Value>,
    },
}

fn num(
    p: &Map<String, Value>,
    key: &str,
    default: Option<f64>,
    path: &Path,
    what: &str,
) -> Result<f64> {
    match p.get(key) {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| err(path, key, format!("{what}: not a number"), "give a number")),
        None => default.ok_or_else(|| {
            err(
                path,
                key,
                format!("{what}: missing, and NEST's default cannot be assumed"),
                format!("give {key}"),
            )
        }),
    }
}

fn nums(p: &Map<String, Value>, key: &str, path: &Path, what: &str) -> Result<Vec<f64>> {
    let bad = || {
        err(
            path,
            key,
            format!("{what}: missing or not a list of numbers"),
            format!("give {key} as a list, one value per receptor port"),
        )
    };
    p.get(key)
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_f64().ok_or_else(bad))
        .collect()
}

/// Refuses parameters the mapping does not read, unless NEST's own value makes them inert.
fn only_known(p: &Map<String, Value>, known: &[&str], path: &Path, what: &str) -> Result<()> {
    // Inert here: the calcium trace and STDP time constants do not act on the membrane.
    const INERT: [&str; 5] = ["Ca", "tau_Ca", "beta_Ca", "tau_minus", "tau_minus_triplet"];
    for k in p.keys() {
        if !known.contains(&k.as_str()) && !INERT.contains(&k.as_str()) {
            return Err(err(
                path,
                k,
                format!("{what}: Surge's model has no parameter for `{k}`"),
                "remove it, or use a NEST model whose parameters Surge maps",
            ));
        }
    }
    Ok(())
}

/// A NEST point neuron as a Surge cell.
fn cell_unit(template: &str, p: &Map<String, Value>, path: &Path, what: &str) -> Result<UnitKind> {
    let n = |k: &str, d: Option<f64>| num(p, k, d, path, what);
    match template {
        "iaf_psc_exp" | "iaf_psc_exp_multisynapse" => {
            let c_m = n("C_m", Some(250.0))?;
            let tau_m = n("tau_m", Some(10.0))?;
            let e_l = n("E_L", Some(-70.0))?;
            let taus = if template == "iaf_psc_exp" {
                only_known(
                    p,
                    &[
                        "C_m",
                        "tau_m",
                        "E_L",
                        "V_th",
                        "V_reset",
                        "t_ref",
                        "I_e",
                        "V_m",
                        "tau_syn_ex",
                        "tau_syn_in",
                        "delta",
                    ],
                    path,
                    what,
                )?;
                if n("delta", Some(0.0))? != 0.0 {
                    return Err(err(
                        path,
                        "delta",
                        format!(
                            "{what}: the stochastic threshold (delta > 0) has no Surge equivalent"
                        ),
                        "set delta = 0",
                    ));
                }
                vec![
                    ("ex".to_string(), n("tau_syn_ex", Some(2.0))?),
                    ("in".to_string(), n("tau_syn_in", Some(2.0))?),
                ]
            } else {
                only_known(
                    p,
                    &[
                        "C_m", "tau_m", "E_L", "V_th", "V_reset", "t_ref", "I_e", "V_m", "tau_syn",
                    ],
                    path,
                    what,
                )?;
                let t = if p.contains_key("tau_syn") {
                    nums(p, "tau_syn", path, what)?
                } else {
                    vec![2.0]
                };
                t.iter()
                    .enumerate()
                    .map(|(i, &x)| (format!("r{}", i + 1), x))
                    .collect()
            };
            if let Some((name, t)) = taus.iter().find(|(_, t)| !(t.is_finite() && *t > 0.0)) {
                return Err(err(
                    path,
                    "tau_syn",
                    format!("{what}: channel `{name}` has time constant {t} ms"),
                    "give positive synaptic time constants",
                ));
            }
            // NEST's dV/dt jumps by J / C_m on a spike of weight J; Surge's `delta_psp` channel
            // jumps by w / tau_s, so w = J tau_s / C_m (mV).
            let to_surge = taus.iter().map(|(_, t)| t / c_m).collect();
            let cell = LifCurrent {
                tau_m_ms: tau_m,
                v_rest_mv: e_l,
                v_threshold_mv: n("V_th", Some(-55.0))?,
                v_reset_mv: n("V_reset", Some(-70.0))?,
                t_ref_ms: n("t_ref", Some(2.0))?,
                channels: taus
                    .iter()
                    .map(|(name, t)| CurrentChannel {
                        name: name.clone(),
                        tau_ms: *t,
                        kick: Kick::DeltaPsp,
                    })
                    .collect(),
            };
            Ok(UnitKind::Cells {
                ports: if template == "iaf_psc_exp" {
                    Ports::Sign
                } else {
                    Ports::Numbered(taus.len())
                },
                cell: CellSpec::LifCurrent(cell),
                to_surge,
                // tau_m dv/dt = ... + a (mV) against C_m dV/dt = ... + I (pA).
                bias_to_surge: tau_m / c_m,
                i_e: n("I_e", Some(0.0))?,
                v_m: n("V_m", Some(e_l))?,
            })
        }
        "aeif_cond_beta_multisynapse" => {
            only_known(
                p,
                &[
                    "C_m",
                    "g_L",
                    "E_L",
                    "V_th",
                    "V_peak",
                    "V_reset",
                    "t_ref",
                    "I_e",
                    "V_m",
                    "Delta_T",
                    "a",
                    "b",
                    "tau_w",
                    "w",
                    "E_rev",
                    "tau_rise",
                    "tau_decay",
                    "gsl_error_tol",
                ],
                path,
                what,
            )?;
            for (k, d) in [("Delta_T", 2.0), ("a", 4.0), ("b", 80.5), ("w", 0.0)] {
                let x = n(k, Some(d))?;
                if x != 0.0 {
                    return Err(err(
                        path,
                        k,
                        format!(
                            "{what}: {k} = {x}{}; the exponential spike term and adaptation have no Surge equivalent",
                            if p.contains_key(k) {
                                ""
                            } else {
                                " (NEST's default)"
                            }
                        ),
                        "set Delta_T = a = b = w = 0 explicitly (a conductance-based LIF)",
                    ));
                }
            }
            let e_rev = nums(p, "E_rev", path, what)?;
            let rise = nums(p, "tau_rise", path, what)?;
            let decay = nums(p, "tau_decay", path, what)?;
            if e_rev.len() != rise.len() || e_rev.len() != decay.len() || e_rev.len() > 4 {
                return Err(err(
                    path,
                    "E_rev",
                    format!(
                        "{what}: {} reversal potentials, {} rise and {} decay times; Surge's conductance cell has up to 4 receptors",
                        e_rev.len(),
                        rise.len(),
                        decay.len()
                    ),
                    "give E_rev, tau_rise and tau_decay of equal length, at most 4",
                ));
            }
            let mut cell = LifConductance {
                c_m_pf: n("C_m", Some(281.0))?,
                g_l_ns: n("g_L", Some(30.0))?,
                e_l_mv: n("E_L", Some(-70.6))?,
                // With Delta_T = 0, NEST detects a spike at V_th.
                v_threshold_mv: n("V_th", Some(-50.4))?,
                v_reset_mv: n("V_reset", Some(-60.0))?,
                t_ref_ms: n("t_ref", Some(0.0))?,
                mg_mm: 0.0,
                receptors: Default::default(),
            };
            {
                let slots = cell.receptors.as_array_mut();
                for i in 0..e_rev.len() {
                    if !(rise[i] > 0.0 && decay[i] > rise[i]) {
                        return Err(err(
                            path,
                            "tau_rise",
                            format!(
                                "{what}: receptor port {}: rise {} ms, decay {} ms",
                                i + 1,
                                rise[i],
                                decay[i]
                            ),
                            "give 0 < tau_rise < tau_decay",
                        ));
                    }
                    slots[i].e_rev_mv = e_rev[i];
                    slots[i].rise_ms = rise[i];
                    slots[i].decay_ms = decay[i];
                }
            }
            let e_l = cell.e_l_mv;
            Ok(UnitKind::Cells {
                ports: Ports::Numbered(e_rev.len()),
                cell: CellSpec::LifConductance(cell),
                to_surge: vec![1.0; e_rev.len()],
                bias_to_surge: 1.0,
                i_e: n("I_e", Some(0.0))?,
                v_m: n("V_m", Some(e_l))?,
            })
        }
        other => unreachable!("templates are checked by the caller: {other}"),
    }
}

/// Node populations of one nodes file, split into units by node type.
struct NodePop {
    name: String,
    /// Node id -> (unit, cell index within the unit).
    cell_of: Vec<(usize, usize)>,
    id_index: Option<HashMap<i64, usize>>,
}

impl NodePop {
    fn index(&self, id: i64) -> Option<(usize, usize)> {
        let i = match &self.id_index {
            Some(m) => *m.get(&id)?,
            None => usize::try_from(id).ok()?,
        };
        self.cell_of.get(i).copied()
    }
}

fn read_params(
    dir: &Option<PathBuf>,
    file: Option<&String>,
    types_path: &Path,
    key: &str,
) -> Result<(Map<String, Value>, PathBuf)> {
    let Some(file) = file else {
        return Ok((Map::new(), types_path.to_path_buf()));
    };
    let Some(dir) = dir else {
        return Err(err(
            types_path,
            "dynamics_params",
            format!("`{file}` is named, and the circuit config gives no components.{key}"),
            format!("add components.{key} to the circuit config"),
        ));
    };
    let path = dir.join(file);
    match read_json(&path)? {
        Value::Object(m) => Ok((m, path)),
        _ => Err(err(
            &path,
            "(file)",
            "not a JSON object",
            "give the parameters as one JSON object",
        )),
    }
}

/// Reads every node population, appending its units.
fn read_nodes(
    nodes_file: &Path,
    types_file: &Path,
    neuron_dir: &Option<PathBuf>,
    units: &mut Vec<Unit>,
    v_init: &mut Vec<Vec<f64>>,
) -> Result<Vec<NodePop>> {
    let types = read_types(types_file, "node_type_id")?;
    let f = hdf5::File::open(nodes_file).map_err(|e| SurgeError::hdf5(nodes_file, e))?;
    let root = f.group("nodes").map_err(|_| {
        err(
            nodes_file,
            "/nodes",
            "missing group",
            "give the node populations under /nodes",
        )
    })?;
    // Populations in order of their smallest node type id (then name), so that an export's
    // populations come back in the experiment's order.
    let mut names: Vec<(i64, String)> = Vec::new();
    for name in root
        .member_names()
        .map_err(|e| SurgeError::hdf5(nodes_file, e))?
    {
        let first = root
            .group(&name)
            .ok()
            .and_then(|g| read_ints(nodes_file, &g, "node_type_id", "").ok())
            .and_then(|t| t.into_iter().min())
            .unwrap_or(i64::MAX);
        names.push((first, name));
    }
    names.sort();
    let mut pops = Vec::new();
    for (_, name) in names {
        let field = format!("/nodes/{name}");
        let g = root.group(&name).map_err(|_| {
            err(
                nodes_file,
                &field,
                "not a group",
                "give one group per population",
            )
        })?;
        let type_ids = read_ints(nodes_file, &g, "node_type_id", &field)?;
        let n = type_ids.len();
        let id_index = if g.link_exists("node_id") {
            let ids = read_ints(nodes_file, &g, "node_id", &field)?;
            if ids.len() != n {
                return Err(err(
                    nodes_file,
                    format!("{field}/node_id"),
                    format!("{} ids for {n} nodes", ids.len()),
                    "give one node_id per node",
                ));
            }
            let identity = ids.iter().enumerate().all(|(i, &x)| x == i as i64);
            let map: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, &x)| (x, i)).collect();
            if map.len() != n {
                return Err(err(
                    nodes_file,
                    format!("{field}/node_id"),
                    "duplicate node ids",
                    "give every node its own id",
                ));
            }
            (!identity).then_some(map)
        } else {
            None
        };
        let (group_id, group_index) = if g.link_exists("node_group_id") {
            let gid = read_ints(nodes_file, &g, "node_group_id", &field)?;
            let gix = read_ints(nodes_file, &g, "node_group_index", &field)?;
            if gid.len() != n || gix.len() != n {
                return Err(err(
                    nodes_file,
                    format!("{field}/node_group_id"),
                    "not one entry per node",
                    "give node_group_id and node_group_index for every node",
                ));
            }
            (gid, gix)
        } else {
            (vec![0; n], (0..n as i64).collect())
        };
        // Per-node initial voltages; any other per-node dynamics parameter is refused.
        let mut v_m: Option<Vec<f64>> = None;
        let mut group_v: HashMap<i64, Vec<f64>> = HashMap::new();
        let mut gids: Vec<i64> = group_id.clone();
        gids.sort_unstable();
        gids.dedup();
        for gid in gids {
            let gfield = format!("{field}/{gid}");
            let Ok(grp) = g.group(&gid.to_string()) else {
                continue;
            };
            for member in ["model_template", "model_type", "dynamics_params"] {
                if member != "dynamics_params" && grp.link_exists(member) {
                    return Err(err(
                        nodes_file,
                        format!("{gfield}/{member}"),
                        "per-node model templates are not imported",
                        "give each node type its template in the node types file",
                    ));
                }
            }
            let mut v = None;
            if grp.link_exists("V_m") {
                v = Some(read_floats(nodes_file, &grp, "V_m", &gfield)?);
            }
            if let Ok(dp) = grp.group("dynamics_params") {
                for m in dp
                    .member_names()
                    .map_err(|e| SurgeError::hdf5(nodes_file, e))?
                {
                    if m == "V_m" {
                        v = Some(read_floats(
                            nodes_file,
                            &dp,
                            "V_m",
                            &format!("{gfield}/dynamics_params"),
                        )?);
                    } else {
                        return Err(err(
                            nodes_file,
                            format!("{gfield}/dynamics_params/{m}"),
                            "a per-node parameter; the cells of a Surge population share theirs",
                            "give it in the node type's parameters (one node type per parameter set)",
                        ));
                    }
                }
            }
            if let Some(v) = v {
                group_v.insert(gid, v);
            }
        }
        if !group_v.is_empty() {
            let mut all = Vec::with_capacity(n);
            for i in 0..n {
                let v = group_v
                    .get(&group_id[i])
                    .and_then(|v| v.get(group_index[i] as usize))
                    .copied();
                match v {
                    Some(x) => all.push(x),
                    None => {
                        return Err(err(
                            nodes_file,
                            format!("{field}/{}/V_m", group_id[i]),
                            format!("node {i} has no V_m (group index {})", group_index[i]),
                            "give V_m for every node of the group, or for none",
                        ));
                    }
                }
            }
            v_m = Some(all);
        }
        // One unit per node type, in order of type id.
        let mut ids: Vec<i64> = type_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let mut cell_of = vec![(0, 0); n];
        for &tid in &ids {
            let row = types.get(&tid).ok_or_else(|| {
                err(
                    types_file,
                    "node_type_id",
                    format!("node type {tid} (used by {field}) is not in the table"),
                    "add the type to the node types file",
                )
            })?;
            let what = format!("node type {tid} of population `{name}`");
            let template = row
                .get("model_template")
                .ok_or_else(|| {
                    err(
                        types_file,
                        format!("node_type_id {tid}.model_template"),
                        "missing",
                        "give each node type a model_template such as nest:iaf_psc_exp",
                    )
                })?
                .clone();
            let model_type = row
                .get("model_type")
                .map(String::as_str)
                .unwrap_or("point_neuron");
            let Some(bare) = template.strip_prefix("nest:") else {
                return Err(err(
                    types_file,
                    format!("node_type_id {tid}.model_template"),
                    format!("`{template}` is not a NEST model"),
                    "use NEST point-neuron templates (nest:<model>)",
                ));
            };
            let (params, params_file) = read_params(
                neuron_dir,
                row.get("dynamics_params"),
                types_file,
                "point_neuron_models_dir",
            )?;
            let kind = match model_type {
                "point_neuron" | "point_process" => {
                    if !matches!(
                        bare,
                        "iaf_psc_exp" | "iaf_psc_exp_multisynapse" | "aeif_cond_beta_multisynapse"
                    ) {
                        return Err(err(
                            types_file,
                            format!("node_type_id {tid}.model_template"),
                            format!("{what}: `{template}` has no Surge model"),
                            "use nest:iaf_psc_exp, nest:iaf_psc_exp_multisynapse or nest:aeif_cond_beta_multisynapse (Delta_T = a = b = 0)",
                        ));
                    }
                    cell_unit(bare, &params, &params_file, &what)?
                }
                "virtual" => UnitKind::Generator {
                    template: bare.to_string(),
                    params,
                },
                other => {
                    return Err(err(
                        types_file,
                        format!("node_type_id {tid}.model_type"),
                        format!(
                            "`{other}` cells are not imported (only point neurons and virtual generator nodes)"
                        ),
                        "export the network with point-neuron models",
                    ));
                }
            };
            let nodes: Vec<usize> = (0..n).filter(|&i| type_ids[i] == tid).collect();
            let unit_name = if ids.len() == 1 {
                name.clone()
            } else {
                format!(
                    "{name}_{}",
                    row.get("pop_name").cloned().unwrap_or(tid.to_string())
                )
            };
            let u = units.len();
            for (k, &i) in nodes.iter().enumerate() {
                cell_of[i] = (u, k);
            }
            if let UnitKind::Cells { v_m: v0, .. } = &kind {
                v_init.push(match &v_m {
                    Some(v) => nodes.iter().map(|&i| v[i]).collect(),
                    None => vec![*v0; nodes.len()],
                });
            } else {
                v_init.push(Vec::new());
            }
            units.push(Unit {
                name: unit_name,
                nodes,
                kind,
            });
        }
        pops.push(NodePop {
            name,
            cell_of,
            id_index,
        });
    }
    Ok(pops)
}

/// The edges of one edge population, as (source unit, source cell, target unit, target cell,
/// NEST weight, delay, receptor, edge type).
type Edge = (usize, usize, usize, usize, f64, f64, i64, i64);

#[allow(clippy::too_many_arguments)]
fn read_edges(
    edges_file: &Path,
    types_file: &Path,
    synapse_dir: &Option<PathBuf>,
    pops: &[NodePop],
    dt: f64,
) -> Result<Vec<(String, Vec<Edge>)>> {
    let types = read_types(types_file, "edge_type_id")?;
    // Type-level weight, delay and receptor, from columns or the synapse parameters file.
    let mut type_defaults: HashMap<i64, (Option<f64>, Option<f64>, i64)> = HashMap::new();
    for (&tid, row) in &types {
        let field = |k: &str| format!("edge_type_id {tid}.{k}");
        if let Some(t) = row.get("model_template")
            && t.trim_start_matches("nest:") != "static_synapse"
        {
            return Err(err(
                types_file,
                field("model_template"),
                format!("`{t}`: Surge's synapses are static"),
                "use static_synapse",
            ));
        }
        let (params, _) = read_params(
            synapse_dir,
            row.get("dynamics_params"),
            types_file,
            "synaptic_models_dir",
        )?;
        for k in params.keys() {
            if !matches!(
                k.as_str(),
                "weight" | "delay" | "receptor_type" | "synapse_model"
            ) {
                return Err(err(
                    types_file,
                    field("dynamics_params"),
                    format!("synapse parameter `{k}` has no Surge equivalent"),
                    "give static synapses with weight, delay and receptor_type only",
                ));
            }
        }
        let parse = |k: &str, json: &str| -> Result<Option<f64>> {
            if let Some(s) = row.get(k) {
                return s.parse().map(Some).map_err(|_| {
                    err(
                        types_file,
                        field(k),
                        format!("`{s}` is not a number"),
                        "give a number",
                    )
                });
            }
            Ok(params.get(json).and_then(Value::as_f64))
        };
        let w = parse("syn_weight", "weight")?;
        let d = parse("delay", "delay")?;
        let r = parse("receptor_type", "receptor_type")?.unwrap_or(0.0) as i64;
        if let Some(nsyns) = parse("nsyns", "nsyns")?
            && nsyns != 1.0
        {
            return Err(err(
                types_file,
                field("nsyns"),
                format!("{nsyns} synapses per edge"),
                "list each synapse as its own edge",
            ));
        }
        type_defaults.insert(tid, (w, d, r));
    }
    let f = hdf5::File::open(edges_file).map_err(|e| SurgeError::hdf5(edges_file, e))?;
    let root = f.group("edges").map_err(|_| {
        err(
            edges_file,
            "/edges",
            "missing group",
            "give the edge populations under /edges",
        )
    })?;
    let mut out = Vec::new();
    for name in root
        .member_names()
        .map_err(|e| SurgeError::hdf5(edges_file, e))?
    {
        let field = format!("/edges/{name}");
        let g = root.group(&name).map_err(|_| {
            err(
                edges_file,
                &field,
                "not a group",
                "give one group per edge population",
            )
        })?;
        let src = read_ints(edges_file, &g, "source_node_id", &field)?;
        let dst = read_ints(edges_file, &g, "target_node_id", &field)?;
        let tid = read_ints(edges_file, &g, "edge_type_id", &field)?;
        let n = src.len();
        if dst.len() != n || tid.len() != n {
            return Err(err(
                edges_file,
                &field,
                format!(
                    "{n} sources, {} targets, {} edge types",
                    dst.len(),
                    tid.len()
                ),
                "give one source, target and edge type per edge",
            ));
        }
        let pop_of = |ds: &str| -> Result<&NodePop> {
            let d = g.dataset(ds).map_err(|e| SurgeError::hdf5(edges_file, e))?;
            let p = read_str_attr(edges_file, &d, "node_population", &format!("{field}/{ds}"))?;
            pops.iter().find(|x| x.name == p).ok_or_else(|| {
                err(
                    edges_file,
                    format!("{field}/{ds}@node_population"),
                    format!("`{p}` is not a node population of the circuit"),
                    "name one of the node populations in the nodes files",
                )
            })
        };
        let (sp, tp) = (pop_of("source_node_id")?, pop_of("target_node_id")?);
        let (gid, gix) = if g.link_exists("edge_group_id") {
            (
                read_ints(edges_file, &g, "edge_group_id", &field)?,
                read_ints(edges_file, &g, "edge_group_index", &field)?,
            )
        } else {
            (vec![0; n], (0..n as i64).collect())
        };
        if gid.len() != n || gix.len() != n {
            return Err(err(
                edges_file,
                format!("{field}/edge_group_id"),
                "not one entry per edge",
                "give edge_group_id and edge_group_index for every edge",
            ));
        }
        let mut per_group: HashMap<i64, (Option<Vec<f64>>, Option<Vec<f64>>)> = HashMap::new();
        for &k in gid.iter().collect::<std::collections::BTreeSet<_>>() {
            let gfield = format!("{field}/{k}");
            let entry = match g.group(&k.to_string()) {
                Ok(grp) => {
                    if grp.link_exists("nsyns") {
                        let ns = read_floats(edges_file, &grp, "nsyns", &gfield)?;
                        if ns.iter().any(|&x| x != 1.0) {
                            return Err(err(
                                edges_file,
                                format!("{gfield}/nsyns"),
                                "edges of more than one synapse",
                                "list each synapse as its own edge",
                            ));
                        }
                    }
                    let opt = |d: &str| -> Result<Option<Vec<f64>>> {
                        grp.link_exists(d)
                            .then(|| read_floats(edges_file, &grp, d, &gfield))
                            .transpose()
                    };
                    (opt("syn_weight")?, opt("delay")?)
                }
                Err(_) => (None, None),
            };
            per_group.insert(k, entry);
        }
        let mut edges = Vec::with_capacity(n);
        for i in 0..n {
            let (s, t) = (src[i], dst[i]);
            let past = |which: &str, id: i64, p: &NodePop| {
                err(
                    edges_file,
                    format!("{field}/{which}[{i}]"),
                    format!(
                        "node {id} is not in population `{}` ({} nodes)",
                        p.name,
                        p.cell_of.len()
                    ),
                    "point edges at existing nodes",
                )
            };
            let (su, sc) = sp.index(s).ok_or_else(|| past("source_node_id", s, sp))?;
            let (tu, tc) = tp.index(t).ok_or_else(|| past("target_node_id", t, tp))?;
            let (w0, d0, receptor) = *type_defaults.get(&tid[i]).ok_or_else(|| {
                err(
                    types_file,
                    "edge_type_id",
                    format!("edge type {} (used by {field}) is not in the table", tid[i]),
                    "add the type to the edge types file",
                )
            })?;
            let (gw, gd) = &per_group[&gid[i]];
            let at =
                |v: &Option<Vec<f64>>| v.as_ref().and_then(|v| v.get(gix[i] as usize)).copied();
            let w = at(gw).or(w0).ok_or_else(|| {
                err(
                    edges_file,
                    format!("{field}/{}/syn_weight", gid[i]),
                    format!("edge {i} has no weight, per edge or per type"),
                    "give syn_weight per edge or in the edge types file",
                )
            })?;
            let d = at(gd).or(d0).ok_or_else(|| {
                err(
                    edges_file,
                    format!("{field}/{}/delay", gid[i]),
                    format!("edge {i} has no delay, per edge or per type"),
                    "give delay per edge or in the edge types file",
                )
            })?;
            if !w.is_finite() {
                return Err(err(
                    edges_file,
                    format!("{field}/{}/syn_weight[{i}]", gid[i]),
                    format!("weight {w}"),
                    "give finite weights",
                ));
            }
            if !(d.is_finite() && d >= dt * (1.0 - 1e-9)) {
                return Err(err(
                    edges_file,
                    format!("{field}/{}/delay[{i}]", gid[i]),
                    format!("delay {d} ms is shorter than one step ({dt} ms)"),
                    "give delays of at least the time step, as NEST requires",
                ));
            }
            edges.push((su, sc, tu, tc, w, d, receptor, tid[i]));
        }
        out.push((name, edges));
    }
    Ok(out)
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
            neuron: cell.clone(),
            v_init_mv: Some(init),
            layout: None,
        });
    }

    // Connections: one per (edge population, edge type, source and target population, channel),
    // in order of edge type, so an export's groups come back in its order.
    type Key = (i64, usize, usize, usize, usize);
    let mut groups: BTreeMap<Key, FileEdges> = BTreeMap::new();
    // Generator edges per (generator unit, node, target unit): (cells, weights, delays, channel).
    type DriveKey = (usize, usize, usize);
    let mut drive_edges: BTreeMap<DriveKey, (Vec<usize>, Vec<f64>, Vec<f64>, Option<usize>)> =
        BTreeMap::new();
    for (ei, (file, types_file, list)) in edge_pops.iter().enumerate() {
        for (pop_name, edges) in list {
            for &(su, sc, tu, tc, w, d, receptor, tid) in edges {
                let UnitKind::Cells {
                    ports, to_surge, ..
                } = &units[tu].kind
                else {
                    return Err(err(
                        file,
                        format!("/edges/{pop_name}/target_node_id"),
                        format!("edges end on `{}`, a virtual population", units[tu].name),
                        "point edges at cells",
                    ));
                };
                let is_generator = matches!(units[su].kind, UnitKind::Generator { .. });
                let bias = matches!(&units[su].kind, UnitKind::Generator { template, .. } if template == "dc_generator");
                let channel = if bias {
                    None
                } else {
                    Some(match *ports {
                        Ports::Sign => usize::from(w < 0.0),
                        Ports::Numbered(k) => {
                            if receptor < 1 || receptor as usize > k {
                                return Err(err(
                                    types_file,
                                    format!("edge_type_id {tid}.receptor_type"),
                                    format!(
                                        "receptor {receptor} on `{}`, whose model has ports 1..={k}",
                                        units[tu].name
                                    ),
                                    "give a receptor port of the target model",
                                ));
                            }
                            receptor as usize - 1
                        }
                    })
                };
                if !is_generator {
                    let ch = channel.expect("cells send spikes");
                    let sw = w * to_surge[ch];
                    if matches!(ports, Ports::Numbered(_)) && to_surge[ch] == 1.0 && sw < 0.0 {
                        return Err(err(
                            file,
                            format!("/edges/{pop_name}/syn_weight"),
                            format!("negative conductance {w} nS onto `{}`", units[tu].name),
                            "give conductance-based targets non-negative weights (inhibition comes from E_rev)",
                        ));
                    }
                    groups
                        .entry((tid, ei, su, tu, ch))
                        .or_default()
                        .push(sc as u32, tc as u32, sw, d);
                } else {
                    let e = drive_edges
                        .entry((su, sc, tu))
                        .or_insert_with(|| (Vec::new(), Vec::new(), Vec::new(), channel));
                    if e.3 != channel {
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
                    e.0.push(tc);
                    e.1.push(match channel {
                        Some(ch) => w * to_surge[ch],
                        None => w,
                    });
                    e.2.push(d);
                }
            }
        }
    }
    let pop_index = |u: usize| {
        cell_units
            .iter()
            .position(|&x| x == u)
            .expect("a cell unit")
    };
    let mut connections = Vec::new();
    let mut connectome = Vec::new();
    for ((tid, _, su, tu, ch), edges) in groups {
        let post = &populations[pop_index(tu)];
        let channel = post.neuron.channel_names()[ch].clone();
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
            autapses: su == tu,
            lamtha: None,
            edges: Some(name.clone()),
            synapses: None,
        });
        connectome.push((name, edges));
    }

    // Drives: each generator node, merged over target populations where weight, receptor and
    // delay agree; every cell of a target population must be reached exactly once.
    let mut drives: Vec<DriveSpec> = Vec::new();
    let mut by_node: BTreeMap<(usize, usize), Vec<(usize, Option<String>, f64, f64)>> =
        BTreeMap::new();
    for ((gu, node, tu), (cells, w, d, ch)) in drive_edges {
        let size = units[tu].nodes.len();
        let mut seen = vec![false; size];
        for &c in &cells {
            seen[c] = true;
        }
        let gname = generator_name(&units[gu], node);
        if cells.len() != size || seen.iter().any(|&x| !x) {
            return Err(err(
                circuit,
                format!("generator `{gname}`"),
                format!(
                    "reaches {} edges onto {} of the {size} cells of `{}`; a Surge drive reaches every cell of a population once",
                    cells.len(),
                    seen.iter().filter(|&&x| x).count(),
                    units[tu].name
                ),
                "connect each generator to whole populations, one edge per cell",
            ));
        }
        let same = |v: &[f64]| {
            v.iter()
                .all(|&x| (x - v[0]).abs() <= 1e-12 * v[0].abs().max(1e-300))
        };
        if !same(&w) || !same(&d) {
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
        let UnitKind::Cells { cell, .. } = &units[tu].kind else {
            unreachable!()
        };
        let channel = ch.map(|c| cell.channel_names()[c].clone());
        by_node
            .entry((gu, node))
            .or_default()
            .push((tu, channel, w[0], d[0]));
    }
    for ((gu, node), targets) in by_node {
        let UnitKind::Generator { template, params } = &units[gu].kind else {
            unreachable!()
        };
        let gname = generator_name(&units[gu], node);
        let mut merged: Vec<(Vec<usize>, Option<String>, f64, f64)> = Vec::new();
        for (tu, ch, w, d) in targets {
            // A bias weight is in NEST's pA until the target's units are known.
            let w = match (&units[tu].kind, ch.is_none()) {
                (UnitKind::Cells { bias_to_surge, .. }, true) => w * bias_to_surge,
                _ => w,
            };
            match merged
                .iter_mut()
                .find(|m| m.1 == ch && m.2 == w && m.3 == d)
            {
                Some(m) => m.0.push(tu),
                None => merged.push((vec![tu], ch, w, d)),
            }
        }
        let several = merged.len() > 1;
        for (tus, channel, w, d) in merged {
            let name = if several {
                format!("{gname}_{}", units[tus[0]].name)
            } else {
                gname.clone()
            };
            drives.push(generator_drive(
                &name,
                template,
                params,
                tus.iter().map(|&u| units[u].name.clone()).collect(),
                channel,
                w,
                d - dt,
                tstop,
                circuit,
            )?);
        }
    }
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

fn generator_name(u: &Unit, node: usize) -> String {
    if u.nodes.len() == 1 {
        u.name.clone()
    } else {
        format!("{}_{node}", u.name)
    }
}

/// A NEST generator as a drive. `shift` (ms) is the edge delay beyond one step: Surge delivers a
/// drive's input in the step it is emitted, NEST a delay later.
#[allow(clippy::too_many_arguments)]
fn generator_drive(
    name: &str,
    template: &str,
    p: &Map<String, Value>,
    targets: Vec<String>,
    channel: Option<String>,
    weight: f64,
    shift: f64,
    tstop: f64,
    circuit: &Path,
) -> Result<DriveSpec> {
    let what = format!("generator `{name}` ({template})");
    let n = |k: &str, d: Option<f64>| num(p, k, d, circuit, &what);
    let mut d = DriveSpec {
        name: name.to_string(),
        kind: DriveKind::Poisson,
        targets,
        fraction: 1.0,
        channel,
        rate_hz: None,
        n_sources: 1,
        weight: Some(weight),
        amplitude: None,
        sigma: None,
        times_ms: None,
        start_ms: 0.0,
        stop_ms: None,
    };
    if n("origin", Some(0.0))? != 0.0 {
        return Err(err(
            circuit,
            "origin",
            format!("{what}: a shifted origin"),
            "set origin = 0",
        ));
    }
    let window = |d: &mut DriveSpec| -> Result<()> {
        let start = n("start", Some(0.0))? + shift;
        let stop = n("stop", Some(f64::INFINITY))? + shift;
        d.start_ms = start.max(0.0);
        d.stop_ms = (stop < tstop).then_some(stop);
        Ok(())
    };
    match template {
        "poisson_generator" => {
            only_known(p, &["rate", "start", "stop", "origin"], circuit, &what)?;
            d.rate_hz = Some(n("rate", Some(0.0))?);
            window(&mut d)?;
        }
        "dc_generator" => {
            only_known(p, &["amplitude", "start", "stop", "origin"], circuit, &what)?;
            d.kind = DriveKind::Bias;
            d.amplitude = Some(n("amplitude", Some(0.0))? * weight);
            d.weight = None;
            window(&mut d)?;
        }
        "spike_generator" => {
            only_known(
                p,
                &["spike_times", "origin", "start", "stop"],
                circuit,
                &what,
            )?;
            if !p.contains_key("spike_times") {
                return Err(err(
                    circuit,
                    "spike_times",
                    format!(
                        "{what}: no spike times (trains given as simulation inputs are not imported)"
                    ),
                    "give spike_times in the generator's parameters",
                ));
            }
            let (start, stop) = (n("start", Some(0.0))?, n("stop", Some(f64::INFINITY))?);
            d.kind = DriveKind::Spikes;
            d.times_ms = Some(
                nums(p, "spike_times", circuit, &what)?
                    .into_iter()
                    .filter(|t| *t >= start && *t < stop)
                    .map(|t| t + shift)
                    .collect(),
            );
        }
        other => {
            return Err(err(
                circuit,
                "model_template",
                format!("virtual nodes of `nest:{other}` are not imported"),
                "drive the network with poisson_generator, spike_generator or dc_generator nodes",
            ));
        }
    }
    Ok(d)
}
