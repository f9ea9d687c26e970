//! Single cells in the exact engine against closed-form solutions.

use surge::exact::models::lif_conductance::exp2_norm;
use surge::exact::models::lif_current::{lif_period_ms, psp_kernel};
use surge::exact::simulate;
use surge::spec::{Connectome, NetworkSpec};

fn run(toml: &str) -> (NetworkSpec, surge::exact::SimResult) {
    let spec = NetworkSpec::from_toml_str(toml, "test").expect("valid spec");
    let conn = Connectome::build(&spec);
    let res = simulate(&spec, &conn, &mut |_, _| {}).expect("simulation runs");
    (spec, res)
}

fn current_cell(name: &str, size: usize, extra: &str) -> String {
    format!(
        r#"
[[populations]]
name = "{name}"
size = {size}
v_init_mv = 0.0
{extra}
[populations.neuron]
model = "lif_current"
tau_m_ms = 20.0
v_threshold_mv = 20.0
v_reset_mv = 10.0
t_ref_ms = 2.0
channels = [{{ name = "syn", tau_ms = 5.0 }}, {{ name = "slow", tau_ms = 150.0, kick = "charge" }}]
"#
    )
}

#[test]
fn membrane_relaxes_exponentially_to_a_constant_input() {
    let toml = format!(
        r#"
name = "relax"
[simulation]
dt_ms = 0.1
duration_ms = 100.0
seed = 1
{}
[[drives]]
name = "dc"
kind = "bias"
targets = ["A"]
amplitude = 15.0
[recording]
voltages = [{{ population = "A", cells = [0] }}]
"#,
        current_cell("A", 1, "")
    );
    let (_, res) = run(&toml);
    let v = &res.recorded[0].v;
    for (n, &x) in v.iter().enumerate() {
        let t = (n + 1) as f64 * 0.1;
        let exact = 15.0 * (1.0 - (-t / 20.0f64).exp());
        assert!((x as f64 - exact).abs() < 1e-5, "t {t}: {x} vs {exact}");
    }
}

#[test]
fn conductance_cell_relaxes_with_tau_c_over_g_l() {
    let toml = r#"
name = "relax_g"
[simulation]
dt_ms = 0.1
duration_ms = 100.0
seed = 1
[[populations]]
name = "A"
size = 1
v_init_mv = -65.0
[populations.neuron]
model = "lif_conductance"
c_m_pf = 200.0
g_l_ns = 10.0
e_l_mv = -65.0
v_threshold_mv = -40.0
v_reset_mv = -65.0
[[drives]]
name = "dc"
kind = "bias"
targets = ["A"]
amplitude = 100.0
[recording]
voltages = [{ population = "A", cells = [0] }]
"#;
    let (_, res) = run(toml);
    // v_inf = E_L + I / g_L = -65 + 100 pA / 10 nS = -55 mV; tau = C / g_L = 20 ms.
    for (n, &x) in res.recorded[0].v.iter().enumerate() {
        let t = (n + 1) as f64 * 0.1;
        let exact = -55.0 - 10.0 * (-t / 20.0f64).exp();
        assert!((x as f64 - exact).abs() < 1e-4, "t {t}: {x} vs {exact}");
    }
}

#[test]
fn f_i_curve_matches_the_deterministic_period() {
    // Suprathreshold constant drives; dt = 0.01 ms so the grid adds at most 0.01 ms per period.
    let drives = [21.0, 23.0, 26.0, 30.0, 40.0, 60.0];
    for &mu in &drives {
        let toml = format!(
            r#"
name = "fi"
[simulation]
dt_ms = 0.01
duration_ms = 1000.0
seed = 3
{}
[[drives]]
name = "dc"
kind = "bias"
targets = ["A"]
amplitude = {mu}
"#,
            current_cell("A", 1, "")
        );
        let (_, res) = run(&toml);
        let t = &res.spike_times_ms;
        assert!(t.len() >= 5, "mu {mu}: only {} spikes", t.len());
        // From the first spike on, every period starts at reset: mean ISI is the period.
        let mean_isi = (t[t.len() - 1] - t[0]) / (t.len() - 1) as f64;
        let expected = lif_period_ms(20.0, 2.0, mu, 10.0, 20.0);
        let rel = (mean_isi - expected).abs() / expected;
        assert!(
            rel < 0.005,
            "mu {mu}: ISI {mean_isi} ms vs {expected} ms ({:.3}%)",
            rel * 100.0
        );
    }
}

#[test]
fn exponential_synapse_response_and_psp_area() {
    let w = 2.0;
    let toml = format!(
        r#"
name = "psp"
[simulation]
dt_ms = 0.1
duration_ms = 400.0
seed = 1
{}
[[drives]]
name = "one_spike"
kind = "spikes"
targets = ["A"]
channel = "syn"
weight = {w}
times_ms = [10.0]
[[drives]]
name = "one_slow_spike"
kind = "spikes"
targets = ["A"]
channel = "slow"
weight = {w}
times_ms = [10.0]
[recording]
voltages = [{{ population = "A", cells = [0] }}]
"#,
        current_cell("A", 1, "")
    );
    let (_, res) = run(&toml);
    let rec = &res.recorded[0];
    let (tm, ts, tslow) = (20.0, 5.0, 150.0);
    let (u0_fast, u0_slow) = (w * tm / ts, w / tslow);
    let mut area_v = 0.0;
    let mut area_u_fast = 0.0;
    let mut area_u_slow = 0.0;
    for n in 0..res.steps {
        let t = (n + 1) as f64 * 0.1;
        let s = t - 10.0;
        let (uf, us, v) = if s > 0.0 {
            (
                u0_fast * (-s / ts).exp(),
                u0_slow * (-s / tslow).exp(),
                u0_fast * psp_kernel(tm, ts, s) + u0_slow * psp_kernel(tm, tslow, s),
            )
        } else {
            (0.0, 0.0, 0.0)
        };
        assert!(
            (rec.channels[0][n] as f64 - uf).abs() < 1e-5 * u0_fast,
            "u_fast at {t}"
        );
        assert!(
            (rec.channels[1][n] as f64 - us).abs() < 1e-5 * u0_fast,
            "u_slow at {t}"
        );
        assert!(
            (rec.v[n] as f64 - v).abs() < 1e-5 * u0_fast,
            "v at {t}: {} vs {v}",
            rec.v[n]
        );
        area_v += rec.channels[0][n] as f64 * 0.1;
        area_u_fast += rec.channels[0][n] as f64 * 0.1;
        area_u_slow += rec.channels[1][n] as f64 * 0.1;
    }
    // delta_psp kick: the fast current's (and PSP's) area is that of a delta-PSP of w mV: w tau_m.
    assert!(
        (area_u_fast - w * tm).abs() / (w * tm) < 0.01,
        "fast area {area_u_fast}"
    );
    assert!(
        (area_v - w * tm).abs() / (w * tm) < 0.01,
        "psp area {area_v}"
    );
    // charge kick: the slow current's integral is w (mV ms); 390 ms of a 150 ms decay holds 1 - e^-2.6 of it.
    let expected_slow = w * (1.0 - (-390.0f64 / tslow).exp());
    assert!(
        (area_u_slow - expected_slow).abs() / expected_slow < 0.01,
        "slow area {area_u_slow} vs {expected_slow}"
    );
}

#[test]
fn a_spike_arrives_exactly_one_delay_later() {
    for &delay in &[0.1, 1.5, 3.7, 12.0] {
        let toml = format!(
            r#"
name = "delay"
[simulation]
dt_ms = 0.1
duration_ms = 40.0
seed = 1
{}
{}
[[connections]]
pre = "pre"
post = "post"
channel = "syn"
rule = "all_to_all"
weight = 1.0
delay_ms = {delay}
[[drives]]
name = "kick"
kind = "spikes"
targets = ["pre"]
channel = "syn"
weight = 100.0
times_ms = [5.0]
[recording]
voltages = [{{ population = "post", cells = [0] }}]
"#,
            current_cell("pre", 1, ""),
            current_cell("post", 1, "")
        );
        let (_, res) = run(&toml);
        assert!(!res.spike_times_ms.is_empty(), "the kicked cell fires");
        let t_spike = res.spike_times_ms[0];
        let u = &res.recorded[0].channels[0];
        let first = u.iter().position(|&x| x > 0.0).expect("the spike arrives");
        // Samples are taken at the end of each step; the arrival is at the start of that step.
        let arrival = first as f64 * 0.1;
        assert!(
            (arrival - (t_spike + delay)).abs() < 1e-9,
            "delay {delay}: spike {t_spike}, arrival {arrival}"
        );
        let expected = 1.0 * 20.0 / 5.0 * (-0.1f64 / 5.0).exp();
        assert!((u[first] as f64 - expected).abs() < 1e-5);
    }
}

#[test]
fn exp2syn_conductances_follow_the_difference_of_exponentials() {
    let toml = r#"
name = "exp2"
[simulation]
dt_ms = 0.1
duration_ms = 100.0
seed = 1
[[populations]]
name = "A"
size = 1
v_init_mv = -65.0
[populations.neuron]
model = "lif_conductance"
[[drives]]
name = "ampa"
kind = "spikes"
targets = ["A"]
channel = "ampa"
weight = 1.5
times_ms = [10.0]
[[drives]]
name = "gabab"
kind = "spikes"
targets = ["A"]
channel = "gabab"
weight = 1.0
times_ms = [50.0]
[recording]
voltages = [{ population = "A", cells = [0] }]
"#;
    let (_, res) = run(toml);
    let rec = &res.recorded[0];
    let g = |w: f64, r: f64, d: f64, s: f64| {
        if s > 0.0 {
            w * exp2_norm(r, d) * ((-s / d).exp() - (-s / r).exp())
        } else {
            0.0
        }
    };
    let mut peak: f64 = 0.0;
    for n in 0..res.steps {
        let t = (n + 1) as f64 * 0.1;
        assert!(
            (rec.channels[0][n] as f64 - g(1.5, 0.5, 5.0, t - 10.0)).abs() < 1e-5,
            "ampa at {t}"
        );
        assert!(
            (rec.channels[3][n] as f64 - g(1.0, 1.0, 20.0, t - 50.0)).abs() < 1e-5,
            "gabab at {t}"
        );
        assert_eq!(rec.channels[1][n], 0.0);
        peak = peak.max(rec.channels[0][n] as f64);
    }
    // The weight is the peak conductance (to within the grid).
    assert!((peak - 1.5).abs() < 1.5e-3, "peak {peak}");
    // AMPA depolarises, GABA-B (E = -80 mV) hyperpolarises.
    assert!(
        rec.v[140] > -65.0 && rec.v[800] < -65.0,
        "{} {}",
        rec.v[140],
        rec.v[800]
    );
}
