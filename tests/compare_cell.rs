//! `surge compare cell`: the exact replay of stored inputs reproduces the stored voltage, the metrics
//! are those `surge eval` reports on the same traces, and the voltage spectrum carries the voltage's
//! variance (Parseval).

use assert_cmd::Command;
use surge::data::DatasetReader;

fn surge() -> Command {
    Command::cargo_bin("surge").unwrap()
}

#[test]
fn compare_cell_agrees_with_eval_and_replays_the_stored_voltage() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d.h5");
    surge()
        .args([
            "gen",
            "--config",
            "experiments/dataset_pyramidal.toml",
            "--traces",
            "12",
            "--seed",
            "77",
            "--out",
        ])
        .arg(&data)
        .assert()
        .success();
    let ck = "checkpoints/lif-default/pyramidal";
    let cmp = tmp.path().join("cmp");
    surge()
        .args(["compare", "cell", "--checkpoint", ck, "--data"])
        .arg(&data)
        .args(["--traces", "12", "--out"])
        .arg(&cmp)
        .assert()
        .success();
    let ev = tmp.path().join("ev");
    surge()
        .args(["eval", "--checkpoint", ck, "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&ev)
        .assert()
        .success();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("report.json")).unwrap()).unwrap();
    let e: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(r["replay_max_abs_dv_mv"].as_f64().unwrap(), 0.0);
    for k in [
        "voltage_rmse_mv",
        "subthreshold_rmse_mv",
        "voltage_r",
        "spike_f1",
        "rate_exact_hz",
        "rate_predicted_hz",
    ] {
        let (a, b) = (r["metrics"][k].as_f64().unwrap(), e[k].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{k}: {a} vs {b}");
    }
    // Parseval: the one-sided spectrum integrates to the variance of the scored voltage.
    let reader = DatasetReader::open(std::slice::from_ref(&data)).unwrap();
    let skip = 60; // receptive field of the shipped architecture, 61 bins
    let mut var = 0.0;
    for i in 0..12 {
        let v: Vec<f64> = reader.read(i).unwrap().voltage[skip..]
            .iter()
            .map(|&x| x as f64)
            .collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        var += v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
    }
    var /= 12.0;
    let f: Vec<f64> = serde_json::from_value(r["voltage_psd"]["freqs_hz"].clone()).unwrap();
    let p: Vec<f64> = serde_json::from_value(r["voltage_psd"]["exact"].clone()).unwrap();
    let integral: f64 = p.iter().sum::<f64>() * (f[1] - f[0]);
    assert!(
        (integral / var - 1.0).abs() < 0.15,
        "spectrum integrates to {integral:.3} mV^2, variance {var:.3} mV^2"
    );
    for fig in ["voltage_spectra.png", "trace_0.png"] {
        assert!(cmp.join(fig).exists(), "{fig} missing");
    }
}
