//! Surrogate training sets: an independent reader (h5py) agrees with what Surge wrote, stored inputs
//! reproduce the stored voltage, data do not depend on threads or shards, and bad files are refused.

mod common;

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use surge::data::generate::simulate_inputs;
use surge::data::{DatasetConfig, DatasetReader, Regime, generate_to_file, merge};

const SMALL: &str = r#"
name = "small"
[dataset]
traces = 24
duration_ms = 200.0
bin_ms = 0.5
seed = 5
chunk_traces = 5
mix = { subthreshold = 1.0, suprathreshold = 1.0, network = 1.0 }
[neuron]
model = "lif_conductance"
[[channels]]
name = "ampa"
n_sources = 100
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.02, 0.2], suprathreshold = [0.5, 3.0], network = [0.2, 2.0] }
[[channels]]
name = "gabaa"
n_sources = 30
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.05, 0.5], suprathreshold = [0.05, 0.5], network = [0.05, 1.0] }
"#;

/// Tests here run one at a time: HDF5 opens files without close-on-exec, so a child process started by
/// one test (h5py, the CLI) would inherit another test's open file and its lock.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn small() -> DatasetConfig {
    DatasetConfig::from_toml_str(SMALL, "small").unwrap()
}

fn make_set(dir: &Path, name: &str, shard: (u32, u32)) -> PathBuf {
    let cfg = small();
    generate_to_file(&cfg, SMALL, &dir.join(name), shard, &mut |_, _| {}).unwrap()
}

fn all_traces(r: &DatasetReader) -> Vec<surge::data::h5::TraceData> {
    (0..r.n_traces()).map(|i| r.read(i).unwrap()).collect()
}

#[test]
fn h5py_reads_what_surge_wrote() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = make_set(dir.path(), "set.h5", (0, 1));
    let r = DatasetReader::open(std::slice::from_ref(&path)).unwrap();
    let t5 = r.read(5).unwrap();
    let script = r#"
import json, sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
out = {
  "schema": f.attrs["schema"], "version": int(f.attrs["schema_version"]), "bin_ms": float(f.attrs["bin_ms"]),
  "seed": int(f.attrs["seed"]), "channels": [str(c) for c in f.attrs["channel_names"]],
  "inputs": list(f["inputs"].shape), "voltage": list(f["voltage"].shape), "spikes": list(f["spikes"].shape),
  "regime": f["regime"][:].tolist(), "v5": f["voltage"][5, :50].astype(float).tolist(),
  "in5_sum": float(f["inputs"][5].astype(np.float64).sum()), "spikes5": int(f["spikes"][5].sum()),
  "neuron": json.loads(f.attrs["neuron_model"])["model"], "compressed": f["inputs"].compression,
}
print(json.dumps(out))
"#;
    let out = common::h5py(script, &[&path]);
    assert!(
        out.status.success(),
        "h5py failed (pip install h5py): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "surge.dataset");
    assert_eq!(v["version"], 1);
    assert_eq!(v["bin_ms"], 0.5);
    assert_eq!(v["seed"], 5);
    assert_eq!(
        v["channels"],
        serde_json::json!(["ampa", "nmda", "gabaa", "gabab"])
    );
    assert_eq!(v["inputs"], serde_json::json!([24, 400, 4]));
    assert_eq!(v["voltage"], serde_json::json!([24, 400]));
    assert_eq!(v["spikes"], serde_json::json!([24, 400]));
    assert_eq!(v["neuron"], "lif_conductance");
    assert_eq!(v["compressed"], "gzip");
    let regimes: Vec<u8> = all_traces(&r).iter().map(|t| t.regime as u8).collect();
    assert_eq!(v["regime"], serde_json::json!(regimes));
    let v5: Vec<f64> = serde_json::from_value(v["v5"].clone()).unwrap();
    for (a, b) in v5.iter().zip(&t5.voltage[..50]) {
        assert_eq!(*a, *b as f64);
    }
    let in_sum: f64 = t5.inputs.iter().map(|&x| x as f64).sum();
    assert!((v["in5_sum"].as_f64().unwrap() - in_sum).abs() < 1e-6 * in_sum.abs().max(1.0));
    assert_eq!(
        v["spikes5"].as_u64().unwrap(),
        t5.spikes.iter().map(|&s| s as u64).sum::<u64>()
    );
}

#[test]
fn stored_inputs_reproduce_the_stored_voltage_and_spikes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = make_set(dir.path(), "set.h5", (0, 1));
    let r = DatasetReader::open(&[path]).unwrap();
    let cfg = small();
    let traces = all_traces(&r);
    let inputs: Vec<f32> = traces
        .iter()
        .flat_map(|t| t.inputs.iter().copied())
        .collect();
    let (v, s) = simulate_inputs(&cfg, traces.len(), &inputs).unwrap();
    let mut fired = 0;
    for (k, t) in traces.iter().enumerate() {
        assert_eq!(v[k], t.voltage, "trace {k}: re-simulated voltage differs");
        assert_eq!(s[k], t.spikes, "trace {k}: re-simulated spikes differ");
        fired += t.spikes.iter().any(|&x| x > 0) as usize;
    }
    assert!(fired > 0, "some traces fire");
    // The inputs are what reaches the cell: the voltage does respond to them.
    let silent: Vec<f32> = vec![0.0; inputs.len()];
    let (v0, _) = simulate_inputs(&cfg, traces.len(), &silent).unwrap();
    assert!(v0.iter().all(|tr| tr.iter().all(|&x| x == -65.0)));
}

#[test]
fn data_do_not_depend_on_threads_and_shards_merge_to_the_whole_set() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = small();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let a = one.install(|| {
        generate_to_file(
            &cfg,
            SMALL,
            &dir.path().join("t1.h5"),
            (0, 1),
            &mut |_, _| {},
        )
        .unwrap()
    });
    let b = make_set(dir.path(), "t2.h5", (0, 1));
    let ra = all_traces(&DatasetReader::open(&[a]).unwrap());
    let rb = all_traces(&DatasetReader::open(&[b]).unwrap());
    assert_eq!(ra, rb);
    // Three shards, read as one set and merged, equal the whole set.
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| make_set(dir.path(), &format!("s{i}.h5"), (i, 3)))
        .collect();
    let as_set =
        DatasetReader::open(&[shards[2].clone(), shards[0].clone(), shards[1].clone()]).unwrap();
    assert_eq!(all_traces(&as_set), ra);
    let merged = merge(&shards, &dir.path().join("merged.h5")).unwrap();
    let m = DatasetReader::open(&[merged]).unwrap();
    assert_eq!(m.shards()[0].count, 1);
    assert_eq!(all_traces(&m), ra);
    // Another seed gives other data.
    let mut other = small();
    other.dataset.seed = Some(6);
    let c = generate_to_file(
        &other,
        SMALL,
        &dir.path().join("other.h5"),
        (0, 1),
        &mut |_, _| {},
    )
    .unwrap();
    assert_ne!(
        all_traces(&DatasetReader::open(&[c]).unwrap())[0].inputs,
        ra[0].inputs
    );
    // Overlapping or incomplete shard lists are refused.
    let err = DatasetReader::open(&[shards[0].clone(), shards[0].clone()])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("each shard once"), "{err}");
    let err = merge(
        &[shards[0].clone(), shards[2].clone()],
        &dir.path().join("gap.h5"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("leave traces"), "{err}");
    // A refused merge leaves neither a file nor a partial one.
    assert!(!dir.path().join("gap.h5").exists());
    assert!(!dir.path().join("gap.partial.h5").exists());
}

#[test]
fn regimes_span_silent_to_strongly_driven_cells() {
    let _serial = serial();
    let cfg = DatasetConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/dataset_lif.toml"
    )))
    .unwrap()
    .0;
    let traces = surge::data::generate_traces(&cfg, 0..96).unwrap();
    let median = |r: Regime| {
        let mut x: Vec<f32> = traces
            .iter()
            .filter(|t| t.regime == r)
            .map(|t| t.rate_hz)
            .collect();
        x.sort_by(f32::total_cmp);
        x[x.len() / 2]
    };
    let (sub, sup, net) = (
        median(Regime::Subthreshold),
        median(Regime::Suprathreshold),
        median(Regime::Network),
    );
    eprintln!("median rates: subthreshold {sub} Hz, suprathreshold {sup} Hz, network {net} Hz");
    assert!(sub < 1.0 && sup > 5.0 && net > 2.0);
    // Network-regime traces carry their rhythm in 2-80 Hz; the others none.
    assert!(
        traces.iter().all(|t| (t.regime == Regime::Network)
            == (t.modulation_hz >= 2.0 && t.modulation_hz <= 80.0))
    );
}

fn surge() -> Command {
    Command::cargo_bin("surge").unwrap()
}

#[test]
fn bad_dataset_files_are_refused_with_a_reason() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let good = make_set(dir.path(), "good.h5", (0, 1));
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.h5");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.path().join("text.h5");
    std::fs::write(&text, b"not hdf5 at all").unwrap();
    let foreign = dir.path().join("foreign.h5");
    hdf5::File::create(&foreign)
        .unwrap()
        .new_dataset::<f32>()
        .shape(3)
        .create("x")
        .unwrap();
    let version = dir.path().join("version.h5");
    std::fs::copy(&good, &version).unwrap();
    {
        let f = hdf5::File::open_rw(&version).unwrap();
        f.attr("schema_version")
            .unwrap()
            .write_scalar(&7u32)
            .unwrap();
    }
    let nan = dir.path().join("nan.h5");
    std::fs::copy(&good, &nan).unwrap();
    {
        let f = hdf5::File::open_rw(&nan).unwrap();
        let v = f.dataset("voltage").unwrap();
        v.write_slice(&ndarray::arr1(&[f32::NAN]), ndarray::s![3, 10..11])
            .unwrap();
    }
    for (file, needle) in [
        (&truncated, "cannot be opened as HDF5"),
        (&text, "cannot be opened as HDF5"),
        (&foreign, "missing root attribute `schema`"),
        (&version, "schema version 7"),
        (&nan, "non-finite voltage"),
    ] {
        let err = DatasetReader::open(std::slice::from_ref(file))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(needle),
            "{}: `{err}` lacks `{needle}`",
            file.display()
        );
        surge().args(["data", "info"]).arg(file).assert().failure();
    }
    // The CLI: info works on the good file, gen refuses to overwrite, bad shards are named.
    surge()
        .args(["data", "info"])
        .arg(&good)
        .assert()
        .success()
        .stdout(predicates::str::contains("suprathreshold"));
    let cfg_path = dir.path().join("small.toml");
    std::fs::write(&cfg_path, SMALL).unwrap();
    surge()
        .args(["gen", "--config"])
        .arg(&cfg_path)
        .arg("--out")
        .arg(&good)
        .assert()
        .failure()
        .stderr(predicates::str::contains("--force"));
    surge()
        .args(["gen", "--config"])
        .arg(&cfg_path)
        .arg("--out")
        .arg(dir.path().join("x.h5"))
        .args(["--shard", "3/3"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--shard"));
    assert!(!dir.path().join("x.h5").exists());
}

#[test]
fn an_unfinished_writer_leaves_no_complete_looking_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = small();
    let out = dir.path().join("unfinished.h5");
    let traces = surge::data::generate_traces(&cfg, 0..5).unwrap();
    {
        let info = surge::data::h5::ShardInfo::of(0, 1, 24);
        let mut w = surge::data::DatasetWriter::create(&out, &cfg, SMALL, info).unwrap();
        w.append(&traces).unwrap();
        // Dropped without finish(), as when the process is killed.
    }
    assert!(!out.exists());
    assert!(dir.path().join("unfinished.partial.h5").exists());
}

#[test]
fn bad_dataset_configs_name_their_field() {
    let _serial = serial();
    for (from, to, needle) in [
        ("traces = 24", "traces = 0", "dataset.traces"),
        ("seed = 5\n", "", "dataset.seed"),
        ("bin_ms = 0.5", "bin_ms = 0.25", "dataset.bin_ms"),
        (
            "name = \"gabaa\"",
            "name = \"gaba\"",
            "channels[1] (gaba).name",
        ),
        (
            "rate_hz = [5.0, 30.0]",
            "rate_hz = [30.0, 5.0]",
            "channels[0] (ampa).rate_hz",
        ),
        (
            "subthreshold = [0.02, 0.2]",
            "subthreshold = [0.0, 0.2]",
            "channels[0] (ampa).weights.subthreshold",
        ),
        (
            "duration_ms = 200.0",
            "duration_ms = 200.2",
            "dataset.duration_ms",
        ),
        ("n_sources = 100", "n_sources = 100\nfoo = 1", "foo"),
    ] {
        assert!(SMALL.contains(from), "{from}");
        let err = DatasetConfig::from_toml_str(&SMALL.replacen(from, to, 1), "x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(needle), "`{err}` lacks `{needle}`");
    }
}

#[test]
fn current_based_sets_carry_signed_inputs() {
    let _serial = serial();
    let text = r#"
name = "current"
[dataset]
traces = 6
duration_ms = 100.0
seed = 3
mix = { suprathreshold = 1.0 }
[neuron]
model = "lif_current"
tau_m_ms = 20.0
v_threshold_mv = 20.0
v_reset_mv = 10.0
channels = [{ name = "exc", tau_ms = 5.0 }, { name = "inh", tau_ms = 5.0 }]
[[channels]]
name = "exc"
n_sources = 50
rate_hz = [10.0, 20.0]
weights = { subthreshold = [0.1, 0.2], suprathreshold = [0.5, 1.0], network = [0.5, 1.0] }
[[channels]]
name = "inh"
n_sources = 50
rate_hz = [10.0, 20.0]
weights = { subthreshold = [0.1, 0.2], suprathreshold = [0.5, 1.0], network = [0.5, 1.0] }
"#;
    let cfg = DatasetConfig::from_toml_str(text, "current").unwrap();
    let traces = surge::data::generate_traces(&cfg, 0..6).unwrap();
    for t in &traces {
        assert_eq!(t.regime, Regime::Suprathreshold);
        // Excitatory inputs are positive, inhibitory (the `inh` channel) negative.
        assert!(t.inputs.chunks(2).all(|b| b[0] >= 0.0 && b[1] <= 0.0));
        assert!(t.inputs.iter().any(|&x| x > 0.0) && t.inputs.iter().any(|&x| x < 0.0));
        // Each input lies within the weight range times the spikes in the bin, and counts match the
        // sources' rates: about n_active * rate * 0.1 s spikes per channel.
        let exc_total: f64 = t.inputs.chunks(2).map(|b| b[0] as f64).sum();
        let expected = t.input_rate_hz[0] as f64 * 0.1 * t.weight_mean[0] as f64;
        assert!(
            (exc_total - expected).abs() < 0.35 * expected,
            "{exc_total} vs {expected}"
        );
    }
}
