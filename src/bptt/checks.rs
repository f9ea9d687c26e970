//! The differentiable exact engine against the exact engine (forward) and finite differences
//! (backward).

use super::net::ExactNet;
use super::objective::{Params, evaluate};
use super::{BpttConfig, SpikeMode, SpikeShape, Surrogate};
use crate::netopt::optimize::{OptimizeConfig, exact_run_with_hook};
use crate::netopt::search::exact_loss;
use crate::spec::{Connectome, NetworkSpec, SignalKind, SignalSpec};
use std::path::Path;

fn shipped(name: &str, duration_ms: f64) -> NetworkSpec {
    let (mut spec, _) = NetworkSpec::load(Path::new("experiments").join(name).as_path()).unwrap();
    spec.simulation.duration_ms = duration_ms;
    spec
}

fn objective(signal: &[&str], extra: &str) -> OptimizeConfig {
    let sig: Vec<String> = signal.iter().map(|s| format!("\"{s}\"")).collect();
    toml::from_str(&format!(
        "network = \"n\"\nsignal = [{}]\n[cells]\n{extra}",
        sig.join(", ")
    ))
    .unwrap()
}

/// Hard spikes, every weight as the connectome has it: the same spikes and the same signal as
/// `exact::simulate`, on both shipped LIF networks.
#[test]
fn forward_is_the_exact_engine() {
    for (file, pop) in [("hnn_alpha.toml", "L5_pyr"), ("ei_small.toml", "E")] {
        let mut spec = shipped(file, 250.0);
        spec.recording.signals = vec![SignalSpec {
            name: "s".into(),
            kind: SignalKind::MeanVoltage,
            populations: vec![pop.into()],
        }];
        spec.recording.spikes = None;
        let conn = Connectome::build(&spec);
        let exact = crate::exact::simulate(&spec, &conn, &mut |_, _| {}).unwrap();
        let pi = spec.population_index(pop).unwrap();
        let weights = conn.weights.iter().map(|&w| w as f64).collect();
        let net = ExactNet::new(&spec, &conn, weights, vec![pi], 0, BpttConfig::default()).unwrap();
        let fwd = net.forward().unwrap();
        assert!(exact.spike_cells.len() > 100, "{file}: too few spikes");
        assert_eq!(fwd.spike_cells, exact.spike_cells, "{file}");
        assert_eq!(fwd.spike_times_ms, exact.spike_times_ms, "{file}");
        assert_eq!(fwd.signal, exact.signals[0].values, "{file}");
    }
}

/// The loss of a differentiable run is the exact re-check's loss on the same instance and seed.
#[test]
fn loss_is_the_exact_recheck_loss() {
    let spec = shipped("hnn_alpha.toml", 400.0);
    let conn = Connectome::build(&spec);
    let cfg = objective(&["L5_pyr"], "");
    let zeros = vec![0f32; spec.connections.len()];
    let params = Params {
        log_gains: &zeros,
        log_w: None,
    };
    let ev = evaluate(
        &spec,
        &conn,
        &cfg,
        &BpttConfig::default(),
        &params,
        100.0,
        300.0,
    )
    .unwrap();
    let seed = spec.seed();
    let run =
        exact_run_with_hook(&spec, &cfg, &zeros, seed, 400.0, 100.0, None, Some(&conn)).unwrap();
    let want = exact_loss(&cfg, &run, &zeros);
    assert!(
        (ev.loss.total - want).abs() < 1e-9 * want.abs().max(1.0),
        "{} vs {want}",
        ev.loss.total
    );
    for (a, b) in ev.rates_hz.iter().zip(&run.rates_hz) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
}

/// A chunked backward pass re-runs each chunk from its saved state: the same gradient.
#[test]
fn chunking_does_not_change_the_gradient() {
    let spec = shipped("ei_small.toml", 120.0);
    let conn = Connectome::build(&spec);
    let cfg = objective(&["E"], "");
    let zeros = vec![0f32; spec.connections.len()];
    let params = Params {
        log_gains: &zeros,
        log_w: None,
    };
    let run = |chunk_steps| {
        let b = BpttConfig {
            chunk_steps,
            ..BpttConfig::default()
        };
        evaluate(&spec, &conn, &cfg, &b, &params, 20.0, 100.0)
            .unwrap()
            .d_log_gain
    };
    let whole = run(0);
    assert!(whole.iter().any(|g| g.abs() > 1e-6));
    assert_eq!(whole, run(37));
}

fn small_current_network() -> NetworkSpec {
    let cell = |name: &str, size: usize| {
        format!(
            r#"
[[populations]]
name = "{name}"
size = {size}
v_init_mv = [0.0, 15.0]
[populations.neuron]
model = "lif_current"
tau_m_ms = 20.0
v_threshold_mv = 20.0
v_reset_mv = 10.0
t_ref_ms = 2.0
channels = [{{ name = "exc", tau_ms = 5.0 }}, {{ name = "inh", tau_ms = 10.0 }}]
"#
        )
    };
    let conn = |pre: &str, post: &str, ch: &str, w: f64| {
        format!(
            "[[connections]]\npre = \"{pre}\"\npost = \"{post}\"\nchannel = \"{ch}\"\nrule = \"probability\"\np = 0.3\nweight = {w}\ndelay_ms = 1.5\ndelay_sd_ms = 0.5\n"
        )
    };
    let text = format!(
        "name = \"small\"\n[simulation]\ndt_ms = 0.1\nduration_ms = 100.0\nseed = 3\n{}{}{}{}{}{}\n[[drives]]\nname = \"bg\"\nkind = \"poisson\"\ntargets = [\"E\", \"I\"]\nchannel = \"exc\"\nrate_hz = 900.0\nweight = 1.2\n",
        cell("E", 30),
        cell("I", 10),
        conn("E", "E", "exc", 0.8),
        conn("E", "I", "exc", 1.0),
        conn("I", "E", "inh", -2.0),
        conn("I", "I", "inh", -1.0),
    );
    NetworkSpec::from_toml_str(&text, "small").unwrap()
}

/// The loss of a soft-spike run, as a function of the log-gains and log-weights.
fn soft_loss(
    spec: &NetworkSpec,
    conn: &Connectome,
    cfg: &OptimizeConfig,
    b: &BpttConfig,
    g: &[f32],
    w: &[f32],
) -> f64 {
    let params = Params {
        log_gains: g,
        log_w: Some(w),
    };
    evaluate(spec, conn, cfg, b, &params, 20.0, 80.0)
        .unwrap()
        .loss
        .total
}

/// In the smooth limit (soft spikes in the forward pass too) the back-propagated gradient is the
/// gradient: within 0.1% of central differences (the bar is 5%) for every group log-gain and the largest
/// per-synapse log-weights, for current- and conductance-based cells.
#[test]
fn soft_gradient_matches_finite_differences() {
    let mut ei = shipped("ei_small.toml", 100.0);
    ei.populations[0].size = 80;
    ei.populations[1].size = 30;
    for (spec, signal) in [(small_current_network(), "E"), (ei, "E")] {
        let conn = Connectome::build(&spec);
        let cfg = objective(&[signal], "[objective]\nrate_bounds_hz = [0.5, 500.0]\n");
        let b = BpttConfig {
            mode: SpikeMode::Soft,
            surrogate: Surrogate {
                shape: SpikeShape::Sigmoid,
                width_mv: 2.0,
            },
            ..BpttConfig::default()
        };
        let ng = spec.connections.len();
        let g0: Vec<f32> = (0..ng).map(|k| 0.1 * k as f32 - 0.1).collect();
        let w0 = vec![0f32; conn.weights.len()];
        let params = Params {
            log_gains: &g0,
            log_w: Some(&w0),
        };
        let ev = evaluate(&spec, &conn, &cfg, &b, &params, 20.0, 80.0).unwrap();
        let h = 1e-3f32;
        let scale = ev.d_log_gain.iter().fold(0f64, |m, x| m.max(x.abs()));
        assert!(scale > 1e-4, "{}: a flat loss", spec.name);
        for k in 0..ng {
            let (mut gp, mut gm) = (g0.clone(), g0.clone());
            gp[k] += h;
            gm[k] -= h;
            let fd = (soft_loss(&spec, &conn, &cfg, &b, &gp, &w0)
                - soft_loss(&spec, &conn, &cfg, &b, &gm, &w0))
                / (gp[k] - gm[k]) as f64;
            let err = (ev.d_log_gain[k] - fd).abs();
            assert!(
                err <= 1e-3 * fd.abs() + 1e-4 * scale,
                "{} group {k}: {} vs {fd}",
                spec.name,
                ev.d_log_gain[k]
            );
        }
        let mut order: Vec<usize> = (0..w0.len()).collect();
        order.sort_by(|&a, &c| ev.d_log_w[c].abs().total_cmp(&ev.d_log_w[a].abs()));
        for &s in &order[..4] {
            let (mut wp, mut wm) = (w0.clone(), w0.clone());
            wp[s] += h;
            wm[s] -= h;
            let fd = (soft_loss(&spec, &conn, &cfg, &b, &g0, &wp)
                - soft_loss(&spec, &conn, &cfg, &b, &g0, &wm))
                / (wp[s] - wm[s]) as f64;
            assert!(
                (ev.d_log_w[s] - fd).abs() <= 1e-3 * fd.abs(),
                "{} synapse {s}: {} vs {fd}",
                spec.name,
                ev.d_log_w[s]
            );
        }
    }
}

/// Hard spikes that no parameter can move (cells driven by fixed spike trains, no input from the
/// network) into cells that stay below threshold: the back-propagated gradient of the loss with
/// respect to the two connection gains is the exact engine's, measured by central differences of
/// `exact_loss` on exact runs.
#[test]
fn hard_spike_gradient_matches_the_exact_engine() {
    let cell = |name: &str, size: usize| {
        format!(
            "[[populations]]\nname = \"{name}\"\nsize = {size}\nv_init_mv = 0.0\n[populations.neuron]\nmodel = \"lif_current\"\ntau_m_ms = 20.0\nv_threshold_mv = 20.0\nv_reset_mv = 10.0\nt_ref_ms = 2.0\nchannels = [{{ name = \"fast\", tau_ms = 3.0 }}, {{ name = \"slow\", tau_ms = 40.0, kick = \"charge\" }}]\n"
        )
    };
    let times: Vec<String> = (0..40)
        .map(|k| format!("{:.1}", 5.0 + 7.3 * k as f64))
        .collect();
    let text = format!(
        "name = \"feed\"\n[simulation]\ndt_ms = 0.1\nduration_ms = 300.0\nseed = 5\n{}{}\n[[connections]]\npre = \"A\"\npost = \"B\"\nchannel = \"fast\"\nrule = \"probability\"\np = 0.5\nweight = 0.2\ndelay_ms = 2.0\ndelay_sd_ms = 1.0\n[[connections]]\npre = \"A\"\npost = \"B\"\nchannel = \"slow\"\nrule = \"probability\"\np = 0.5\nweight = 0.3\ndelay_ms = 4.0\n[[drives]]\nname = \"pace\"\nkind = \"spikes\"\ntargets = [\"A\"]\nchannel = \"fast\"\nweight = 200.0\ntimes_ms = [{}]\n",
        cell("A", 6),
        cell("B", 12),
        times.join(", ")
    );
    let spec = NetworkSpec::from_toml_str(&text, "feed").unwrap();
    let conn = Connectome::build(&spec);
    let cfg = objective(&["B"], "[objective]\nrate_weight = 0.0\n");
    let g0 = [0.2f32, -0.3];
    let params = Params {
        log_gains: &g0,
        log_w: None,
    };
    let ev = evaluate(
        &spec,
        &conn,
        &cfg,
        &BpttConfig::default(),
        &params,
        50.0,
        250.0,
    )
    .unwrap();
    let b = spec.population_index("B").unwrap();
    assert_eq!(ev.forward.counts[b], 0.0, "B must stay below threshold");
    assert!(
        ev.forward.counts[0] >= 6.0 * 30.0,
        "A must follow its drive"
    );
    let seed = spec.seed();
    let exact = |g: &[f32]| {
        let run = exact_run_with_hook(&spec, &cfg, g, seed, 300.0, 50.0, None, None).unwrap();
        exact_loss(&cfg, &run, g)
    };
    let h = 1e-3f32;
    for k in 0..2 {
        let (mut gp, mut gm) = (g0.to_vec(), g0.to_vec());
        gp[k] += h;
        gm[k] -= h;
        let fd = (exact(&gp) - exact(&gm)) / (gp[k] - gm[k]) as f64;
        assert!(fd.abs() > 1e-4, "group {k}: a flat loss ({fd})");
        assert!(
            (ev.d_log_gain[k] - fd).abs() <= 1e-3 * fd.abs(),
            "group {k}: {} vs {fd}",
            ev.d_log_gain[k]
        );
    }
}
