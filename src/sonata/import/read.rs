//! Reading a SONATA circuit: its config with the manifest resolved, the type tables, the node and
//! edge populations, each check naming the file and field at fault.

use super::models::{Unit, UnitKind, cell_unit};
use crate::error::{Result, SurgeError};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub(super) fn err(
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

pub(super) fn read_json(path: &Path) -> Result<Value> {
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
pub(super) struct Circuit {
    pub(super) nodes: Vec<(PathBuf, PathBuf)>,
    pub(super) edges: Vec<(PathBuf, PathBuf)>,
    pub(super) neuron_dir: Option<PathBuf>,
    pub(super) synapse_dir: Option<PathBuf>,
}

pub(super) fn read_circuit(path: &Path) -> Result<Circuit> {
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
pub(super) fn read_types(path: &Path, id: &str) -> Result<HashMap<i64, BTreeMap<String, String>>> {
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

pub(super) fn read_ints(path: &Path, g: &hdf5::Group, name: &str, field: &str) -> Result<Vec<i64>> {
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

pub(super) fn read_floats(
    path: &Path,
    g: &hdf5::Group,
    name: &str,
    field: &str,
) -> Result<Vec<f64>> {
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

pub(super) fn read_str_attr(
    path: &Path,
    ds: &hdf5::Dataset,
    name: &str,
    field: &str,
) -> Result<String> {
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

/// Node populations of one nodes file, split into units by node type.
pub(super) struct NodePop {
    pub(super) name: String,
    /// Node id -> (unit, cell index within the unit).
    pub(super) cell_of: Vec<(usize, usize)>,
    pub(super) id_index: Option<HashMap<i64, usize>>,
}

impl NodePop {
    pub(super) fn index(&self, id: i64) -> Option<(usize, usize)> {
        let i = match &self.id_index {
            Some(m) => *m.get(&id)?,
            None => usize::try_from(id).ok()?,
        };
        self.cell_of.get(i).copied()
    }
}

pub(super) fn read_params(
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
pub(super) fn read_nodes(
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

/// One edge as read: (unit, cell) at both ends, NEST's weight, delay, receptor port, edge type.
#[derive(Clone, Copy)]
pub(super) struct Edge {
    pub(super) src: (usize, usize),
    pub(super) dst: (usize, usize),
    pub(super) weight: f64,
    pub(super) delay: f64,
    pub(super) receptor: i64,
    pub(super) edge_type: i64,
}

/// Per-edge weights and delays of one edge group, where the group holds them.
pub(super) type Columns = (Option<Vec<f64>>, Option<Vec<f64>>);

pub(super) fn read_edges(
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
        let mut per_group: HashMap<i64, Columns> = HashMap::new();
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
                    "give delays of at least the time step, as NEST requires (or a simulation config whose run.dt is that small: --simulation)",
                ));
            }
            edges.push(Edge {
                src: (su, sc),
                dst: (tu, tc),
                weight: w,
                delay: d,
                receptor,
                edge_type: tid[i],
            });
        }
        out.push((name, edges));
    }
    Ok(out)
}
