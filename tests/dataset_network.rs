//! Inputs recorded from a network: the exact engine's binned arriving input, and `surge gen --from-network`.

use assert_cmd::Command;
use surge::exact::{Sampling, simulate_with_input};
use surge::spec::{Connectome, NetworkSpec};

const SPEC: &str = r#"
name = "probe"
[simulation]
dt_ms = 0.1
duration_ms = 5.0
seed = 1
[[populations]]
name = "cells"
size = 2
[populations.neuron]
model = "lif_conductance"
[[drives]]
name = "kicks"
kind = "spikes"
targets = ["cells"]
channel = "gabaa"
times_ms = [1.0, 2.3, 2.4]
weight = 0.5
"#;

#[test]
fn binned_inputs_hold_each_arriving_weight_in_its_bin_and_channel() {
    let spec = NetworkSpec::from_toml_str(SPEC, "probe").unwrap();
    let conn = Connectome::build(&spec);
    let sampling = Sampling {
        every_steps: 5,
        channels: false,
        input_bin_steps: 5,
    };
    let res = simulate_with_input(&spec, &conn, None, sampling, &mut |_, _| {}).unwrap();
    assert_eq!((res.input_bins, res.input_channels), (10, 4));
    let gabaa = spec.populations[0].neuron.channel_index("gabaa").unwrap();
    for cell in 0..2 {
        let per_bin: Vec<f32> = (0..10)
            .map(|b| res.binned_inputs[(cell * 10 + b) * 4 + gabaa])
            .collect();
        // 1.0 ms falls in bin 2 ([1.0, 1.5) ms); 2.3 and 2.4 ms both in bin 4 ([2.0, 2.5) ms).
        let want = [0.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(per_bin, want, "cell {cell}");
        let other: f32 = (0..10)
            .flat_map(|b| (0..4).filter(|&c| c != gabaa).map(move |c| (b, c)))
            .map(|(b, c)| res.binned_inputs[(cell * 10 + b) * 4 + c])
            .sum();
        assert_eq!(other, 0.0);
    }
}

#[test]
fn gen_from_network_writes_a_readable_set_and_refuses_a_foreign_neuron() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("net.h5");
    Command::cargo_bin("surge")
        .unwrap()
        .args([
            "gen",
            "--config",
            "experiments/dataset_basket.toml",
            "--from-network",
            "experiments/hnn_alpha.toml",
        ])
        .args([
            "--populations",
            "L2_basket,L5_basket",
            "--traces",
            "40",
            "--per-run",
            "20",
        ])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let r = surge::data::DatasetReader::open(std::slice::from_ref(&out)).unwrap();
    assert_eq!(r.n_traces(), 40);
    // The column's basket cells fire at about 15 Hz in the exact network; replayed through the same
    // neuron, their recorded inputs make it fire too.
    let mut spikes = 0u64;
    for i in 0..40 {
        let t = r.read(i).unwrap();
        assert_eq!(t.regime, surge::data::Regime::Network);
        assert!(
            t.inputs.iter().any(|&x| x > 0.0),
            "trace {i} received nothing"
        );
        spikes += t.spikes.iter().map(|&s| s as u64).sum::<u64>();
    }
    let rate = spikes as f64 / 40.0;
    assert!(
        rate > 5.0 && rate < 40.0,
        "replayed basket cells fire at {rate} Hz"
    );
    let a = Command::cargo_bin("surge")
        .unwrap()
        .args([
            "gen",
            "--config",
            "experiments/dataset_pyramidal.toml",
            "--from-network",
            "experiments/hnn_alpha.toml",
        ])
        .args(["--populations", "L2_basket", "--traces", "4"])
        .arg("--out")
        .arg(dir.path().join("bad.h5"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("L2_basket") && err.contains("neuron"), "{err}");
    assert!(!dir.path().join("bad.h5").exists());
}
