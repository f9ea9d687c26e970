//! The Siegert transfer function against simulated LIF neurons under white noise.

mod common;

use surge::exact::siegert::siegert_rate_hz;
use surge::exact::simulate;
use surge::spec::{Connectome, NetworkSpec};

#[test]
fn siegert_matches_simulated_rates_under_white_noise() {
    // Kim & Chow's LIF: tau_m 10 ms, threshold 1, reset 0; 2 ms refractory. dt = 0.01 ms keeps the
    // missed-crossing bias of a discrete-time simulation (~ sigma sqrt(dt / tau)) near 1%.
    for &(mu, sigma) in &[(0.8, 0.3), (1.0, 0.2), (1.2, 0.5), (0.6, 0.5)] {
        let toml = format!(
            r#"
name = "siegert"
[simulation]
dt_ms = 0.01
duration_ms = 2000.0
seed = 21
[[populations]]
name = "A"
size = 200
v_init_mv = [0.0, 1.0]
[populations.neuron]
model = "lif_current"
tau_m_ms = 10.0
v_threshold_mv = 1.0
v_reset_mv = 0.0
t_ref_ms = 2.0
[[drives]]
name = "noise"
kind = "white_noise"
targets = ["A"]
amplitude = {mu}
sigma = {sigma}
"#
        );
        let spec = NetworkSpec::from_toml_str(&toml, "siegert").unwrap();
        let conn = Connectome::build(&spec);
        let res = simulate(&spec, &conn, &mut |_, _| {}).unwrap();
        // Skip the first 100 ms of relaxation from the uniform initial voltages.
        let n = res.spike_times_ms.iter().filter(|&&t| t >= 100.0).count();
        let rate = n as f64 / 200.0 / 1.9;
        let theory = siegert_rate_hz(mu, sigma, 10.0, 2.0, 1.0, 0.0, 0.0);
        let rel = (rate - theory).abs() / theory;
        eprintln!(
            "mu {mu} sigma {sigma}: simulated {rate:.2} Hz, Siegert {theory:.2} Hz ({:.1}%)",
            rel * 100.0
        );
        assert!(
            rel < 0.05,
            "mu {mu} sigma {sigma}: {rate} Hz vs {theory} Hz"
        );
    }
}

#[test]
fn free_membrane_variance_under_white_noise_is_sigma_squared_over_two() {
    let toml = r#"
name = "ou"
[simulation]
dt_ms = 0.1
duration_ms = 2000.0
seed = 4
[[populations]]
name = "A"
size = 500
v_init_mv = 0.0
[populations.neuron]
model = "lif_current"
tau_m_ms = 10.0
v_threshold_mv = 100.0
v_reset_mv = 0.0
[[drives]]
name = "noise"
kind = "white_noise"
targets = ["A"]
amplitude = 2.0
sigma = 0.6
[recording]
signals = [{ name = "v", kind = "mean_voltage", populations = ["A"] }]
voltages = [{ population = "A", cells = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }]
"#;
    let spec = NetworkSpec::from_toml_str(toml, "ou").unwrap();
    let conn = Connectome::build(&spec);
    let res = simulate(&spec, &conn, &mut |_, _| {}).unwrap();
    // After 200 ms (20 tau) the voltage is stationary with mean mu and variance sigma^2 / 2.
    let samples: Vec<f64> = res
        .recorded
        .iter()
        .flat_map(|r| r.v[2000..].iter().map(|&x| x as f64))
        .collect();
    let m = samples.iter().sum::<f64>() / samples.len() as f64;
    let var = samples.iter().map(|x| (x - m).powi(2)).sum::<f64>() / samples.len() as f64;
    // 10 cells x 1.8 s / (2 tau correlation time) ~ 900 independent samples: ~5% error on the variance.
    assert!((m - 2.0).abs() < 0.05, "mean {m}");
    assert!((var - 0.18).abs() / 0.18 < 0.15, "variance {var}");
    let pop_mean = res.signals[0].values[2000..].iter().sum::<f64>() / (res.steps - 2000) as f64;
    assert!((pop_mean - 2.0).abs() < 0.01, "population mean {pop_mean}");
}

/// `surge targets`: recorded rates become drives whose Siegert rate is the recorded rate (floored at
/// 0.1 Hz); a negative rate is refused and leaves no file.
#[test]
fn targets_from_rates_invert_the_transfer_function() {
    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("rates.h5");
    let script = r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w")
f.attrs["bin_ms"] = 20.0
t = np.arange(30)
f["rate_hz_lickright"] = 5.0 + 4.0 * np.sin(t[None, :] / 5.0 + np.arange(6)[:, None])
f["rate_hz_lickleft"] = np.tile(np.linspace(0.0, 40.0, 30), (6, 1))
f.close()
"#;
    let ok = common::h5py(script, &[&rates]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = dir.path().join("targets.h5");
    assert_cmd::Command::cargo_bin("surge")
        .unwrap()
        .args(["targets", "--rates"])
        .arg(&rates)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let t = surge::rls::balanced_files::read_targets(&out).unwrap();
    assert_eq!((t.n, t.bins, t.bin_ms), (6, 30, 20.0));
    for k in 0..2 {
        for (&u, &r) in t.utarg[k].iter().zip(&t.rate_hz[k]) {
            let back = siegert_rate_hz(u, 0.31, 10.0, 0.0, 1.0, 0.0, 0.0);
            let want = r.max(0.1);
            assert!(
                (back - want).abs() < 1e-6 * want.max(1.0),
                "rate {r} -> u {u} -> {back}"
            );
        }
    }
    // Monotone: a higher rate needs a higher drive.
    let ramp = &t.utarg[1][..30];
    assert!(ramp.windows(2).all(|w| w[1] > w[0]));
    // A negative rate is refused by name, and nothing is written.
    let bad = dir.path().join("bad.h5");
    let script = r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w")
f.attrs["bin_ms"] = 20.0
f["rate_hz_lickright"] = np.ones((2, 5))
f["rate_hz_lickleft"] = -np.ones((2, 5))
f.close()
"#;
    common::h5py(script, &[&bad]);
    let out2 = dir.path().join("t2.h5");
    let r = assert_cmd::Command::cargo_bin("surge")
        .unwrap()
        .args(["targets", "--rates"])
        .arg(&bad)
        .arg("--out")
        .arg(&out2)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&r.get_output().stderr).to_string();
    assert!(
        err.contains("rate_hz_lickleft") && err.contains("-1"),
        "{err}"
    );
    assert!(!out2.exists() && !dir.path().join("t2.partial.h5").exists());
}
