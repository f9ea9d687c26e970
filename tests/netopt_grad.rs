//! Gradients through the surrogate network engine: autodiff against central finite differences on a
//! smooth network, gradient reaching connections onto populations the objective does not read, and
//! the differentiable spectrum against the exact engine's PSD estimator.

use burn::tensor::{Device, Tensor, TensorData};
use surge::netopt::objective::{ObjectiveConfig, loss};
use surge::netopt::{CellType, Engine, Gains, Spectrum, SpikeMode, SurrogateNetwork};
use surge::spec::{Connectome, NetworkSpec};
use surge::surrogate::SurrogateArch;
use surge::surrogate::train::{Scaling, SurrogateMeta};

const SPEC: &str = r#"
name = "tiny"
[simulation]
dt_ms = 0.1
duration_ms = 100.0
seed = 5

[[populations]]
name = "E"
size = 6
[populations.neuron]
model = "lif_conductance"

[[populations]]
name = "I"
size = 3
[populations.neuron]
model = "lif_conductance"

[[connections]]
pre = "E"
post = "E"
channel = "ampa"
rule = "fixed_indegree"
k = 3
weight = 0.8
delay_ms = 1.0

[[connections]]
pre = "E"
post = "I"
channel = "ampa"
rule = "fixed_indegree"
k = 4
weight = 1.0
delay_ms = 1.0

[[connections]]
pre = "I"
post = "E"
channel = "gabaa"
rule = "fixed_indegree"
k = 2
weight = 1.5
delay_ms = 1.5

[[drives]]
name = "bg"
kind = "poisson"
targets = ["E"]
channel = "ampa"
rate_hz = 20.0
n_sources = 100
weight = 0.7
"#;

/// The device's random generator is shared by the tests running in parallel; drawing the model under a
/// lock keeps every test's network the same.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// The gradient tests run one at a time: burn's Flex backend keeps one random state per process, and
/// a test drawing from it (or reseeding it) while another initialises its model gives that model
/// other weights, so the finite differences would be taken on a network the test did not mean.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn network(device: &Device) -> SurrogateNetwork {
    let spec = NetworkSpec::from_toml_str(SPEC, "tiny").unwrap();
    let conn = Connectome::build(&spec);
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    // Seed 4: seed 3's random surrogate leaves the I cells' smooth spikes saturated (sigmoid' ~ 0), so
    // the E -> I path carries ~1e-8 of gradient there, a property of that model, not of the engine.
    // (Building the network reads every weight, so they are drawn here, under the lock.)
    device.seed(4);
    let arch = SurrogateArch {
        n_inputs: 4,
        tcn_channels: 8,
        kernel: 3,
        dilations: vec![1, 2],
        lstm_hidden: 8,
    };
    let meta = SurrogateMeta::untrained(
        arch.clone(),
        spec.populations[0].neuron.channel_names(),
        Scaling {
            input_scale: vec![1.0; 4],
            // No offset: a constant -60 mV would swamp the fluctuations in f32 and with them the
            // finite differences.
            v_mean: 0.0,
            v_std: 1.0,
        },
        0.5,
    );
    let cell = CellType {
        name: "cell".into(),
        model: arch.init(device),
        meta,
        populations: vec![0, 1],
    };
    SurrogateNetwork::new(&spec, &conn, vec![cell], device).unwrap()
}

fn objective(
    net: &SurrogateNetwork,
    gains: &Gains,
    mode: SpikeMode,
    spectrum: &Spectrum,
    device: &Device,
) -> Tensor<1> {
    let bins = 64;
    let run = net.run(gains, bins, 1, mode, &[0], false, &mut |_, _| {});
    // The band fraction alone: spike-count sums (the rate penalty) are too large for f32 finite
    // differences to resolve their small changes.
    let cfg = ObjectiveConfig {
        band_hz: (50.0, 200.0),
        rate_weight: 0.0,
        l2: 0.0,
        ..ObjectiveConfig::default()
    };
    let secs = bins as f64 * net.bin_ms() / 1000.0;
    let rates: Vec<Tensor<1>> = run
        .pop_spikes
        .iter()
        .zip([6.0, 3.0])
        .map(|(s, n)| s.clone().div_scalar(n * secs))
        .collect();
    loss(
        &cfg,
        spectrum,
        run.signal,
        &rates,
        gains.log_gain.val(),
        device,
    )
    .total
}

/// The log-gains' gradient in `grads`.
fn gain_grad(gains: &Gains, grads: &burn::tensor::Gradients) -> Vec<f32> {
    gains
        .log_gain
        .val()
        .grad(grads)
        .expect("gains get a gradient")
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn value(t: Tensor<1>) -> f64 {
    t.into_data().try_to_vec::<f32>().unwrap()[0] as f64
}

#[test]
fn gradients_match_central_finite_differences_of_the_smooth_network() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let net = network(&device);
    let spectrum = Spectrum::new(64, 2000.0, &device);
    let g0 = [0.2f32, -0.3, 0.4];
    let mode = SpikeMode::Smooth { beta: 1.0 };
    let gains = Gains::new(&g0, &device);
    let l = objective(&net, &gains, mode, &spectrum, &device);
    let grads = l.backward();
    let g = gain_grad(&gains, &grads);
    // The surrogates' ReLUs make the loss piecewise smooth: its slope jumps wherever an activation
    // crosses zero, and those crossings lie densely in the gains. So autodiff is checked against the
    // identity that holds across kinks: the central difference over [-a, a] equals the mean of the
    // derivative over that interval (trapezoid rule over autodiff gradients at 9 points). A wide
    // interval also keeps f32 rounding in the 64-bin run far below the difference.
    let largest = g.iter().fold(0f32, |a, b| a.max(b.abs())) as f64;
    assert!(largest > 1e-4, "gradients vanish: {g:?}");
    let a = 1e-2f32;
    let grad_at = |k: usize, t: f32| -> f64 {
        let mut p = g0;
        p[k] += t;
        let gains = Gains::new(&p, &device);
        let grads = objective(&net, &gains, mode, &spectrum, &device).backward();
        gain_grad(&gains, &grads)[k] as f64
    };
    for k in 0..g.len() {
        let mut up = g0;
        up[k] += a;
        let mut dn = g0;
        dn[k] -= a;
        let f = |p: [f32; 3]| {
            value(objective(
                &net,
                &Gains::new(&p, &device),
                mode,
                &spectrum,
                &device,
            ))
        };
        let numeric = (f(up) - f(dn)) / (2.0 * a as f64);
        let n = 8;
        let mean_slope = (0..=n)
            .map(|i| {
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * grad_at(k, -a + 2.0 * a * i as f32 / n as f32)
            })
            .sum::<f64>()
            / n as f64;
        let err = (numeric - mean_slope).abs() / numeric.abs().max(0.05 * largest);
        assert!(
            err < 0.05,
            "group {k}: mean autodiff slope {mean_slope:.6e} vs finite difference {numeric:.6e} \
             (rel. error {err:.3}; autodiff at the centre {:.6e})",
            g[k]
        );
        eprintln!(
            "group {k}: mean autodiff slope {mean_slope:.6e} vs finite difference {numeric:.6e}, at centre {:.6e}",
            g[k]
        );
    }
}

#[test]
fn spike_gradient_reaches_groups_onto_unread_populations_unless_the_surrogate_is_too_steep() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let net = network(&device);
    let spectrum = Spectrum::new(64, 2000.0, &device);
    let grad_of = |beta: f32| -> Vec<f32> {
        let gains = Gains::new(&[0.0, 0.0, 0.0], &device);
        let l = objective(
            &net,
            &gains,
            // The smooth relaxation: with the random test surrogates the hard onsets of E are too rare
            // for the E -> I gain to act in 64 bins (its exact gradient is then zero).
            SpikeMode::Smooth { beta },
            &spectrum,
            &device,
        );
        gain_grad(&gains, &l.backward())
    };
    // The signal reads E only; group 1 (E -> I) acts on it only through I's spikes.
    let g = grad_of(1.0);
    assert!(g.iter().all(|x| x.is_finite()));
    assert!(
        g[1].abs() > 1e-6,
        "no gradient through spikes onto I: {g:?}"
    );
    // A surrogate gradient as steep as a step (the published HNN network) blocks that path.
    let steep = grad_of(1e4);
    assert!(
        steep[1].abs() < 1e-3 * g[1].abs(),
        "steep surrogate still passes {:.3e} (vs {:.3e})",
        steep[1],
        g[1]
    );
}

#[test]
fn differentiable_spectrum_equals_the_exact_engines_estimator() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let fs = 2000.0;
    let n = 400;
    let x: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            (std::f64::consts::TAU * 40.0 * t).sin()
                + 0.5 * (std::f64::consts::TAU * 110.0 * t).cos()
                + 0.3
        })
        .collect();
    let psd = surge::signal::welch_psd(&x, fs, n);
    let spectrum = Spectrum::new(n, fs, &device);
    let xt = Tensor::<1>::from_data(
        TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<_>>(), [n]),
        &device,
    );
    let p: Vec<f32> = spectrum.psd(xt.clone()).into_data().try_to_vec().unwrap();
    let peak = psd.power.iter().cloned().fold(0.0, f64::max);
    for (k, (a, b)) in p.iter().zip(&psd.power).enumerate() {
        assert!(((*a as f64) - b).abs() < 1e-4 * peak, "bin {k}: {a} vs {b}");
    }
    let bf = value(spectrum.band_fraction(spectrum.psd(xt), 30.0, 50.0, &device));
    assert!((bf - psd.band_fraction(30.0, 50.0)).abs() < 1e-4, "{bf}");
}

/// The objective of `objective` with the rate penalty on, as a closure over a window's signal and
/// expected spike counts (what `run_with_gradient` differentiates).
fn window_loss<'a>(
    gains: &'a Gains,
    spectrum: &'a Spectrum,
    bins: usize,
    bin_ms: f64,
    device: &'a Device,
) -> impl FnMut(Tensor<1>, Vec<Tensor<1>>, &[f32]) -> Tensor<1> + 'a {
    move |signal, counts, _| {
        let cfg = ObjectiveConfig {
            band_hz: (50.0, 200.0),
            // Bounds the tiny network violates, so that the counts carry gradient too.
            rate_bounds_hz: (200.0, 400.0),
            ..ObjectiveConfig::default()
        };
        let secs = bins as f64 * bin_ms / 1000.0;
        let rates: Vec<Tensor<1>> = counts
            .iter()
            .zip([6.0, 3.0])
            .map(|(s, n)| s.clone().div_scalar(n * secs))
            .collect();
        loss(&cfg, spectrum, signal, &rates, gains.log_gain.val(), device).total
    }
}

/// The loss, the log-gains' gradient, the signal and the replay error of one window of `bins` bins
/// back-propagated in chunks of `chunk` bins (0: one piece).
fn grad_with(
    net: &SurrogateNetwork,
    mode: SpikeMode,
    chunk: usize,
    bins: usize,
    device: &Device,
) -> (f64, Vec<f32>, Vec<f32>, f32) {
    let spectrum = Spectrum::new(bins, 2000.0, device);
    let gains = Gains::new(&[0.2f32, -0.3, 0.4], device);
    let mut f = window_loss(&gains, &spectrum, bins, net.bin_ms(), device);
    let run = net.run_with_gradient(
        &gains,
        bins,
        1,
        mode,
        &[0],
        chunk,
        false,
        &mut f,
        &mut |_, _| {},
    );
    let g: Vec<f32> = run
        .grads
        .get::<1>(gains.log_gain.id)
        .expect("a gradient for the gains")
        .into_data()
        .try_to_vec()
        .unwrap();
    (value(run.loss), g, run.signal, run.replay_error_mv)
}

#[test]
fn chunked_back_propagation_equals_the_whole_graph() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let bins = 64;
    for engine in [Engine::Burn, Engine::Fused] {
        let mut net = network(&device);
        net.set_engine(engine).unwrap();
        for mode in [
            SpikeMode::Smooth { beta: 1.0 },
            SpikeMode::StraightThrough { beta: 1.0 },
        ] {
            let (l_whole, g_whole, s_whole, _) = grad_with(&net, mode, 0, bins, &device);
            let largest = g_whole.iter().fold(0f32, |a, b| a.max(b.abs()));
            assert!(
                largest > 1e-4,
                "{engine:?} {mode:?}: gradients vanish: {g_whole:?}"
            );
            // Chunks of 10 bins (the last one short) and of 1 bin: state crosses every kind of
            // boundary, including the ring buffers of the dilated convolutions and the spikes still
            // in flight.
            for chunk in [10, 1] {
                let (l, g, s, replay) = grad_with(&net, mode, chunk, bins, &device);
                assert_eq!(
                    replay, 0.0,
                    "{engine:?} {mode:?}, chunk {chunk}: re-runs strayed"
                );
                assert_eq!(
                    s, s_whole,
                    "{engine:?} {mode:?}, chunk {chunk}: another forward"
                );
                assert!((l - l_whole).abs() < 1e-6 * l_whole.abs().max(1.0));
                for (k, (a, b)) in g.iter().zip(&g_whole).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * largest,
                        "{engine:?} {mode:?}, chunk {chunk}, group {k}: {a:.6e} vs one piece {b:.6e}"
                    );
                }
            }
        }
    }
}

/// The fused CPU engine (plain buffers, hand-written backward pass) against burn's autodiff on the
/// same network: the same forward pass to float rounding and the same gradient.
#[test]
fn fused_engine_equals_burn_autodiff() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let bins = 64;
    let fused = network(&device);
    assert_eq!(fused.engine(), Engine::Fused, "the CPU default");
    let mut burn = network(&device);
    burn.set_engine(Engine::Burn).unwrap();
    for mode in [
        SpikeMode::Smooth { beta: 1.0 },
        SpikeMode::StraightThrough { beta: 1.0 },
    ] {
        let (l_b, g_b, s_b, _) = grad_with(&burn, mode, 10, bins, &device);
        let (l_f, g_f, s_f, replay) = grad_with(&fused, mode, 10, bins, &device);
        assert_eq!(replay, 0.0);
        let ds = s_b
            .iter()
            .zip(&s_f)
            .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        let scale = s_b.iter().fold(0f32, |a, x| a.max(x.abs()));
        assert!(
            ds <= 1e-4 * scale.max(1.0),
            "{mode:?}: signals differ by {ds}"
        );
        assert!(
            (l_b - l_f).abs() <= 1e-4 * l_b.abs().max(1e-3),
            "{mode:?}: loss {l_b} vs {l_f}"
        );
        let largest = g_b.iter().fold(0f32, |a, b| a.max(b.abs()));
        assert!(largest > 1e-4, "{mode:?}: gradients vanish: {g_b:?}");
        for (k, (a, b)) in g_f.iter().zip(&g_b).enumerate() {
            assert!(
                (a - b).abs() <= 1e-3 * largest,
                "{mode:?}, group {k}: fused {a:.6e} vs burn {b:.6e}"
            );
        }
    }
    // Forward-only runs on the plain device (the fused engine serves them there).
    let plain = Device::flex();
    let fused = network(&plain);
    let mut burn = network(&plain);
    burn.set_engine(Engine::Burn).unwrap();
    let gains = Gains::new(&[0.2f32, -0.3, 0.4], &plain);
    let mode = SpikeMode::StraightThrough { beta: 1.0 };
    let a = fused.run(&gains, 300, 2, mode, &[0], true, &mut |_, _| {});
    let b = burn.run(&gains, 300, 2, mode, &[0], true, &mut |_, _| {});
    let (sa, sb) = (
        a.signal.into_data().try_to_vec::<f32>().unwrap(),
        b.signal.into_data().try_to_vec::<f32>().unwrap(),
    );
    let ds = sa
        .iter()
        .zip(&sb)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(ds < 1e-4, "forward runs differ by {ds}");
    assert_eq!(a.raster, b.raster, "the same spikes");
    assert!(
        a.raster.unwrap().iter().any(|s| !s.is_empty()),
        "cells spike"
    );
}

/// Loss and the per-synapse log-weights' gradient of the fused engine on a smooth window.
fn synapse_grad(net: &SurrogateNetwork, log_w: &[f32], device: &Device) -> (f64, Vec<f32>) {
    let bins = 64;
    let spectrum = Spectrum::new(bins, 2000.0, device);
    let gains = Gains::with_synapses(&[0.2f32, -0.3, 0.4], log_w, device);
    let mut f = window_loss(&gains, &spectrum, bins, net.bin_ms(), device);
    let run = net.run_with_gradient(
        &gains,
        bins,
        1,
        SpikeMode::Smooth { beta: 1.0 },
        &[0],
        10,
        false,
        &mut f,
        &mut |_, _| {},
    );
    let id = gains.log_w.as_ref().expect("synapse weights").id;
    let g: Vec<f32> = run
        .grads
        .get::<1>(id)
        .expect("a gradient for the synapses")
        .into_data()
        .try_to_vec()
        .unwrap();
    (value(run.loss), g)
}

/// Per-synapse log-weights (fused engine): the gradient against central differences, as for the
/// group gains (mean of the analytic slope over the interval, which holds across the ReLUs' kinks).
#[test]
fn synapse_weight_gradients_match_finite_differences() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let net = network(&device);
    let ns = net.n_synapses();
    // Every synapse of the tiny network: 6 E x 3 + 3 I x 4 + 6 E x 2 drawn contacts, fewer entries
    // where a cell drew the same presynaptic cell twice.
    assert!((30..=42).contains(&ns), "{ns} synapse entries");
    let u0: Vec<f32> = (0..ns).map(|i| 0.1 * ((i % 5) as f32 - 2.0)).collect();
    let (_, g) = synapse_grad(&net, &u0, &device);
    let largest = g.iter().fold(0f32, |a, b| a.max(b.abs())) as f64;
    assert!(largest > 1e-5, "gradients vanish: {g:?}");
    let nonzero = g.iter().filter(|x| x.abs() > 1e-3 * largest as f32).count();
    assert!(
        nonzero * 2 > ns,
        "only {nonzero} of {ns} synapses get gradient"
    );
    let mut order: Vec<usize> = (0..ns).collect();
    order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
    let a = 5e-2f32;
    for &e in &order[..3] {
        let at = |t: f32| {
            let mut u = u0.clone();
            u[e] += t;
            synapse_grad(&net, &u, &device)
        };
        let numeric = (at(a).0 - at(-a).0) / (2.0 * a as f64);
        let n = 8;
        let mean_slope = (0..=n)
            .map(|i| {
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * at(-a + 2.0 * a * i as f32 / n as f32).1[e] as f64
            })
            .sum::<f64>()
            / n as f64;
        let err = (numeric - mean_slope).abs() / numeric.abs().max(0.05 * largest);
        assert!(
            err < 0.05,
            "synapse {e}: mean slope {mean_slope:.6e} vs finite difference {numeric:.6e} ({err:.3})"
        );
    }
}

/// The input transform's slope is `1 / (s + |x|)` everywhere, `1 / s` at `x = 0` included (autodiff of
/// `sign(x) ln(1 + |x| / s)` gives 0 there, which drops the gradient of spikes that nearly arrive).
#[test]
fn input_transform_has_its_slope_at_zero_input() {
    let device = Device::flex().autodiff();
    let xs = [0.0f32, 0.0, 0.5, -2.0];
    let x = Tensor::<2>::from_data(TensorData::new(xs.to_vec(), [2, 2]), &device).require_grad();
    let scale = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 0.25], [1, 2]), &device);
    let y = Scaling::input_tensor(x.clone(), scale);
    let yv = y.clone().into_data().try_to_vec::<f32>().unwrap();
    let grads = y.sum().backward();
    let g = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let sc = Scaling {
        input_scale: vec![2.0, 0.25],
        v_mean: 0.0,
        v_std: 1.0,
    };
    for (j, &xj) in xs.iter().enumerate() {
        let s = [2.0f32, 0.25][j % 2];
        assert!((yv[j] - sc.input(xj, j % 2)).abs() < 1e-6, "value at {xj}");
        assert!(
            (g[j] - 1.0 / (s + xj.abs())).abs() < 1e-6,
            "slope at {xj}: {} vs {}",
            g[j],
            1.0 / (s + xj.abs())
        );
        assert_eq!(g[j], sc.input_grad(xj, j % 2));
    }
}

/// The tiny network with the I cells given their own surrogate whose threshold they never reach: in
/// the hard-spike mode I is silent, so the E cells' GABA-A input is exactly 0 in every bin.
fn network_with_silent_inhibition(device: &Device) -> SurrogateNetwork {
    let spec = NetworkSpec::from_toml_str(SPEC, "tiny").unwrap();
    let conn = Connectome::build(&spec);
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(4);
    let arch = SurrogateArch {
        n_inputs: 4,
        tcn_channels: 8,
        kernel: 3,
        dilations: vec![1, 2],
        lstm_hidden: 8,
    };
    let meta = |threshold: f32, width: f32| {
        let mut m = SurrogateMeta::untrained(
            arch.clone(),
            spec.populations[0].neuron.channel_names(),
            Scaling {
                input_scale: vec![1.0; 4],
                v_mean: 0.0,
                v_std: 1.0,
            },
            0.5,
        );
        m.spike_logit_threshold = threshold;
        m.spike_logit_width = Some(width);
        m
    };
    let e = CellType {
        name: "e".into(),
        model: arch.init(device),
        meta: meta(0.0, 1.0),
        populations: vec![0],
    };
    // Far above the untrained logits (|logit| < 1), with a wide surrogate so its slope is resolved.
    let i = CellType {
        name: "i".into(),
        model: arch.init(device),
        meta: meta(6.0, 4.0),
        populations: vec![1],
    };
    SurrogateNetwork::new(&spec, &conn, vec![e, i], device).unwrap()
}

/// Hard spikes: the gradient of the E -> I gain reaches the objective (E's signal, rate penalty off)
/// only through I's near-miss spikes into E's GABA-A channel, whose input is 0 in every bin. It must
/// not vanish, and both engines must agree on it. And a silent population's expected rate keeps a
/// gradient when the spike surrogate is too steep to pass one.
#[test]
fn hard_spike_gradient_passes_through_channels_with_zero_input() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let bins = 64;
    let spectrum = Spectrum::new(bins, 2000.0, &device);
    let cfg = ObjectiveConfig {
        band_hz: (50.0, 200.0),
        rate_weight: 0.0,
        l2: 0.0,
        ..ObjectiveConfig::default()
    };
    let mode = SpikeMode::StraightThrough { beta: 1.0 };
    let mut out = Vec::new();
    for engine in [Engine::Fused, Engine::Burn] {
        let mut net = network_with_silent_inhibition(&device);
        net.set_engine(engine).unwrap();
        let gains = Gains::new(&[0.2f32, -0.3, 0.4], &device);
        let run = net.run_with_gradient(
            &gains,
            bins,
            1,
            mode,
            &[0],
            16,
            false,
            &mut |signal, _, _| {
                loss(&cfg, &spectrum, signal, &[], gains.log_gain.val(), &device).total
            },
            &mut |_, _| {},
        );
        assert_eq!(
            run.pop_spikes[1], 0.0,
            "{engine:?}: the I cells stay silent"
        );
        assert!(run.pop_spikes[0] > 0.0, "{engine:?}: the E cells fire");
        let g: Vec<f32> = run
            .grads
            .get::<1>(gains.log_gain.id)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        out.push(g);
    }
    // A steep gradient surrogate (beta 20) passes ~1e-13 through the silent I cells' spikes, but the
    // expected count follows the calibrated spike probability: a loss on I's expected rate still has
    // a resolved gradient in the E -> I gain (of either sign: the surrogate is untrained), the same in
    // both engines.
    let mut steep = Vec::new();
    for engine in [Engine::Fused, Engine::Burn] {
        let mut net = network_with_silent_inhibition(&device);
        net.set_engine(engine).unwrap();
        let gains = Gains::new(&[0.2f32, -0.3, 0.4], &device);
        let run = net.run_with_gradient(
            &gains,
            bins,
            1,
            SpikeMode::StraightThrough { beta: 20.0 },
            &[0],
            16,
            false,
            &mut |_, expected, _| expected[1].clone().add_scalar(1e-3).log().neg(),
            &mut |_, _| {},
        );
        assert_eq!(run.pop_spikes[1], 0.0, "{engine:?}: I silent");
        let g: Vec<f32> = run
            .grads
            .get::<1>(gains.log_gain.id)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        steep.push(g[1]);
    }
    assert!(
        steep[0].abs() > 1e-5,
        "d/d(E -> I) of -ln(expected I) vanished: {}",
        steep[0]
    );
    assert!(
        (steep[0] - steep[1]).abs() <= 1e-3 * steep[0].abs(),
        "fused {} vs burn {}",
        steep[0],
        steep[1]
    );
    let (f, b) = (&out[0], &out[1]);
    // Groups: 0 E -> E, 1 E -> I, 2 I -> E. With I silent, the I -> E gain multiplies zero spikes,
    // but I's smooth spikes carry gradient back through E -> I.
    assert!(
        f[1].abs() > 1e-6 * f[0].abs().max(1e-12) && f[1] != 0.0,
        "E -> I gradient vanished: {f:?}"
    );
    let largest = b.iter().fold(0f32, |a, x| a.max(x.abs()));
    for k in 0..3 {
        assert!(
            (f[k] - b[k]).abs() <= 1e-3 * largest,
            "group {k}: fused {} vs burn {}",
            f[k],
            b[k]
        );
    }
}
