//! A network instance out to SONATA, as NEST reads it: the populations as NEST point neurons, the
//! connectome Surge would simulate (weights with gains applied, delays), the drives as generator
//! nodes. Everything goes into a `*.partial` folder renamed into place when complete.

use super::{C_M_PF, h5};
use crate::error::{Result, SurgeError};
use crate::spec::{CellSpec, Connectome, DriveKind, Kick, NetworkSpec};
use hdf5::types::VarLenUnicode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The NEST model of one population and how a Surge weight on each channel becomes a NEST one.
struct NestModel {
    template: &'static str,
    params: Value,
    /// Per channel: the factor from Surge's weight to NEST's, and NEST's receptor port (1-based).
    weight_factor: Vec<f64>,
    /// What the mapping changed (`--approximate`), for the export's README.
    changes: Vec<String>,
}

/// A script that builds and runs the export in NEST from its files with h5py.
const RUN_NEST: &str = include_str!("run_nest.py");

fn nest_model(spec: &NetworkSpec, pi: usize, approximate: bool) -> Result<NestModel> {
    let p = &spec.populations[pi];
    let field = format!("populations[{pi}] ({}).neuron", p.name);
    match &p.neuron {
        CellSpec::LifCurrent(c) => {
            // tau_m dv/dt = ... + u; a spike adds w tau_m / tau_s (delta_psp) or w / tau_s (charge) to
            // u, so dv/dt jumps by w / tau_s or w / (tau_m tau_s); NEST's dV/dt jumps by J / C_m.
            let weight_factor = c
                .channels
                .iter()
                .map(|ch| match ch.kick {
                    Kick::DeltaPsp => C_M_PF / ch.tau_ms,
                    Kick::Charge => C_M_PF / (ch.tau_ms * c.tau_m_ms),
                })
                .collect();
            Ok(NestModel {
                template: "nest:iaf_psc_exp_multisynapse",
                params: json!({
                    "C_m": C_M_PF, "tau_m": c.tau_m_ms, "E_L": c.v_rest_mv, "V_th": c.v_threshold_mv,
                    "V_reset": c.v_reset_mv, "t_ref": c.t_ref_ms,
                    "tau_syn": c.channels.iter().map(|ch| ch.tau_ms).collect::<Vec<_>>(),
                }),
                weight_factor,
                changes: Vec::new(),
            })
        }
        CellSpec::LifConductance(c) => {
            let mut changes = Vec::new();
            let nmda_used =
                spec.connections
                    .iter()
                    .any(|k| k.post == p.name && k.channel == "nmda")
                    || spec.drives.iter().any(|d| {
                        d.targets.contains(&p.name) && d.channel.as_deref() == Some("nmda")
                    });
            if c.mg_mm > 0.0 && nmda_used {
                if !approximate {
                    return Err(SurgeError::spec(
                        format!("{field}.mg_mm"),
                        format!(
                            "population `{}` has NMDA input with a magnesium block, which no NEST built-in model has",
                            p.name
                        ),
                        "export with --approximate (the block is dropped, as Surge runs with mg_mm = 0), or set mg_mm = 0",
                    ));
                }
                changes.push(format!(
                    "`{}`: the NMDA magnesium block (mg_mm = {}) is dropped; run Surge with mg_mm = 0 to compare",
                    p.name, c.mg_mm
                ));
            }
            let r = c.receptors.as_array();
            Ok(NestModel {
                template: "nest:aeif_cond_beta_multisynapse",
                // The adaptive exponential model with its exponential and adaptation off: a
                // conductance-based LIF whose spike is the crossing of V_peak = V_th.
                params: json!({
                    "C_m": c.c_m_pf, "g_L": c.g_l_ns, "E_L": c.e_l_mv, "V_th": c.v_threshold_mv,
                    "V_peak": c.v_threshold_mv, "V_reset": c.v_reset_mv, "t_ref": c.t_ref_ms,
                    "Delta_T": 0.0, "a": 0.0, "b": 0.0, "tau_w": 1.0,
                    "E_rev": r.iter().map(|x| x.e_rev_mv).collect::<Vec<_>>(),
                    "tau_rise": r.iter().map(|x| x.rise_ms).collect::<Vec<_>>(),
                    "tau_decay": r.iter().map(|x| x.decay_ms).collect::<Vec<_>>(),
                }),
                weight_factor: vec![1.0; 4],
                changes,
            })
        }
        other => Err(SurgeError::spec(
            format!("{field}.model"),
            format!(
                "`{}` (population `{}`) has no NEST point-neuron equivalent",
                other.model_name(),
                p.name
            ),
            "export networks of lif_current and lif_conductance populations",
        )),
    }
}

/// What an export wrote.
#[derive(Debug)]
pub struct Export {
    pub dir: PathBuf,
    pub nodes: usize,
    pub edges: usize,
    pub changes: Vec<String>,
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("a JSON value serialises")
}

fn str_attr(path: &Path, loc: &hdf5::Location, name: &str, value: &str) -> Result<()> {
    let v: VarLenUnicode = value.parse().expect("no NUL in names");
    h5(
        path,
        loc.new_attr::<VarLenUnicode>()
            .create(name)
            .and_then(|a| a.write_scalar(&v)),
    )
}

fn dataset<T: hdf5::H5Type>(path: &Path, g: &hdf5::Group, name: &str, data: &[T]) -> Result<()> {
    h5(path, g.new_dataset_builder().with_data(data).create(name)).map(drop)
}

/// One edge population: connections from `source` to `target` node populations.
#[derive(Default)]
struct Edges {
    source: String,
    target: String,
    src: Vec<u64>,
    dst: Vec<u64>,
    type_id: Vec<i64>,
    weight: Vec<f64>,
    delay: Vec<f64>,
}

/// Exports `spec` on `conn` to `dir` (which must not exist).
pub fn export(
    spec: &NetworkSpec,
    conn: &Connectome,
    dir: &Path,
    approximate: bool,
) -> Result<Export> {
    let models: Vec<NestModel> = (0..spec.populations.len())
        .map(|pi| nest_model(spec, pi, approximate))
        .collect::<Result<_>>()?;
    for (di, d) in spec.drives.iter().enumerate() {
        if d.kind == DriveKind::WhiteNoise {
            return Err(SurgeError::spec(
                format!("drives[{di}] ({}).kind", d.name),
                "white-noise drives have no exact NEST generator",
                "drive the network with poisson, spikes or bias drives to export it",
            ));
        }
    }
    let partial = dir.with_file_name(format!(
        "{}.partial",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("sonata")
    ));
    let _ = std::fs::remove_dir_all(&partial);
    let io = |what: &'static str, p: &Path, e| SurgeError::io(what, p, e);
    for sub in ["network", "components"] {
        std::fs::create_dir_all(partial.join(sub))
            .map_err(|e| io("cannot create", &partial.join(sub), e))?;
    }
    let dt = spec.simulation.dt_ms;

    // Node types: one per population, one per drive.
    let mut node_types =
        String::from("node_type_id model_type model_template dynamics_params pop_name\n");
    for (pi, (p, m)) in spec.populations.iter().zip(&models).enumerate() {
        let file = format!("{}.json", p.name);
        std::fs::write(partial.join("components").join(&file), pretty(&m.params))
            .map_err(|e| io("cannot write", &partial, e))?;
        node_types.push_str(&format!(
            "{} point_neuron {} {file} {}\n",
            100 + pi,
            m.template,
            p.name
        ));
    }
    for (di, d) in spec.drives.iter().enumerate() {
        let stop = d.stop_ms.unwrap_or(spec.simulation.duration_ms);
        let (template, params) = match d.kind {
            DriveKind::Poisson => (
                "nest:poisson_generator",
                json!({"rate": d.rate_hz.unwrap_or(0.0) * d.n_sources as f64, "start": d.start_ms, "stop": stop}),
            ),
            DriveKind::Spikes => (
                "nest:spike_generator",
                json!({"spike_times": d.times_ms.clone().unwrap_or_default()}),
            ),
            DriveKind::Bias => (
                "nest:dc_generator",
                json!({"amplitude": 1.0, "start": d.start_ms, "stop": stop}),
            ),
            DriveKind::WhiteNoise => unreachable!("refused above"),
        };
        let file = format!("drive_{}.json", d.name);
        std::fs::write(partial.join("components").join(&file), pretty(&params))
            .map_err(|e| io("cannot write", &partial, e))?;
        node_types.push_str(&format!(
            "{} virtual {template} {file} {}\n",
            200 + di,
            d.name
        ));
    }
    std::fs::write(partial.join("network/node_types.csv"), node_types)
        .map_err(|e| io("cannot write", &partial, e))?;

    // Nodes.
    let nodes_path = partial.join("network/nodes.h5");
    {
        let f = h5(&nodes_path, hdf5::File::create(&nodes_path))?;
        let root = h5(&nodes_path, f.create_group("nodes"))?;
        let add = |name: &str, n: usize, type_id: i64, v_init: Option<Vec<f64>>| -> Result<()> {
            let g = h5(&nodes_path, root.create_group(name))?;
            dataset(
                &nodes_path,
                &g,
                "node_id",
                &(0..n as u64).collect::<Vec<_>>(),
            )?;
            dataset(&nodes_path, &g, "node_type_id", &vec![type_id; n])?;
            dataset(&nodes_path, &g, "node_group_id", &vec![0u32; n])?;
            dataset(
                &nodes_path,
                &g,
                "node_group_index",
                &(0..n as u64).collect::<Vec<_>>(),
            )?;
            let g0 = h5(&nodes_path, g.create_group("0"))?;
            if let Some(v) = v_init {
                dataset(&nodes_path, &g0, "V_m", &v)?;
            }
            Ok(())
        };
        // Each cell's initial voltage as Surge draws it, so both simulators start alike.
        for (pi, p) in spec.populations.iter().enumerate() {
            let v = crate::exact::network::initial_voltages(spec, pi, spec.seed());
            add(&p.name, p.size, 100 + pi as i64, Some(v))?;
        }
        for (di, d) in spec.drives.iter().enumerate() {
            add(&d.name, 1, 200 + di as i64, None)?;
        }
    }

    // Edges: one population per (pre, post) pair of the connection groups, one per drive.
    let mut edge_types = String::from("edge_type_id model_template receptor_type group\n");
    let mut pops: Vec<Edges> = Vec::new();
    let pop_of = |pre: &str, post: &str, pops: &mut Vec<Edges>| -> usize {
        if let Some(i) = pops
            .iter()
            .position(|e| e.source == pre && e.target == post)
        {
            return i;
        }
        pops.push(Edges {
            source: pre.into(),
            target: post.into(),
            ..Default::default()
        });
        pops.len() - 1
    };
    for (g, c) in spec.connections.iter().enumerate() {
        let post = spec.population_index(&c.post).expect("validated");
        let ch = spec.populations[post]
            .neuron
            .channel_index(&c.channel)
            .expect("validated");
        edge_types.push_str(&format!("{} static_synapse {} {}\n", 100 + g, ch + 1, g));
    }
    for i in 0..conn.n_cells {
        let pre_pop = conn.population_of(i);
        let pre_local = (i - conn.pop_offsets[pre_pop]) as u64;
        for seg in &conn.segments[conn.seg_ptr[i]..conn.seg_ptr[i + 1]] {
            let c = &spec.connections[seg.group as usize];
            let post_pop = spec.population_index(&c.post).expect("validated");
            let factor = models[post_pop].weight_factor[seg.channel as usize];
            let e = pop_of(&spec.populations[pre_pop].name, &c.post, &mut pops);
            for k in seg.start..seg.end {
                pops[e].src.push(pre_local);
                pops[e]
                    .dst
                    .push((conn.targets[k] as usize - conn.pop_offsets[post_pop]) as u64);
                pops[e].type_id.push(100 + seg.group as i64);
                pops[e].weight.push(conn.weights[k] as f64 * factor);
                pops[e].delay.push(seg.delay_steps as f64 * dt);
            }
        }
    }
    // Drives: one edge population and one edge type (its receptor port) per target population.
    for (di, d) in spec.drives.iter().enumerate() {
        let ch_name = d.channel.clone().unwrap_or_default();
        for &cell in &conn.drive_targets[di] {
            let post_pop = conn.population_of(cell as usize);
            let post = &spec.populations[post_pop];
            let (weight, receptor) = match d.kind {
                // dc_generator: the bias in pA (conductance-based) or mV x C_m / tau_m (current-based).
                DriveKind::Bias => {
                    let a = d.amplitude.unwrap_or(0.0);
                    let w = match &post.neuron {
                        CellSpec::LifCurrent(c) => a * C_M_PF / c.tau_m_ms,
                        _ => a,
                    };
                    (w, 0)
                }
                _ => {
                    let ch = post.neuron.channel_index(&ch_name).expect("validated");
                    (
                        d.weight.unwrap_or(0.0) * models[post_pop].weight_factor[ch],
                        ch + 1,
                    )
                }
            };
            let known = pops.len();
            let e = pop_of(&d.name, &post.name, &mut pops);
            let type_id = 1000 + e as i64;
            if e == known {
                edge_types.push_str(&format!("{type_id} static_synapse {receptor} drive\n"));
            }
            let edges = &mut pops[e];
            edges.src.push(0);
            edges
                .dst
                .push((cell as usize - conn.pop_offsets[post_pop]) as u64);
            edges.type_id.push(type_id);
            edges.weight.push(weight);
            // Surge delivers a drive's spike in the step it falls in; NEST needs a delay of a step.
            edges.delay.push(dt);
        }
    }
    std::fs::write(partial.join("network/edge_types.csv"), edge_types)
        .map_err(|e| io("cannot write", &partial, e))?;
    let edges_path = partial.join("network/edges.h5");
    let mut n_edges = 0;
    {
        let f = h5(&edges_path, hdf5::File::create(&edges_path))?;
        let root = h5(&edges_path, f.create_group("edges"))?;
        for e in pops.iter().filter(|e| !e.src.is_empty()) {
            let g = h5(
                &edges_path,
                root.create_group(&format!("{}_to_{}", e.source, e.target)),
            )?;
            dataset(&edges_path, &g, "source_node_id", &e.src)?;
            dataset(&edges_path, &g, "target_node_id", &e.dst)?;
            let ds = h5(&edges_path, g.dataset("source_node_id"))?;
            str_attr(&edges_path, &ds, "node_population", &e.source)?;
            let ds = h5(&edges_path, g.dataset("target_node_id"))?;
            str_attr(&edges_path, &ds, "node_population", &e.target)?;
            dataset(&edges_path, &g, "edge_type_id", &e.type_id)?;
            dataset(&edges_path, &g, "edge_group_id", &vec![0u32; e.src.len()])?;
            dataset(
                &edges_path,
                &g,
                "edge_group_index",
                &(0..e.src.len() as u64).collect::<Vec<_>>(),
            )?;
            let g0 = h5(&edges_path, g.create_group("0"))?;
            dataset(&edges_path, &g0, "syn_weight", &e.weight)?;
            dataset(&edges_path, &g0, "delay", &e.delay)?;
            n_edges += e.src.len();
        }
    }

    let changes: Vec<String> = models.iter().flat_map(|m| m.changes.clone()).collect();
    let circuit = json!({
        "manifest": {"$NETWORK_DIR": "./network", "$COMPONENTS_DIR": "./components"},
        "components": {"point_neuron_models_dir": "$COMPONENTS_DIR"},
        "networks": {
            "nodes": [{"nodes_file": "$NETWORK_DIR/nodes.h5", "node_types_file": "$NETWORK_DIR/node_types.csv"}],
            "edges": [{"edges_file": "$NETWORK_DIR/edges.h5", "edge_types_file": "$NETWORK_DIR/edge_types.csv"}],
        },
    });
    let simulation = json!({
        "run": {"tstop": spec.simulation.duration_ms, "dt": dt},
        "target_simulator": "NEST",
        "network": "circuit_config.json",
        "surge": {"name": spec.name, "seed": spec.seed(), "version": env!("CARGO_PKG_VERSION")},
    });
    let write_json = |name: &str, v: &Value| -> Result<()> {
        std::fs::write(partial.join(name), pretty(v))
            .map_err(|e| io("cannot write", &partial.join(name), e))
    };
    write_json("circuit_config.json", &circuit)?;
    std::fs::write(partial.join("run_nest.py"), RUN_NEST)
        .map_err(|e| io("cannot write", &partial, e))?;
    write_json("simulation_config.json", &simulation)?;
    let readme = format!(
        "SONATA export of `{}` (seed {}) by Surge {}.\n\nNodes: network/nodes.h5 (one population per Surge \
         population and per drive), types in network/node_types.csv, NEST parameters in components/.\n\
         Edges: network/edges.h5, syn_weight in NEST's units (pA for current-based targets, nS for \
         conductance-based), delay in ms; edge_types.csv gives each type's receptor port.\n\n\
         Run it in NEST: `python run_nest.py [--threads N]` (h5py and NEST 3).\n\n\
         Changes made for NEST: {}\n",
        spec.name,
        spec.seed(),
        env!("CARGO_PKG_VERSION"),
        if changes.is_empty() {
            "none.".to_string()
        } else {
            format!("\n- {}", changes.join("\n- "))
        }
    );
    std::fs::write(partial.join("README.md"), readme)
        .map_err(|e| io("cannot write", &partial, e))?;
    std::fs::rename(&partial, dir).map_err(|e| io("cannot rename into place", dir, e))?;
    Ok(Export {
        dir: dir.to_path_buf(),
        nodes: conn.n_cells + spec.drives.len(),
        edges: n_edges,
        changes,
    })
}
