//! The bad-input suite: malformed experiment files, foreign or damaged HDF5 files, broken checkpoints,
//! mismatched channels, existing or unwritable outputs, across every command. Each must exit non-zero
//! with a message that names the problem, and leave no output (and no `*.partial*` file) behind.

mod common;

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn surge() -> Command {
    Command::cargo_bin("surge").unwrap()
}

/// A small conductance-LIF set: 4 traces of 200 ms.
const DATA: &str = r#"
name = "tiny"
[dataset]
traces = 4
duration_ms = 200.0
bin_ms = 0.5
seed = 3
chunk_traces = 2
mix = { subthreshold = 1.0, suprathreshold = 1.0, network = 1.0 }
[neuron]
model = "lif_conductance"
[[channels]]
name = "ampa"
n_sources = 100
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.02, 0.2], suprathreshold = [0.5, 3.0], network = [0.2, 2.0] }
[[channels]]
name = "nmda"
n_sources = 50
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.02, 0.2], suprathreshold = [0.2, 1.0], network = [0.1, 1.0] }
[[channels]]
name = "gabaa"
n_sources = 30
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.05, 0.5], suprathreshold = [0.05, 0.5], network = [0.05, 1.0] }
[[channels]]
name = "gabab"
n_sources = 10
rate_hz = [1.0, 10.0]
weights = { subthreshold = [0.01, 0.1], suprathreshold = [0.01, 0.1], network = [0.01, 0.1] }
"#;

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn python(script: &str, args: &[&Path]) {
    let out = common::h5py(script, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies a folder with its subfolders.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every `*.partial*` file under `dir`.
fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(".partial") {
                out.push(p);
            }
        }
    }
    out
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Each must appear in stderr (case-insensitive): the field, file or value at fault.
    expect: Vec<&'static str>,
    /// Outputs the command would have written: none may exist afterwards.
    absent: Vec<PathBuf>,
}

fn case(name: &'static str, args: &[&dyn AsRef<std::ffi::OsStr>], expect: &[&'static str]) -> Case {
    Case {
        name,
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect(),
        expect: expect.to_vec(),
        absent: Vec::new(),
    }
}

impl Case {
    fn absent(mut self, p: &Path) -> Self {
        self.absent.push(p.to_path_buf());
        self
    }
}

/// The fixtures and the table of cases, built once per test binary in its own folder.
fn build() -> Table {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.as_path();
    let o = |n: &str| d.join(n);

    // ---- fixtures: one good set, then damaged copies of it ----
    let data_toml = write(&o("tiny.toml"), DATA);
    let good = o("good.h5");
    surge()
        .args(["gen", "--config"])
        .arg(&data_toml)
        .arg("--out")
        .arg(&good)
        .assert()
        .success();
    // A current-based LIF set: one channel, `syn`, where the shipped checkpoint has four receptors.
    let current = o("current.h5");
    let current_toml = write(
        &o("current.toml"),
        r#"
name = "current"
[dataset]
traces = 4
duration_ms = 200.0
bin_ms = 0.5
seed = 3
chunk_traces = 2
mix = { subthreshold = 1.0, suprathreshold = 1.0, network = 1.0 }
[neuron]
model = "lif_current"
v_threshold_mv = 20.0
v_reset_mv = 10.0
[[channels]]
name = "syn"
n_sources = 100
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.05, 0.2], suprathreshold = [0.5, 2.0], network = [0.2, 1.0] }
"#,
    );
    surge()
        .args(["gen", "--config"])
        .arg(&current_toml)
        .arg("--out")
        .arg(&current)
        .assert()
        .success();
    let coarse = o("coarse.h5");
    let coarse_toml = write(
        &o("coarse.toml"),
        &common::edit(DATA, "bin_ms = 0.5", "bin_ms = 1.0"),
    );
    surge()
        .args(["gen", "--config"])
        .arg(&coarse_toml)
        .arg("--out")
        .arg(&coarse)
        .assert()
        .success();
    let nan = o("nan.h5");
    std::fs::copy(&good, &nan).unwrap();
    python(
        "import sys, h5py; f = h5py.File(sys.argv[1], 'r+'); f['voltage'][1, 7] = float('nan'); f.close()",
        &[&nan],
    );
    let nan_input = o("nan_input.h5");
    std::fs::copy(&good, &nan_input).unwrap();
    python(
        "import sys, h5py; f = h5py.File(sys.argv[1], 'r+'); f['inputs'][2, 9, 0] = float('inf'); f.close()",
        &[&nan_input],
    );
    let v99 = o("v99.h5");
    std::fs::copy(&good, &v99).unwrap();
    python(
        "import sys, h5py, numpy as np; f = h5py.File(sys.argv[1], 'r+'); f.attrs['schema_version'] = np.uint32(99); f.close()",
        &[&v99],
    );
    let foreign = o("foreign.h5");
    python(
        "import sys, h5py; f = h5py.File(sys.argv[1], 'w'); f['x'] = [1, 2, 3]; f.close()",
        &[&foreign],
    );
    let no_voltage = o("no_voltage.h5");
    std::fs::copy(&good, &no_voltage).unwrap();
    python(
        "import sys, h5py; f = h5py.File(sys.argv[1], 'r+'); del f['voltage']; f.close()",
        &[&no_voltage],
    );
    let truncated = o("truncated.h5");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let text_h5 = write(&o("text.h5"), "this is not HDF5\n");
    let other_seed = o("other_seed.h5");
    let other_seed_toml = write(
        &o("other_seed.toml"),
        &common::edit(DATA, "seed = 3", "seed = 4"),
    );
    surge()
        .args(["gen", "--config"])
        .arg(&other_seed_toml)
        .args(["--shard", "1/2", "--out"])
        .arg(&other_seed)
        .assert()
        .success();
    let shard0 = o("shard0.h5");
    surge()
        .args(["gen", "--config"])
        .arg(&data_toml)
        .args(["--shard", "0/2", "--out"])
        .arg(&shard0)
        .assert()
        .success();

    // Checkpoints: the shipped pyramidal surrogate (channels ampa, nmda, gabaa, gabab; 0.5 ms bins), damaged.
    let shipped = repo("checkpoints/lif-default/pyramidal");
    let no_sidecar = o("ck_no_sidecar");
    copy_dir(&shipped, &no_sidecar);
    std::fs::remove_file(no_sidecar.join("surrogate.json")).unwrap();
    let bad_sidecar = o("ck_bad_sidecar");
    copy_dir(&shipped, &bad_sidecar);
    write(&bad_sidecar.join("surrogate.json"), "{\"arch\": 12");
    let bad_model = o("ck_bad_model");
    copy_dir(&shipped, &bad_model);
    let m = std::fs::read(bad_model.join("model.bpk")).unwrap();
    std::fs::write(bad_model.join("model.bpk"), &m[..m.len() / 2]).unwrap();
    let other_arch = o("ck_other_arch");
    copy_dir(&shipped, &other_arch);
    let side = std::fs::read_to_string(other_arch.join("surrogate.json")).unwrap();
    write(
        &other_arch.join("surrogate.json"),
        &side.replacen("\"lstm_hidden\": 64", "\"lstm_hidden\": 48", 1),
    );
    // A checkpoint folder for the network engine with the basket cell missing.
    let half = o("ck_half");
    copy_dir(&shipped, &half.join("pyramidal"));

    // Experiment files.
    let net_text = std::fs::read_to_string(repo("experiments/ei_small.toml")).unwrap();
    let net = |name: &str, from: &str, to: &str| {
        assert!(net_text.contains(from), "{from}");
        write(&o(name), &net_text.replacen(from, to, 1))
    };
    let hnn_text = std::fs::read_to_string(repo("experiments/hnn_column.toml")).unwrap();
    let hnn = |name: &str, from: &str, to: &str| {
        assert!(hnn_text.contains(from), "{from}");
        write(&o(name), &hnn_text.replacen(from, to, 1))
    };
    let opt_text = std::fs::read_to_string(repo("experiments/alpha_to_beta_demo.toml")).unwrap();
    let opt = |name: &str, from: &str, to: &str| {
        let t = common::edit(
            &common::edit(&opt_text, from, to),
            "network = \"hnn_alpha.toml\"",
            &format!(
                "network = \"{}\"",
                repo("experiments/hnn_alpha.toml").display()
            ),
        );
        write(&o(name), &t)
    };
    let sur_text = std::fs::read_to_string(repo("experiments/surrogate_lif.toml")).unwrap();
    let sur = |name: &str, from: &str, to: &str| {
        assert!(sur_text.contains(from), "{from}");
        write(&o(name), &sur_text.replacen(from, to, 1))
    };
    // Windows that fit the 400-bin traces, so the cases below fail for their own reason.
    let fits = sur("s_fits.toml", "window = 600", "window = 300");
    let exploding = write(
        &o("s_explode.toml"),
        &common::edit(
            &common::edit(&sur_text, "window = 600", "window = 300"),
            "lr = 1e-3",
            "lr = 1e30",
        ),
    );
    let existing = write(&o("existing.h5"), "keep me");
    let existing_ck = o("existing_ck");
    copy_dir(&shipped, &existing_ck);
    let a_file = write(&o("a_file"), "not a folder");
    let wrong_gains = write(
        &o("gains.json"),
        r#"[{"group": "x", "log_gain": 0.5}, {"group": "y", "log_gain": -0.5}]"#,
    );
    let other_run = o("other_run");
    std::fs::create_dir_all(&other_run).unwrap();
    write(
        &other_run.join("metrics.json"),
        r#"{"log_gains": [0.5, -0.5], "iterations": [], "wall_clock_s": {"optimize": 1.0}}"#,
    );
    let out = o("out");
    let out_h5 = o("out.h5");
    let alpha_demo = repo("experiments/alpha_to_beta_demo.toml");

    // A SONATA export of the small E-I network, damaged copies of it, and its import.
    let sonata = o("sonata_good");
    surge()
        .args(["export", "sonata", "--approximate", "--config"])
        .arg(repo("experiments/ei_small.toml"))
        .arg("--out")
        .arg(&sonata)
        .assert()
        .success();
    let damaged = |name: &str, script: &str| -> PathBuf {
        let d = o(name);
        copy_tree(&sonata, &d);
        python(script, &[&d]);
        d.join("circuit_config.json")
    };
    let h5_edit = |file: &str, body: &str| {
        format!(
            "import sys, h5py\nf = h5py.File(sys.argv[1] + '/network/{file}', 'r+')\n{body}\nf.close()"
        )
    };
    let text_edit = |file: &str, from: &str, to: &str| {
        format!(
            "import sys\np = sys.argv[1] + '/{file}'\nt = open(p).read()\nassert '{from}' in t\nopen(p, 'w').write(t.replace('{from}', '{to}', 1))"
        )
    };
    let no_targets = damaged(
        "sonata_no_targets",
        &h5_edit("edges.h5", "del f['edges/E_to_I/target_node_id']"),
    );
    let no_types = damaged(
        "sonata_no_types",
        &h5_edit("nodes.h5", "del f['nodes/I/node_type_id']"),
    );
    let negative_delay = damaged(
        "sonata_negative_delay",
        &h5_edit("edges.h5", "f['edges/E_to_I/0/delay'][3] = -1.5"),
    );
    let past_nodes = damaged(
        "sonata_past_nodes",
        &h5_edit("edges.h5", "f['edges/I_to_E/source_node_id'][5] = 100000"),
    );
    let unknown_template = damaged(
        "sonata_unknown_template",
        &text_edit(
            "network/node_types.csv",
            "nest:aeif_cond_beta_multisynapse",
            "nest:hh_psc_alpha",
        ),
    );
    let plastic = damaged(
        "sonata_plastic",
        &text_edit("network/edge_types.csv", "static_synapse", "stdp_synapse"),
    );
    let exponential = damaged(
        "sonata_exponential",
        &text_edit("components/E.json", "\"Delta_T\": 0.0", "\"Delta_T\": 2.0"),
    );
    let imported = o("imported.toml");
    surge()
        .args(["import", "sonata", "--circuit"])
        .arg(sonata.join("circuit_config.json"))
        .arg("--out")
        .arg(&imported)
        .assert()
        .success();
    let imported_text = std::fs::read_to_string(&imported).unwrap();
    let far_target = write(
        &o("far_target.toml"),
        &common::edit(
            &imported_text,
            "connectome = \"imported.connectome.h5\"",
            "connectome = \"far_target.connectome.h5\"",
        ),
    );
    std::fs::copy(o("imported.connectome.h5"), o("far_target.connectome.h5")).unwrap();
    python(
        "import sys, h5py\nf = h5py.File(sys.argv[1], 'r+')\ng = f['edges'][sorted(f['edges'])[0]]\ng['target'][0] = 100000\nf.close()",
        &[&o("far_target.connectome.h5")],
    );
    let changed = write(
        &o("changed.toml"),
        &common::edit(
            &imported_text,
            "connectome = \"imported.connectome.h5\"",
            "connectome = \"changed.connectome.h5\"",
        ),
    );
    std::fs::copy(o("imported.connectome.h5"), o("changed.connectome.h5")).unwrap();
    python(
        "import sys, h5py\nf = h5py.File(sys.argv[1], 'r+')\ng = f['edges'][sorted(f['edges'])[0]]\ng['weight'][0] *= 2\nf.close()",
        &[&o("changed.connectome.h5")],
    );
    let file_with_weight = write(
        &o("file_with_weight.toml"),
        &common::edit(
            &imported_text,
            "rule = \"file\"",
            "rule = \"file\"\nweight = 1.0",
        ),
    );
    let missing_connectome = write(
        &o("missing_connectome.toml"),
        &common::edit(
            &imported_text,
            "connectome = \"imported.connectome.h5\"",
            "connectome = \"nowhere.h5\"",
        ),
    );
    let out_toml = out.join("net.toml");
    let out_connectome = out.join("net.connectome.h5");
    let import = |circuit: &Path| -> Vec<String> {
        ["import", "sonata", "--circuit"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                circuit.display().to_string(),
                "--out".into(),
                out_toml.display().to_string(),
            ])
            .collect()
    };

    let import_case = |name: &'static str, circuit: &Path, expect: &[&'static str]| Case {
        name,
        args: import(circuit),
        expect: expect.to_vec(),
        absent: vec![out_toml.clone(), out_connectome.clone()],
    };

    let cases = vec![
        // ---- SONATA in ----
        import_case(
            "a SONATA edge population without its targets",
            &no_targets,
            &["edges.h5", "/edges/E_to_I/target_node_id", "missing"],
        ),
        import_case(
            "a SONATA node population without its node types",
            &no_types,
            &["nodes.h5", "/nodes/I/node_type_id", "missing"],
        ),
        import_case(
            "a SONATA edge with a negative delay",
            &negative_delay,
            &["edges.h5", "delay[3]", "-1.5"],
        ),
        import_case(
            "a SONATA edge pointing past the node count",
            &past_nodes,
            &["edges.h5", "source_node_id[5]", "100000"],
        ),
        import_case(
            "a SONATA node type of an unknown model template",
            &unknown_template,
            &["node_types.csv", "hh_psc_alpha"],
        ),
        import_case(
            "a SONATA edge type of a plastic synapse",
            &plastic,
            &["edge_types.csv", "stdp_synapse"],
        ),
        import_case(
            "a SONATA cell with the exponential spike term on",
            &exponential,
            &["components/E.json", "Delta_T = 2"],
        ),
        case(
            "a SONATA import onto an existing file",
            &[
                &"import",
                &"sonata",
                &"--circuit",
                &sonata.join("circuit_config.json"),
                &"--out",
                &existing,
            ],
            &["exists", "--force"],
        ),
        case(
            "a file connection whose synapse is past its population",
            &[&"validate", &"--config", &far_target],
            &["far_target.connectome.h5", "target 100000"],
        ),
        case(
            "a connectome file changed since the experiment was written",
            &[&"validate", &"--config", &changed],
            &["connectome_checksum", "changed.connectome.h5", "re-import"],
        ),
        case(
            "a file connection that also gives a weight",
            &[&"validate", &"--config", &file_with_weight],
            &["weight", "rule file"],
        ),
        case(
            "an experiment naming a connectome file that is not there",
            &[&"validate", &"--config", &missing_connectome],
            &["connectome", "nowhere.h5"],
        ),
        // ---- hnn-core's cells, layouts and distance-dependent connections ----
        case(
            "a gaussian connection without its space constant",
            &[
                &"simulate",
                &"--config",
                &hnn("no_lamtha.toml", "lamtha = 50.0\n", ""),
                &"--out",
                &out,
            ],
            &["lamtha", "rule gaussian"],
        )
        .absent(&out),
        case(
            "a layout that does not place every cell",
            &[
                &"simulate",
                &"--config",
                &hnn(
                    "layout.toml",
                    "layout = { grid = [10, 10] }",
                    "layout = { grid = [10, 9] }",
                ),
                &"--out",
                &out,
            ],
            &["layout", "places 90 cells"],
        )
        .absent(&out),
        case(
            "a section hnn-core's cell does not have",
            &[
                &"simulate",
                &"--config",
                &hnn(
                    "section.toml",
                    "model = \"hnn_l5_pyramidal\"",
                    "model = \"hnn_l5_pyramidal\"\nsections.apical_3 = { length_um = 100.0 }",
                ),
                &"--out",
                &out,
            ],
            &["sections.apical_3", "no section", "apical_tuft"],
        )
        .absent(&out),
        case(
            "multi-compartment cells at a coarse time step",
            &[
                &"simulate",
                &"--config",
                &hnn("coarse_hnn.toml", "dt_ms = 0.025", "dt_ms = 0.1"),
                &"--out",
                &out,
            ],
            &["simulation.dt_ms", "dt_ms <= 0.05"],
        )
        .absent(&out),
        case(
            "a dipole summed over LIF cells",
            &[
                &"simulate",
                &"--config",
                &net(
                    "lif_dipole.toml",
                    "kind = \"synaptic_current\"",
                    "kind = \"dipole\"",
                ),
                &"--out",
                &out,
            ],
            &["dipole", "no morphology"],
        )
        .absent(&out),
        case(
            "a training set of hnn-core's cells",
            &[
                &"gen",
                &"--config",
                &write(
                    &o("hnn_data.toml"),
                    &common::edit(
                        DATA,
                        "model = \"lif_conductance\"",
                        "model = \"hnn_basket\"",
                    ),
                ),
                &"--out",
                &out_h5,
            ],
            &["neuron.model", "hnn_basket"],
        )
        .absent(&out_h5),
        // ---- export ----
        case(
            "a SONATA export of cells NEST has no model for",
            &[
                &"export",
                &"sonata",
                &"--config",
                &repo("experiments/hnn_column.toml"),
                &"--out",
                &out,
            ],
            &["hnn_l2_pyramidal", "no nest point-neuron equivalent"],
        )
        .absent(&out),
        case(
            "a SONATA export onto an existing folder",
            &[
                &"export",
                &"sonata",
                &"--config",
                &repo("experiments/brunel.toml"),
                &"--out",
                &d,
            ],
            &["exists", "--force"],
        ),
        // ---- simulate / validate: experiment files ----
        case(
            "TOML syntax error",
            &[
                &"simulate",
                &"--config",
                &net("syntax.toml", "seed = 7", "seed = = 7"),
                &"--out",
                &out,
            ],
            &["syntax.toml"],
        )
        .absent(&out),
        case(
            "unknown key",
            &[
                &"simulate",
                &"--config",
                &net(
                    "unknown.toml",
                    "dt_ms = 0.1",
                    "dt_ms = 0.1\nsteps_per_ms = 10",
                ),
                &"--out",
                &out,
            ],
            &["steps_per_ms"],
        )
        .absent(&out),
        case(
            "negative time step",
            &[
                &"simulate",
                &"--config",
                &net("neg_dt.toml", "dt_ms = 0.1", "dt_ms = -0.1"),
                &"--out",
                &out,
            ],
            &["dt_ms"],
        )
        .absent(&out),
        case(
            "empty population",
            &[
                &"simulate",
                &"--config",
                &net("empty.toml", "size = 100", "size = 0"),
                &"--out",
                &out,
            ],
            &["size"],
        )
        .absent(&out),
        case(
            "connection to an unknown population",
            &[
                &"simulate",
                &"--config",
                &net("unknown_pop.toml", "post = \"E\"", "post = \"X\""),
                &"--out",
                &out,
            ],
            &["X"],
        )
        .absent(&out),
        case(
            "threshold below reset (wrong sign)",
            &[
                &"validate",
                &"--config",
                &net(
                    "thr.toml",
                    "v_threshold_mv = -50.0",
                    "v_threshold_mv = -70.0",
                ),
            ],
            &["v_threshold_mv"],
        ),
        case(
            "negative capacitance",
            &[
                &"validate",
                &"--config",
                &net("cm.toml", "c_m_pf = 200.0", "c_m_pf = -200.0"),
            ],
            &["c_m_pf"],
        ),
        case(
            "string where a number belongs",
            &[
                &"validate",
                &"--config",
                &net(
                    "units.toml",
                    "duration_ms = 500.0",
                    "duration_ms = \"500 ms\"",
                ),
            ],
            &["duration_ms"],
        ),
        case(
            "missing experiment file",
            &[&"simulate", &"--config", &o("nowhere.toml"), &"--out", &out],
            &["nowhere.toml"],
        )
        .absent(&out),
        case(
            "negative duration override",
            &[
                &"simulate",
                &"--config",
                &repo("experiments/ei_small.toml"),
                &"--duration-ms=-5",
                &"--out",
                &out,
            ],
            &["duration_ms"],
        )
        .absent(&out),
        // ---- gen ----
        case(
            "dataset TOML syntax error",
            &[
                &"gen",
                &"--config",
                &write(
                    &o("d_syntax.toml"),
                    &common::edit(DATA, "traces = 4", "traces = [4"),
                ),
                &"--out",
                &out_h5,
            ],
            &["d_syntax.toml"],
        )
        .absent(&out_h5),
        case(
            "zero traces",
            &[
                &"gen",
                &"--config",
                &write(
                    &o("d_zero.toml"),
                    &common::edit(DATA, "traces = 4", "traces = 0"),
                ),
                &"--out",
                &out_h5,
            ],
            &["traces"],
        )
        .absent(&out_h5),
        case(
            "bin shorter than the time step",
            &[
                &"gen",
                &"--config",
                &write(
                    &o("d_bin.toml"),
                    &common::edit(DATA, "bin_ms = 0.5", "bin_ms = 0.05"),
                ),
                &"--out",
                &out_h5,
            ],
            &["bin_ms"],
        )
        .absent(&out_h5),
        case(
            "inverted rate range",
            &[
                &"gen",
                &"--config",
                &write(
                    &o("d_rate.toml"),
                    &common::edit(DATA, "rate_hz = [5.0, 30.0]", "rate_hz = [30.0, 5.0]"),
                ),
                &"--out",
                &out_h5,
            ],
            &["rate_hz"],
        )
        .absent(&out_h5),
        case(
            "shard out of range",
            &[
                &"gen",
                &"--config",
                &data_toml,
                &"--shard",
                &"3/2",
                &"--out",
                &out_h5,
            ],
            &["shard"],
        )
        .absent(&out_h5),
        case(
            "existing output without --force",
            &[&"gen", &"--config", &data_toml, &"--out", &existing],
            &["already exists", "--force"],
        ),
        case(
            "output under a file (unwritable)",
            &[
                &"gen",
                &"--config",
                &data_toml,
                &"--out",
                &a_file.join("x.h5"),
            ],
            &["a_file"],
        ),
        case(
            "network population that does not exist",
            &[
                &"gen",
                &"--config",
                &repo("experiments/dataset_pyramidal.toml"),
                &"--traces",
                &"4",
                &"--from-network",
                &repo("experiments/hnn_alpha.toml"),
                &"--populations",
                &"L9_pyr",
                &"--out",
                &out_h5,
            ],
            &["L9_pyr"],
        )
        .absent(&out_h5),
        // ---- data info / merge: HDF5 files ----
        case(
            "truncated HDF5",
            &[&"data", &"info", &truncated],
            &["truncated.h5"],
        ),
        case(
            "not HDF5 at all",
            &[&"data", &"info", &text_h5],
            &["text.h5"],
        ),
        case(
            "foreign HDF5 (no schema)",
            &[&"data", &"info", &foreign],
            &["foreign.h5", "schema"],
        ),
        case(
            "another schema version",
            &[&"data", &"info", &v99],
            &["v99.h5", "99"],
        ),
        case(
            "missing dataset in the file",
            &[&"train", &"--data", &no_voltage, &"--out", &out],
            &["no_voltage.h5", "voltage"],
        )
        .absent(&out),
        case(
            "merging shards of different sets",
            &[&"data", &"merge", &shard0, &other_seed, &"--out", &out_h5],
            &["seed"],
        )
        .absent(&out_h5),
        // ---- train ----
        case(
            "NaN voltage in the training set",
            &[&"train", &"--data", &nan, &"--out", &out],
            &["nan.h5", "non-finite"],
        )
        .absent(&out),
        case(
            "infinite input in the training set",
            &[&"train", &"--data", &nan_input, &"--out", &out],
            &["nan_input.h5", "non-finite"],
        )
        .absent(&out),
        case(
            "training that diverges (learning rate 1e30)",
            &[
                &"train",
                &"--data",
                &good,
                &"--out",
                &out,
                &"--config",
                &exploding,
            ],
            &[
                "diverged",
                "nan",
                "nothing was written",
                "lower training.lr",
            ],
        )
        .absent(&out.join("model.bpk")),
        case(
            "surrogate config with an unknown key",
            &[
                &"train",
                &"--data",
                &good,
                &"--out",
                &out,
                &"--config",
                &sur("s_unknown.toml", "batch = 32", "batch = 32\nmomentum = 0.9"),
            ],
            &["momentum"],
        )
        .absent(&out),
        case(
            "training window longer than the traces",
            &[
                &"train",
                &"--data",
                &good,
                &"--out",
                &out,
                &"--config",
                &sur("s_window.toml", "window = 600", "window = 5000"),
            ],
            &["training.window"],
        )
        .absent(&out),
        case(
            "zero TCN channels",
            &[
                &"train",
                &"--data",
                &good,
                &"--out",
                &out,
                &"--config",
                &sur("s_arch.toml", "tcn_channels = 32", "tcn_channels = 0"),
            ],
            &["arch"],
        )
        .absent(&out),
        case(
            "existing checkpoint without --force",
            &[&"train", &"--data", &good, &"--out", &existing_ck],
            &["already holds a checkpoint", "--force"],
        ),
        case(
            "fine-tune with a channel mismatch",
            &[
                &"train",
                &"--data",
                &current,
                &"--out",
                &out,
                &"--init",
                &shipped,
                &"--config",
                &fits,
            ],
            &["current.h5", "channels", "syn", "gabab"],
        )
        .absent(&out),
        case(
            "resume without a training state",
            &[
                &"train",
                &"--data",
                &good,
                &"--out",
                &out,
                &"--config",
                &fits,
                &"--resume",
            ],
            &["training state"],
        ),
        case(
            "unknown backend",
            &[
                &"train",
                &"--data",
                &good,
                &"--out",
                &out,
                &"--backend",
                &"tpu",
            ],
            &["tpu"],
        )
        .absent(&out),
        // ---- eval / calibrate: checkpoints against data ----
        case(
            "checkpoint without its sidecar",
            &[
                &"eval",
                &"--checkpoint",
                &no_sidecar,
                &"--data",
                &good,
                &"--out",
                &out,
            ],
            &["surrogate.json"],
        )
        .absent(&out),
        case(
            "corrupt sidecar",
            &[
                &"eval",
                &"--checkpoint",
                &bad_sidecar,
                &"--data",
                &good,
                &"--out",
                &out,
            ],
            &["surrogate.json", "sidecar"],
        )
        .absent(&out),
        case(
            "truncated model file",
            &[
                &"eval",
                &"--checkpoint",
                &bad_model,
                &"--data",
                &good,
                &"--out",
                &out,
            ],
            &["model.bpk"],
        )
        .absent(&out),
        case(
            "sidecar of another architecture",
            &[
                &"eval",
                &"--checkpoint",
                &other_arch,
                &"--data",
                &good,
                &"--out",
                &out,
            ],
            &["model.bpk", "architecture"],
        )
        .absent(&out),
        case(
            "channel mismatch, checkpoint vs data",
            &[
                &"eval",
                &"--checkpoint",
                &shipped,
                &"--data",
                &current,
                &"--out",
                &out,
            ],
            &["current.h5", "channels"],
        )
        .absent(&out),
        case(
            "bin-width mismatch, checkpoint vs data",
            &[
                &"calibrate",
                &"--checkpoint",
                &existing_ck,
                &"--data",
                &coarse,
            ],
            &["coarse.h5", "bin"],
        ),
        // ---- optimize / compare ----
        case(
            "optimisation with a negative learning rate",
            &[
                &"optimize",
                &"--config",
                &opt("o_lr.toml", "lr = 0.1", "lr = -0.1"),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["lr"],
        )
        .absent(&out),
        case(
            "negative back-propagation chunk",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_chunk.toml",
                    "bptt_chunk_ms = 50.0",
                    "bptt_chunk_ms = -50.0",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["bptt_chunk_ms"],
        )
        .absent(&out),
        case(
            "unknown optimisation engine",
            &[
                &"optimize",
                &"--config",
                &opt("o_engine.toml", "engine = \"auto\"", "engine = \"quantum\""),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.engine", "auto, fused, burn", "exact"],
        )
        .absent(&out),
        case(
            "a surrogate spike derivative of zero width",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_width.toml",
                    "engine = \"auto\"",
                    "engine = \"exact\"\nspike_width_mv = 0.0",
                ),
                &"--out",
                &out,
            ],
            &["optimizer.spike_width_mv", "positive"],
        )
        .absent(&out),
        case(
            "a negative damping of the spike derivative",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_damping.toml",
                    "engine = \"auto\"",
                    "engine = \"exact\"\nspike_damping = -0.5",
                ),
                &"--out",
                &out,
            ],
            &["optimizer.spike_damping", ">= 0"],
        )
        .absent(&out),
        case(
            "frozen gains without per-synapse weights",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_frozen.toml",
                    "engine = \"auto\"",
                    "engine = \"exact\"\ntrain_gains = false",
                ),
                &"--out",
                &out,
            ],
            &["optimizer.train_gains", "per_synapse"],
        )
        .absent(&out),
        case(
            "unknown optimisation method",
            &[
                &"optimize",
                &"--config",
                &opt("o_method.toml", "method = \"adam\"", "method = \"newton\""),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.method", "normalized, adam or sgd"],
        )
        .absent(&out),
        case(
            "unknown way to select the result",
            &[
                &"optimize",
                &"--config",
                &opt("o_select.toml", "select = \"last\"", "select = \"best\""),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.select", "last or validation"],
        )
        .absent(&out),
        case(
            "validation seeds that are held-out seeds",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_valseeds.toml",
                    "select = \"last\"",
                    "select = \"validation\"\nvalidation_seeds = [201, 101]",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.validation_seeds", "101", "held-out"],
        )
        .absent(&out),
        case(
            "validation selection with per-synapse weights",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_valsyn.toml",
                    "select = \"last\"",
                    "select = \"validation\"\nper_synapse = true",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.select", "per_synapse"],
        )
        .absent(&out),
        case(
            "no noise windows per step",
            &[
                &"optimize",
                &"--config",
                &opt("o_batch.toml", "batch = 2", "batch = 0"),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.batch"],
        )
        .absent(&out),
        case(
            "a spike surrogate of zero scale",
            &[
                &"optimize",
                &"--config",
                &opt("o_beta.toml", "spike_beta = 0.05", "spike_beta = 0.0"),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.spike_beta"],
        )
        .absent(&out),
        case(
            "unknown step-size schedule",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_sched.toml",
                    "lr_schedule = \"cosine\"",
                    "lr_schedule = \"linear\"",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.lr_schedule", "constant or cosine"],
        )
        .absent(&out),
        case(
            "per-synapse weights with the burn engine",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_syn.toml",
                    "engine = \"auto\"",
                    "engine = \"burn\"\nper_synapse = true",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["optimizer.per_synapse", "fused"],
        )
        .absent(&out),
        case(
            "band upside down",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_band.toml",
                    "band_hz = [15.0, 60.0]",
                    "band_hz = [60.0, 15.0]",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["band_hz"],
        )
        .absent(&out),
        case(
            "signal population not in the network",
            &[
                &"optimize",
                &"--config",
                &opt(
                    "o_sig.toml",
                    "signal = [\"L5_pyr\"]",
                    "signal = [\"L6_pyr\"]",
                ),
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--out",
                &out,
            ],
            &["L6_pyr"],
        )
        .absent(&out),
        case(
            "checkpoint folder without the basket cell",
            &[
                &"optimize",
                &"--config",
                &alpha_demo,
                &"--checkpoint",
                &half,
                &"--out",
                &out,
            ],
            &["basket"],
        )
        .absent(&out.join("metrics.json")),
        case(
            "gains of another network",
            &[
                &"compare",
                &"network",
                &"--config",
                &alpha_demo,
                &"--checkpoint",
                &repo("checkpoints/lif-default"),
                &"--gains",
                &wrong_gains,
                &"--out",
                &out,
            ],
            &["gains.json", "2 gains"],
        )
        .absent(&out.join("report.json")),
        case(
            "method comparison given a surrogate run of another network",
            &[
                &"compare",
                &"methods",
                &"--config",
                &alpha_demo,
                &"--surrogate-run",
                &other_run,
                &"--out",
                &out,
            ],
            &["metrics.json", "2 finite log-gains", "15 connection groups"],
        )
        .absent(&out),
        case(
            "method comparison with no CMA-ES budget",
            &[
                &"compare",
                &"methods",
                &"--config",
                &alpha_demo,
                &"--evals",
                &"2",
                &"--out",
                &out,
            ],
            &["--evals"],
        )
        .absent(&out),
        case(
            "method comparison with a CMA-ES population of one",
            &[
                &"compare",
                &"methods",
                &"--config",
                &alpha_demo,
                &"--population",
                &"1",
                &"--out",
                &out,
            ],
            &["--population", "2 or more"],
        )
        .absent(&out),
        case(
            "unknown comparison",
            &[&"compare", &"cells", &"--config", &alpha_demo],
            &[
                "unrecognized subcommand 'cells'",
                "similar subcommand exists: 'cell'",
            ],
        ),
        case(
            "RLS route trained on a population the network lacks",
            &[
                &"compare",
                &"methods",
                &"--config",
                &opt(
                    "o_rls.toml",
                    "[recheck]",
                    "[rls]\ntrained = [\"L6_pyr\"]\n\n[recheck]",
                ),
                &"--out",
                &out,
            ],
            &["rls.trained", "L6_pyr"],
        )
        .absent(&out),
        case(
            "cell comparison without data",
            &[&"compare", &"cell", &"--out", &out],
            &["--data"],
        )
        .absent(&out),
        case(
            "network comparison without an experiment",
            &[&"compare", &"network", &"--out", &out],
            &["--config"],
        )
        .absent(&out),
        // ---- landscape / sweep ----
        case(
            "a landscape towards gains of another network",
            &[
                &"landscape",
                &"--config",
                &repo("experiments/alpha_to_beta.toml"),
                &"--to",
                &write(
                    &d.join("two_gains.json"),
                    r#"[{"log_gain": 0.5}, {"log_gain": -0.5}]"#,
                ),
                &"--out",
                &out,
            ],
            &["two_gains.json", "2 gains", "15 connection groups"],
        )
        .absent(&out),
        case(
            "a landscape on a re-check instance",
            &[
                &"landscape",
                &"--config",
                &repo("experiments/alpha_to_beta.toml"),
                &"--to",
                &repo("docs/data/gains_halfway_cmaes1.json"),
                &"--seed",
                &"100",
                &"--instances",
                &"3",
                &"--out",
                &out,
            ],
            &["instance seed 101", "re-check", "--seed"],
        )
        .absent(&out),
        case(
            "a sweep arm without its checkpoint",
            &[
                &"sweep",
                &"--config",
                &repo("experiments/alpha_to_beta.toml"),
                &"--arms",
                &"gradient:,cmaes",
                &"--heldout-seed",
                &"3",
                &"--out",
                &out,
            ],
            &["gradient:", "checkpoint", "exact"],
        )
        .absent(&out),
        // ---- rls ----
        case("unknown RLS part", &[&"rls", &"hopfield"], &["hopfield"]),
        case(
            "RLS network of one neuron",
            &[
                &"rls",
                &"spiking",
                &"--config",
                &write(&o("r_n.toml"), "n = 1\n"),
                &"--out",
                &out,
            ],
            &["n >= 2"],
        )
        .absent(&out),
        case(
            "RLS config with an unknown key",
            &[
                &"rls",
                &"rate",
                &"--config",
                &write(&o("r_key.toml"), "neurons = 100\n"),
                &"--out",
                &out,
            ],
            &["neurons"],
        )
        .absent(&out),
        case(
            "balanced RLS with a missing target file",
            &[
                &"rls",
                &"balanced",
                &"--config",
                &write(
                    &o("r_bal.toml"),
                    &common::edit(
                        &std::fs::read_to_string(repo("experiments/rls_part3.toml")).unwrap(),
                        "alm_pyramidal_rates.h5",
                        "no_such_rates.h5",
                    ),
                ),
                &"--loops",
                &"1",
                &"--out",
                &out,
            ],
            &["no_such_rates.h5"],
        )
        .absent(&out.join("trained.h5")),
        // ---- runs too large, and failures that must not leave an output folder ----
        case(
            "a run whose recording cannot fit in memory",
            &[
                &"simulate",
                &"--config",
                &repo("experiments/ei_small.toml"),
                &"--duration-ms",
                &"1e12",
                &"--out",
                &out,
            ],
            &["simulation.duration_ms", "would need about"],
        )
        .absent(&out),
        case(
            "a network whose connectome cannot fit in memory",
            &[
                &"simulate",
                &"--config",
                &net("huge.toml", "size = 400", "size = 2000000000"),
                &"--out",
                &out,
            ],
            &["populations.size", "would need about"],
        )
        .absent(&out),
        case(
            "optimisation through a checkpoint folder that does not exist",
            &[
                &"optimize",
                &"--config",
                &alpha_demo,
                &"--checkpoint",
                &"/nonexistent",
                &"--out",
                &out,
            ],
            &["/nonexistent"],
        )
        .absent(&out),
        // ---- bench ----
        case(
            "a reference the case does not have",
            &[&"bench", &"gen", &"--reference", &"pytorch"],
            &[
                "no reference `pytorch` for the gen case",
                "--reference pytorch",
            ],
        ),
    ];
    Table {
        dir: dir.clone(),
        existing,
        out,
        cases,
    }
}

struct Table {
    dir: PathBuf,
    /// A file no case may change.
    existing: PathBuf,
    /// The output folder cases write to (removed before each).
    out: PathBuf,
    cases: Vec<Case>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// Runs one case of the table: it must exit non-zero, name what is wrong, and leave nothing behind.
/// Cases share their output folder, so they run one at a time.
fn run_case(name: &str) {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = table();
    let c = t
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case `{name}` in the table"));
    let _ = std::fs::remove_dir_all(&t.out);
    let before = std::fs::read(&t.existing).unwrap();
    let output = surge().args(&c.args).output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr).to_lowercase();
    let mut why = Vec::new();
    if output.status.success() {
        why.push("exited 0".to_string());
    }
    for e in &c.expect {
        if !err.contains(&e.to_lowercase()) {
            why.push(format!("stderr does not name `{e}`"));
        }
    }
    for p in &c.absent {
        if p.exists() {
            why.push(format!("left {}", p.display()));
        }
    }
    let left = partials(&t.dir);
    if !left.is_empty() {
        why.push(format!("left partial files {left:?}"));
    }
    if std::fs::read(&t.existing).unwrap() != before {
        why.push("changed an existing file".into());
    }
    assert!(
        why.is_empty(),
        "{}: {}\n    stderr: {}",
        c.name,
        why.join("; "),
        err.trim()
    );
}

/// One test per case of the table, so a failure names its case and `cargo test CASE` runs it alone.
macro_rules! cases {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_case($name);
            }
        )*

        #[test]
        fn every_case_of_the_table_has_its_test() {
            let tested = [$($name),*];
            let t = table();
            assert!(t.cases.len() >= 30, "the suite must hold at least 30 cases");
            for c in &t.cases {
                assert!(tested.contains(&c.name), "case `{}` has no test in `cases!`", c.name);
            }
            assert_eq!(tested.len(), t.cases.len(), "a test names a case the table lacks");
        }
    };
}

cases! {
    landscape_gains_of_another_network => "a landscape towards gains of another network",
    landscape_on_a_recheck_instance => "a landscape on a re-check instance",
    sweep_arm_without_checkpoint => "a sweep arm without its checkpoint",
    sonata_edges_without_targets => "a SONATA edge population without its targets",
    sonata_nodes_without_types => "a SONATA node population without its node types",
    sonata_negative_delay => "a SONATA edge with a negative delay",
    sonata_edge_past_the_nodes => "a SONATA edge pointing past the node count",
    sonata_unknown_template => "a SONATA node type of an unknown model template",
    sonata_plastic_synapse => "a SONATA edge type of a plastic synapse",
    sonata_exponential_term => "a SONATA cell with the exponential spike term on",
    sonata_import_onto_an_existing_file => "a SONATA import onto an existing file",
    file_connection_past_its_population => "a file connection whose synapse is past its population",
    connectome_changed_since_written => "a connectome file changed since the experiment was written",
    file_connection_with_a_weight => "a file connection that also gives a weight",
    missing_connectome_file => "an experiment naming a connectome file that is not there",
    sonata_export_of_cells_nest_lacks => "a SONATA export of cells NEST has no model for",
    sonata_export_onto_an_existing_folder => "a SONATA export onto an existing folder",
    gaussian_connection_without_lamtha => "a gaussian connection without its space constant",
    layout_that_does_not_place_every_cell => "a layout that does not place every cell",
    multi_compartment_cells_at_a_coarse_step => "multi-compartment cells at a coarse time step",
    section_the_cell_does_not_have => "a section hnn-core's cell does not have",
    dipole_over_lif_cells => "a dipole summed over LIF cells",
    training_set_of_hnn_cells => "a training set of hnn-core's cells",
    a_network_whose_connectome_cannot_fit_in_memory => "a network whose connectome cannot fit in memory",
    a_run_whose_recording_cannot_fit_in_memory => "a run whose recording cannot fit in memory",
    optimisation_through_a_missing_checkpoint_folder => "optimisation through a checkpoint folder that does not exist",
    toml_syntax_error => "TOML syntax error",
    unknown_key => "unknown key",
    negative_time_step => "negative time step",
    empty_population => "empty population",
    connection_to_an_unknown_population => "connection to an unknown population",
    threshold_below_reset_wrong_sign => "threshold below reset (wrong sign)",
    negative_capacitance => "negative capacitance",
    string_where_a_number_belongs => "string where a number belongs",
    missing_experiment_file => "missing experiment file",
    negative_duration_override => "negative duration override",
    dataset_toml_syntax_error => "dataset TOML syntax error",
    zero_traces => "zero traces",
    bin_shorter_than_the_time_step => "bin shorter than the time step",
    inverted_rate_range => "inverted rate range",
    shard_out_of_range => "shard out of range",
    existing_output_without_force => "existing output without --force",
    output_under_a_file_unwritable => "output under a file (unwritable)",
    network_population_that_does_not_exist => "network population that does not exist",
    truncated_hdf5 => "truncated HDF5",
    not_hdf5_at_all => "not HDF5 at all",
    foreign_hdf5_no_schema => "foreign HDF5 (no schema)",
    another_schema_version => "another schema version",
    missing_dataset_in_the_file => "missing dataset in the file",
    merging_shards_of_different_sets => "merging shards of different sets",
    nan_voltage_in_the_training_set => "NaN voltage in the training set",
    infinite_input_in_the_training_set => "infinite input in the training set",
    training_that_diverges_learning_rate_1e30 => "training that diverges (learning rate 1e30)",
    surrogate_config_with_an_unknown_key => "surrogate config with an unknown key",
    training_window_longer_than_the_traces => "training window longer than the traces",
    zero_tcn_channels => "zero TCN channels",
    existing_checkpoint_without_force => "existing checkpoint without --force",
    fine_tune_with_a_channel_mismatch => "fine-tune with a channel mismatch",
    resume_without_a_training_state => "resume without a training state",
    unknown_backend => "unknown backend",
    checkpoint_without_its_sidecar => "checkpoint without its sidecar",
    corrupt_sidecar => "corrupt sidecar",
    truncated_model_file => "truncated model file",
    sidecar_of_another_architecture => "sidecar of another architecture",
    channel_mismatch_checkpoint_vs_data => "channel mismatch, checkpoint vs data",
    bin_width_mismatch_checkpoint_vs_data => "bin-width mismatch, checkpoint vs data",
    optimisation_with_a_negative_learning_rate => "optimisation with a negative learning rate",
    negative_back_propagation_chunk => "negative back-propagation chunk",
    unknown_optimisation_engine => "unknown optimisation engine",
    a_surrogate_spike_derivative_of_zero_width => "a surrogate spike derivative of zero width",
    a_negative_damping_of_the_spike_derivative => "a negative damping of the spike derivative",
    frozen_gains_without_per_synapse_weights => "frozen gains without per-synapse weights",
    unknown_optimisation_method => "unknown optimisation method",
    unknown_way_to_select_the_result => "unknown way to select the result",
    validation_seeds_that_are_held_out_seeds => "validation seeds that are held-out seeds",
    validation_selection_with_per_synapse_weights => "validation selection with per-synapse weights",
    no_noise_windows_per_step => "no noise windows per step",
    a_spike_surrogate_of_zero_scale => "a spike surrogate of zero scale",
    unknown_step_size_schedule => "unknown step-size schedule",
    per_synapse_weights_with_the_burn_engine => "per-synapse weights with the burn engine",
    band_upside_down => "band upside down",
    signal_population_not_in_the_network => "signal population not in the network",
    checkpoint_folder_without_the_basket_cell => "checkpoint folder without the basket cell",
    gains_of_another_network => "gains of another network",
    method_comparison_given_a_surrogate_run_of_another_network => "method comparison given a surrogate run of another network",
    method_comparison_with_no_cma_es_budget => "method comparison with no CMA-ES budget",
    method_comparison_with_a_cma_es_population_of_one => "method comparison with a CMA-ES population of one",
    unknown_comparison => "unknown comparison",
    rls_route_trained_on_a_population_the_network_lacks => "RLS route trained on a population the network lacks",
    cell_comparison_without_data => "cell comparison without data",
    network_comparison_without_an_experiment => "network comparison without an experiment",
    rls_network_of_one_neuron => "RLS network of one neuron",
    rls_config_with_an_unknown_key => "RLS config with an unknown key",
    balanced_rls_with_a_missing_target_file => "balanced RLS with a missing target file",
    a_reference_the_case_does_not_have => "a reference the case does not have",
    unknown_rls_part => "unknown RLS part",
}
