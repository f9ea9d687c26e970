//! The shipped accurate surrogates (`checkpoints/lif-accurate`, trained by `experiments/surrogate_lif.toml`) meet the
//! accuracy bars on held-out traces they never saw: inputs drawn from the column at another seed than their training
//! sets, replayed through the exact conductance LIF. Bars: voltage r >= 0.97, RMSE <= 0.5 mV in bins more than 5 ms
//! from an exact spike, coincidence factor >= 0.85.

use assert_cmd::Command;

fn held_out_metrics(
    cell: &str,
    dataset: &str,
    pops: &str,
    max_gain: &str,
    seed: &str,
) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("held.h5");
    Command::cargo_bin("surge")
        .unwrap()
        .args([
            "gen",
            "--config",
            dataset,
            "--from-network",
            "experiments/hnn_alpha.toml",
        ])
        .args([
            "--populations",
            pops,
            "--max-abs-log-gain",
            max_gain,
            "--traces",
            "64",
        ])
        .args(["--seed", seed, "--out"])
        .arg(&data)
        .assert()
        .success();
    let out = dir.path().join("eval");
    Command::cargo_bin("surge")
        .unwrap()
        .args([
            "eval",
            "--checkpoint",
            &format!("checkpoints/lif-accurate/{cell}"),
            "--data",
        ])
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
}

fn check(cell: &str, m: &serde_json::Value) {
    let f = |k: &str| m[k].as_f64().unwrap();
    eprintln!(
        "{cell}: r {:.4}, RMSE {:.3} mV (subthreshold {:.3} mV), F1 {:.3}, Gamma {:.3}, rate {:.2} vs {:.2} Hz",
        f("voltage_r"),
        f("voltage_rmse_mv"),
        f("subthreshold_rmse_mv"),
        f("spike_f1"),
        f("coincidence_gamma"),
        f("rate_predicted_hz"),
        f("rate_exact_hz")
    );
    assert!(f("voltage_r") >= 0.97, "{cell}: r {}", f("voltage_r"));
    assert!(
        f("subthreshold_rmse_mv") <= 0.5,
        "{cell}: subthreshold RMSE {} mV",
        f("subthreshold_rmse_mv")
    );
    assert!(
        f("coincidence_gamma") >= 0.85,
        "{cell}: Gamma {}",
        f("coincidence_gamma")
    );
}

#[test]
fn accurate_pyramidal_surrogate_meets_the_bars_on_held_out_traces() {
    let m = held_out_metrics(
        "pyramidal",
        "experiments/dataset_pyramidal.toml",
        "L2_pyr,L5_pyr",
        "2.0",
        "2013",
    );
    check("pyramidal", &m);
}

#[test]
fn accurate_basket_surrogate_meets_the_bars_on_held_out_traces() {
    let m = held_out_metrics(
        "basket",
        "experiments/dataset_basket.toml",
        "L2_basket,L5_basket",
        "1.0",
        "2014",
    );
    check("basket", &m);
}
