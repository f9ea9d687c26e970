//! `surge optimize` and `surge compare network` end to end on the shipped alpha column with small random
//! surrogates (the science of the gradients is in netopt_grad.rs): files, resume, clear refusals.

mod common;

use assert_cmd::Command;
use burn::tensor::Device;
use std::path::Path;
use surge::spec::NetworkSpec;
use surge::surrogate::SurrogateArch;
use surge::surrogate::train::{Scaling, SurrogateMeta, save_checkpoint};

/// burn's Flex backend draws every model from one process-wide generator: tests running in parallel
/// would interleave their draws, so the checkpoints are drawn under a lock to be the same every run.
static DRAW: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn write_checkpoints(dir: &Path) {
    let _guard = DRAW.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(11);
    let (spec, _) = NetworkSpec::load(Path::new("experiments/hnn_alpha.toml")).unwrap();
    let channels = spec.populations[0].neuron.channel_names();
    for name in ["pyramidal", "basket"] {
        let arch = SurrogateArch {
            n_inputs: channels.len(),
            tcn_channels: 4,
            kernel: 2,
            dilations: vec![1],
            lstm_hidden: 4,
        };
        let meta = SurrogateMeta::untrained(
            arch.clone(),
            channels.clone(),
            Scaling {
                input_scale: vec![1.0; channels.len()],
                v_mean: -65.0,
                v_std: 3.0,
            },
            0.5,
        );
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        save_checkpoint(&arch.init(&device), &meta, &d).unwrap();
    }
}

/// A shipped optimisation experiment with `edits`, its network named by absolute path so that the
/// edited copy can live anywhere.
fn shipped_with(path: &str, edits: &[(&str, &str)]) -> String {
    let network = format!(
        "network = \"{}\"",
        std::fs::canonicalize("experiments/hnn_alpha.toml")
            .unwrap()
            .display()
    );
    let mut text = common::edit(
        &std::fs::read_to_string(path).unwrap(),
        "network = \"hnn_alpha.toml\"",
        &network,
    );
    for (from, to) in edits {
        text = common::edit(&text, from, to);
    }
    text
}

/// The shipped experiment made small, with exact validation selection (the shipped default is the
/// last iterate) so that the selection is exercised too.
fn small_config(dir: &Path) -> std::path::PathBuf {
    let text = shipped_with(
        "experiments/alpha_to_beta.toml",
        &[
            ("iterations = 40", "iterations = 2"),
            ("window_ms = 250.0", "window_ms = 60.0"),
            ("warmup_ms = 100.0", "warmup_ms = 10.0"),
            ("select = \"last\"", "select = \"validation\""),
            ("seeds = [101, 102, 103]", "seeds = [101]"),
            ("duration_ms = 3000.0", "duration_ms = 800.0"),
        ],
    );
    let p = dir.join("opt.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn optimize_writes_its_records_resumes_and_compare_reads_the_gains() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    write_checkpoints(&ck);
    let cfg = small_config(tmp.path());
    let out = tmp.path().join("opt");
    let surge = || Command::cargo_bin("surge").unwrap();
    surge()
        .args(["optimize", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let its = m["iterations"].as_array().unwrap();
    assert_eq!(its.len(), 2);
    assert!(its.iter().all(|r| r["loss"].as_f64().unwrap().is_finite()));
    assert_eq!(m["log_gains"].as_array().unwrap().len(), 15);
    assert_eq!(m["exact"]["before"].as_array().unwrap().len(), 1);
    for f in [
        "gains.json",
        "objective.png",
        "spectrum_surrogate.png",
        "spectrum_exact.png",
        "gains.png",
        "raster_exact_before.png",
        "raster_exact_after.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The chunked back-propagation retraced its forward pass in every iteration.
    assert!(
        its.iter()
            .all(|r| r["replay_error_mv"].as_f64() == Some(0.0)),
        "a re-run strayed: {its:?}"
    );
    // Refuses to overwrite; resumes to more iterations.
    surge()
        .args(["optimize", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure();
    surge()
        .args(["optimize", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--out")
        .arg(&out)
        .args(["--resume", "--iterations", "3"])
        .assert()
        .success();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let its = m["iterations"].as_array().unwrap();
    assert_eq!(its.len(), 3);
    // The shipped experiment keeps the iterate the exact engine scores best on its validation
    // instances, over the whole run (the resumed part's records included).
    let losses: Vec<f64> = its
        .iter()
        .map(|r| r["validation_loss"].as_f64().unwrap())
        .collect();
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let best = (0..3)
        .min_by(|&a, &b| losses[a].total_cmp(&losses[b]))
        .unwrap();
    assert_eq!(m["selected"]["iteration"].as_u64(), Some(best as u64));
    assert_eq!(m["log_gains"], its[best]["log_gains"]);
    assert_eq!(m["exact_runs_for_selection"].as_u64(), Some(3 * 2));
    // The comparison applies the optimised gains in both engines.
    let cmp = tmp.path().join("cmp");
    surge()
        .args(["compare", "network", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(&ck)
        .arg("--gains")
        .arg(out.join("gains.json"))
        .arg("--out")
        .arg(&cmp)
        .assert()
        .success();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cmp.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["log_gains"], m["log_gains"]);
    assert_eq!(r["exact"]["rates_hz"].as_object().unwrap().len(), 4);
}

#[test]
fn optimize_refuses_missing_checkpoints_and_bad_objectives() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = small_config(tmp.path());
    let a = Command::cargo_bin("surge")
        .unwrap()
        .args(["optimize", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(tmp.path().join("nowhere"))
        .arg("--out")
        .arg(tmp.path().join("o"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(
        err.contains("surrogate.json") || err.contains("nowhere"),
        "{err}"
    );
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        common::edit(
            &std::fs::read_to_string(&cfg).unwrap(),
            "band_hz = [15.0, 60.0]",
            "band_hz = [60.0, 15.0]",
        ),
    )
    .unwrap();
    let a = Command::cargo_bin("surge")
        .unwrap()
        .args(["optimize", "--config"])
        .arg(&bad)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("objective.band_hz"), "{err}");
}

/// Per-synapse weights: written with their synapses, kept within bounds, carried through a resume, and
/// re-checked in the exact engine on the optimised connectome (the same instance before and after).
#[test]
fn per_synapse_optimisation_writes_its_weights_and_resumes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    write_checkpoints(&ck);
    let base = small_config(tmp.path());
    let cfg = tmp.path().join("syn.toml");
    std::fs::write(
        &cfg,
        common::edit(
            &common::edit(
                &std::fs::read_to_string(&base).unwrap(),
                "per_synapse = false",
                "per_synapse = true",
            ),
            "select = \"validation\"",
            "select = \"last\"",
        ),
    )
    .unwrap();
    let out = tmp.path().join("opt");
    let surge = || Command::cargo_bin("surge").unwrap();
    let run = |extra: &[&str]| {
        surge()
            .args(["optimize", "--config"])
            .arg(&cfg)
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .assert()
            .success()
    };
    run(&[]);
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let syn = read("synapses.json");
    let n = syn["n"].as_u64().unwrap() as usize;
    assert!(n > 1000, "{n} synapse entries in the alpha column");
    let w: Vec<f64> = syn["log_weight"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(w.len(), n);
    assert_eq!(syn["pre"].as_array().unwrap().len(), n);
    assert!(
        w.iter().all(|x| x.abs() <= 1.0 + 1e-6),
        "bounded by max_abs_log_weight"
    );
    // (Whether they move is the gradient tests' business: these tiny random surrogates stay silent,
    // and with hard spikes a synapse whose presynaptic cell never fired gets no gradient.)
    let m = read("metrics.json");
    assert_eq!(m["per_synapse"], true);
    assert!(
        m["exact_network_instance"]
            .as_str()
            .unwrap()
            .starts_with("fixed")
    );
    let mut p = read("progress.json");
    assert_eq!(p["synapse_log_w"].as_array().unwrap().len(), n);
    // Resume from known saved weights (these tiny surrogates would leave them at 0, which could not
    // tell a resume from a fresh start): every weight 0.5 except the first, -0.5.
    let saved: Vec<f64> = (0..n).map(|i| if i == 0 { -0.5 } else { 0.5 }).collect();
    p["synapse_log_w"] = serde_json::json!(saved);
    std::fs::write(out.join("progress.json"), p.to_string()).unwrap();
    run(&["--resume", "--iterations", "3"]);
    let m = read("metrics.json");
    assert_eq!(m["iterations"].as_array().unwrap().len(), 3);
    let w3: Vec<f64> = read("synapses.json")["log_weight"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    // The resumed run started from the saved weights: one more step moves each by at most lr.
    let max_step = saved
        .iter()
        .zip(&w3)
        .fold(0f64, |a, (x, y)| a.max((x - y).abs()));
    assert!(
        max_step <= 0.1 + 1e-4,
        "a weight jumped by {max_step} from its saved value"
    );
}

/// Adam's moments are kept in progress.json, so a run stopped after two steps and resumed to three
/// ends where an uninterrupted run of three does; held-out instances are drawn from --heldout-seed;
/// the random-sign control steps every gain by the step size in a random direction.
#[test]
fn adam_resumes_its_moments_heldout_seeds_are_drawn_and_the_control_walks() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    write_checkpoints(&ck);
    let base = small_config(tmp.path());
    let cfg = tmp.path().join("adam.toml");
    let text = common::edit(
        &common::edit(
            &std::fs::read_to_string(&base).unwrap(),
            "select = \"validation\"",
            "select = \"last\"",
        ),
        "lr_schedule = \"cosine\"",
        "lr_schedule = \"constant\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let run = |out: &Path, extra: &[&str]| {
        Command::cargo_bin("surge")
            .unwrap()
            .args(["optimize", "--config"])
            .arg(&cfg)
            .arg("--checkpoint")
            .arg(&ck)
            .arg("--out")
            .arg(out)
            .args(["--heldout-seed", "9", "--heldout", "2"])
            .args(extra)
            .assert()
            .success();
    };
    let metrics = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&a, &["--iterations", "3"]);
    run(&b, &["--iterations", "2"]);
    run(&b, &["--resume", "--iterations", "3"]);
    let (ma, mb) = (metrics(&a), metrics(&b));
    assert_eq!(ma["log_gains"], mb["log_gains"], "resumed Adam strayed");
    let moved = ma["log_gains"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g.as_f64().unwrap().abs() > 1e-3);
    assert!(moved, "the gains did not move");
    let seeds: Vec<u64> = ma["exact"]["before"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, surge::netopt::optimize::heldout_seeds(9, 2));
    // The control: one step of exactly lr = 0.1 per gain, in both directions.
    let c = tmp.path().join("control");
    run(&c, &["--iterations", "1", "--control", "random-sign"]);
    let g: Vec<f64> = metrics(&c)["log_gains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(g.iter().all(|x| (x.abs() - 0.1).abs() < 1e-6), "{g:?}");
    assert!(
        g.iter().any(|x| *x > 0.0) && g.iter().any(|x| *x < 0.0),
        "{g:?}"
    );
}

/// `surge gradcheck` writes one row per checkpoint and beta with a cosine in [-1, 1] and its figure,
/// and refuses too few instances; `surge sweep` writes its table (the exact engine's gradient counted
/// in exact runs), and a second call reads the finished runs back instead of repeating them;
/// `surge landscape` profiles the line to the sweep's CMA-ES gains the same both ways.
#[test]
fn gradcheck_and_sweep_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    write_checkpoints(&ck);
    let base = small_config(tmp.path());
    let cfg = tmp.path().join("last.toml");
    std::fs::write(
        &cfg,
        common::edit(
            &std::fs::read_to_string(&base).unwrap(),
            "select = \"validation\"",
            "select = \"last\"",
        ),
    )
    .unwrap();
    let surge = || Command::cargo_bin("surge").unwrap();
    let gc = tmp.path().join("gc");
    surge()
        .args(["gradcheck", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--instances", "2", "--spike-beta", "0.05,0.1", "--out"])
        .arg(&gc)
        .assert()
        .success();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gc.join("report.json")).unwrap()).unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let c = row["agreement"]["cosine"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&c), "{c}");
        assert_eq!(
            row["surrogate"]["per_instance"].as_array().unwrap().len(),
            2
        );
    }
    assert_eq!(r["exact"][0]["exact_runs"].as_u64(), Some(2 * 15 * 2));
    assert!(gc.join("gradcheck.png").exists());
    let a = surge()
        .args(["gradcheck", "--config"])
        .arg(&cfg)
        .arg("--checkpoint")
        .arg(&ck)
        .args(["--instances", "1", "--out"])
        .arg(tmp.path().join("gc1"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&a.get_output().stderr).to_string();
    assert!(err.contains("--instances"), "{err}");

    let sw = tmp.path().join("sweep");
    let sweep = || {
        surge()
            .args(["sweep", "--config"])
            .arg(&cfg)
            .arg("--arms")
            .arg(format!("gradient:{},cmaes,gradient:exact", ck.display()))
            .args([
                "--seeds",
                "1",
                "--heldout-seed",
                "3",
                "--heldout",
                "1",
                "--iterations",
                "1",
                "--cmaes-evals",
                "8",
                "--out",
            ])
            .arg(&sw)
            .assert()
            .success()
    };
    sweep();
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sw.join("sweep.json")).unwrap()).unwrap();
    let arms = s["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 3);
    assert!(arms[1]["seeds"][0]["exact_runs"].as_u64().unwrap() >= 8);
    // Through the exact engine every noise window is an exact run: 1 iteration x batch 2.
    assert_eq!(arms[2]["arm"], "gradient exact engine");
    assert_eq!(arms[2]["seeds"][0]["exact_runs"].as_u64(), Some(2));
    assert_eq!(arms[0]["seeds"][0]["exact_runs"].as_u64(), Some(0));
    assert!(
        std::fs::read_to_string(sw.join("table.md"))
            .unwrap()
            .contains("| CMA-ES")
    );
    sweep();
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sw.join("sweep.json")).unwrap()).unwrap();
    // Each arm's wall time is a measurement: a repeated run would record another.
    assert_eq!(again["arms"], s["arms"], "the finished runs were read back");
    let bad = surge()
        .args(["sweep", "--config"])
        .arg(&cfg)
        .args(["--arms", "newton", "--heldout-seed", "3"])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&bad.get_output().stderr).to_string();
    assert!(err.contains("newton") && err.contains("gradient:"), "{err}");

    // `surge landscape` from the initial gains to the CMA-ES result the sweep wrote.
    let to = sw.join("CMA-ES_exact_engine_/seed-1/gains.json");
    let to_gains: Vec<f64> =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&to).unwrap())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["log_gain"].as_f64().unwrap())
            .collect();
    assert_eq!(to_gains.len(), 15);
    assert!(to_gains.iter().any(|g| *g != 0.0), "CMA-ES moved");
    let zero = tmp.path().join("zero.json");
    std::fs::write(
        &zero,
        serde_json::json!(
            (0..15)
                .map(|_| serde_json::json!({"log_gain": 0.0}))
                .collect::<Vec<_>>()
        )
        .to_string(),
    )
    .unwrap();
    let landscape = |from: &Path, to: &Path, out: &Path, ck: Option<&Path>| {
        let mut c = surge();
        c.args(["landscape", "--config"])
            .arg(&cfg)
            .arg("--from")
            .arg(from)
            .arg("--to")
            .arg(to)
            .args([
                "--points",
                "3",
                "--instances",
                "2",
                "--window-ms",
                "100",
                "--out",
            ])
            .arg(out);
        if let Some(ck) = ck {
            c.arg("--checkpoint").arg(ck);
        }
        c.assert().success();
        serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(out.join("report.json")).unwrap(),
        )
        .unwrap()
    };
    let fwd = landscape(&zero, &to, &tmp.path().join("land"), Some(&ck));
    assert!(tmp.path().join("land/landscape.png").exists());
    let profiles = fwd["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(profiles[0]["engine"], "exact");
    for p in profiles {
        let band = p["band_fraction"].as_array().unwrap();
        assert_eq!(band.len(), 3);
        for point in band {
            assert_eq!(point.as_array().unwrap().len(), 2);
            let f = point[0].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&f), "{f}");
        }
    }
    // The same line walked the other way: each point is the same run on the same instance, so both
    // engines' profiles come back reversed to the bit.
    let back = landscape(&to, &zero, &tmp.path().join("back"), Some(&ck));
    for engine in 0..2 {
        let f = &fwd["profiles"][engine];
        let b = &back["profiles"][engine];
        for k in 0..3 {
            assert_eq!(f["band_fraction"][k], b["band_fraction"][2 - k]);
            assert_eq!(f["rates_hz"][k], b["rates_hz"][2 - k]);
        }
    }
    let short = tmp.path().join("short.json");
    std::fs::write(&short, r#"[{"log_gain": 0.5}]"#).unwrap();
    let bad = surge()
        .args(["landscape", "--config"])
        .arg(&cfg)
        .arg("--to")
        .arg(&short)
        .arg("--out")
        .arg(tmp.path().join("land-bad"))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&bad.get_output().stderr).to_string();
    assert!(err.contains("1 gains") && err.contains("15"), "{err}");
    assert!(!tmp.path().join("land-bad").exists());
}

/// `engine = "exact"` end to end without any checkpoint: per-synapse weights with frozen gains move
/// (the exact engine's gradient is not zero), the gains stay put, and 2 iterations + `--resume` to 3
/// end at the same weights as 3 uninterrupted (Adam's moments are kept).
#[test]
fn exact_engine_optimisation_moves_synapses_only_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let text = shipped_with(
        "experiments/alpha_to_beta_synapses.toml",
        &[
            ("iterations = 60", "iterations = 3"),
            ("window_ms = 500.0", "window_ms = 100.0"),
            ("warmup_ms = 100.0", "warmup_ms = 20.0"),
            ("seeds = [101, 102, 103]", "seeds = [101]"),
            ("duration_ms = 3000.0", "duration_ms = 800.0"),
        ],
    );
    let cfg = tmp.path().join("exact.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = |out: &Path, extra: &[&str]| {
        Command::cargo_bin("surge")
            .unwrap()
            .args(["optimize", "--config"])
            .arg(&cfg)
            .arg("--checkpoint")
            .arg(tmp.path().join("no-such-checkpoint"))
            .arg("--out")
            .arg(out)
            .args(extra)
            .assert()
            .success()
    };
    let read = |out: &Path, f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let weights = |out: &Path| -> Vec<f64> {
        read(out, "synapses.json")["log_weight"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let whole = tmp.path().join("whole");
    run(&whole, &[]);
    let m = read(&whole, "metrics.json");
    assert_eq!(m["engine"], "exact");
    assert!(m["checkpoint"].is_null());
    assert!(
        m["log_gains"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g.as_f64() == Some(0.0)),
        "frozen gains moved"
    );
    let w = weights(&whole);
    let (spec, _) = NetworkSpec::load(Path::new("experiments/hnn_alpha.toml")).unwrap();
    assert_eq!(w.len(), surge::spec::Connectome::build(&spec).weights.len());
    let moved = w.iter().filter(|x| x.abs() > 1e-3).count();
    assert!(
        moved > w.len() / 10,
        "only {moved} of {} synapses moved",
        w.len()
    );
    let parts = tmp.path().join("parts");
    run(&parts, &["--iterations", "2"]);
    run(&parts, &["--resume", "--iterations", "3"]);
    assert_eq!(weights(&parts), w);
}
