//! End to end: the `surge` binary on a small network, its files read back, and bad input refused
//! without leaving output behind.

mod common;

use assert_cmd::Command;
use std::path::Path;

fn surge() -> Command {
    Command::cargo_bin("surge").unwrap()
}

fn config() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/ei_small.toml"
    ))
}

#[test]
fn simulate_writes_results_metrics_and_figures_that_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    surge()
        .args(["simulate", "--config"])
        .arg(config())
        .arg("--out")
        .arg(&out)
        .args(["--duration-ms", "300", "--seed", "11"])
        .assert()
        .success();
    for f in [
        "results.h5",
        "metrics.json",
        "raster.svg",
        "raster.png",
        "rates.png",
        "psd.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(
        std::fs::read_dir(&out).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("partial"))
    );

    let file = hdf5::File::open(out.join("results.h5")).unwrap();
    let schema: hdf5::types::VarLenUnicode = file.attr("schema").unwrap().read_scalar().unwrap();
    assert_eq!(schema.as_str(), "surge.results");
    let seed: u64 = file.attr("seed").unwrap().read_scalar().unwrap();
    assert_eq!(seed, 11);
    let stored_text: hdf5::types::VarLenUnicode =
        file.attr("config").unwrap().read_scalar().unwrap();
    let stored = surge::spec::NetworkSpec::from_toml_str(stored_text.as_str(), "stored")
        .expect("the stored config reproduces the run");
    assert_eq!(stored.simulation.duration_ms, 300.0);
    assert_eq!(stored.seed(), 11);

    let times: Vec<f64> = file.dataset("spikes/times_ms").unwrap().read_raw().unwrap();
    let cells: Vec<u32> = file.dataset("spikes/cells").unwrap().read_raw().unwrap();
    let counts: Vec<u32> = file.dataset("spikes/counts").unwrap().read_raw().unwrap();
    assert_eq!(times.len(), cells.len());
    assert!(!times.is_empty(), "the driven network fires");
    assert!(times.windows(2).all(|w| w[0] <= w[1]) && times.iter().all(|&t| t > 0.0 && t <= 300.0));
    assert_eq!(
        counts.iter().map(|&c| c as usize).sum::<usize>(),
        times.len()
    );
    let v = file.dataset("voltages/E/v_mv").unwrap();
    assert_eq!(v.shape(), vec![2, 3000]);
    let v: Vec<f32> = v.read_raw().unwrap();
    // Voltages stay between the GABA reversal and threshold.
    assert!(v.iter().all(|&x| (-81.0..-50.0).contains(&x)));
    let dipole: Vec<f64> = file
        .dataset("signals/dipole_proxy")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(dipole.len(), 3000);

    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let e_rate = metrics["populations"][0]["rate_hz"].as_f64().unwrap();
    let e_spikes: u32 = counts[..400].iter().sum();
    assert!(
        (e_rate - e_spikes as f64 / 400.0 / 0.3).abs() < 1e-9,
        "metrics rate agrees with the spikes in results.h5"
    );
    assert_eq!(metrics["seed"].as_u64(), Some(11));

    // A second run into the same folder is refused without --force and leaves the first intact.
    let before = std::fs::read(out.join("results.h5")).unwrap();
    surge()
        .args(["simulate", "--config"])
        .arg(config())
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicates::str::contains("--force"));
    assert_eq!(std::fs::read(out.join("results.h5")).unwrap(), before);
}

#[test]
fn bad_input_fails_cleanly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = common::edit(
        &std::fs::read_to_string(config()).unwrap(),
        "rate_hz = 10.0",
        "rate_hz = -10.0",
    );
    std::fs::write(&bad, text).unwrap();
    let out = dir.path().join("never");
    surge()
        .args(["simulate", "--config"])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicates::str::contains("drives[0] (background).rate_hz"));
    assert!(!out.exists(), "no output folder for a refused experiment");

    surge()
        .args(["simulate", "--config"])
        .arg(dir.path().join("missing.toml"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("missing.toml"));

    // An output folder that cannot be created.
    let file = dir.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    surge()
        .args(["simulate", "--config"])
        .arg(config())
        .arg("--out")
        .arg(file.join("sub"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("cannot create output folder"));

    // An override that breaks the spec.
    surge()
        .args(["simulate", "--config"])
        .arg(config())
        .arg("--duration-ms=-5")
        .assert()
        .failure()
        .stderr(predicates::str::contains("simulation.duration_ms"));
}

#[test]
fn rls_spiking_runs_from_its_experiment_file_and_reports_the_test_correlation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/rls_part2.toml"
    ));
    surge()
        .args(["rls", "spiking", "--loops", "3", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(dir.path())
        .assert()
        .success();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(m["config"]["loops"], 3);
    let r = m["result"]["mean_test_r"].as_f64().unwrap();
    assert!(r > 0.9, "test r after 3 loops {r}");
    assert_eq!(m["result"]["train_r"].as_array().unwrap().len(), 3);
    surge()
        .args(["rls", "hopfield"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "unrecognized subcommand 'hopfield'",
        ))
        .stderr(predicates::str::contains("Usage: surge rls <COMMAND>"));
}
