//! Gradients through the surrogate network engine: autodiff against central finite differences on a
//! smooth network, gradient reaching connections onto populations the objective does not read, and
//! the differentiable spectrum against the exact engine's PSD estimator.

use burn::tensor::{Device, Tensor, TensorData};
use surge::netopt::objective::{ObjectiveConfig, loss};
use surge::netopt::{CellType, Gains, Spectrum, SpikeMode, SurrogateNetwork};
use surge::spec::{Connectome, NetworkSpec};
use surge::surrogate::SurrogateArch;
use surge::surrogate::train::{Scaling, SurrogateMeta, TrainConfig};

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
    device.seed(3);
    let arch = SurrogateArch {
        n_inputs: 4,
        tcn_channels: 8,
        kernel: 3,
        dilations: vec![1, 2],
        lstm_hidden: 8,
    };
    let meta = SurrogateMeta {
        arch: arch.clone(),
        channel_names: spec.populations[0].neuron.channel_names(),
        scaling: Scaling {
            input_scale: vec![1.0; 4],
            // No offset: a constant -60 mV would swamp the fluctuations in f32 and with them the
            // finite differences.
            v_mean: 0.0,
            v_std: 1.0,
        },
        bin_ms: 0.5,
        neuron_model: String::new(),
        datasets: Vec::new(),
        training: serde_json::from_str::<TrainConfig>(r#"{"seed": 1}"#).unwrap(),
        epochs: Vec::new(),
        best_epoch: 0,
        surge_version: String::new(),
        spike_logit_threshold: 0.0,
    };
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
    let g = gains
        .log_gain
        .val()
        .grad(&grads)
        .expect("gains get a gradient")
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // Spike onsets make the loss strongly curved in the gains, and f32 rounding in the 64-bin run limits
    // how small a step can be: central differences at h and h/2, combined by Richardson extrapolation.
    let h = 5e-3f32;
    let largest = g.iter().fold(0f32, |a, b| a.max(b.abs())) as f64;
    assert!(largest > 1e-4, "gradients vanish: {g:?}");
    let central = |k: usize, eps: f32| -> f64 {
        let mut up = g0;
        up[k] += eps;
        let mut dn = g0;
        dn[k] -= eps;
        let fu = value(objective(
            &net,
            &Gains::new(&up, &device),
            mode,
            &spectrum,
            &device,
        ));
        let fd = value(objective(
            &net,
            &Gains::new(&dn, &device),
            mode,
            &spectrum,
            &device,
        ));
        (fu - fd) / (2.0 * eps as f64)
    };
    for (k, &gk) in g.iter().enumerate() {
        let numeric = (4.0 * central(k, h / 2.0) - central(k, h)) / 3.0;
        let analytic = gk as f64;
        let err = (numeric - analytic).abs() / numeric.abs().max(0.05 * largest);
        assert!(
            err < 0.05,
            "group {k}: autodiff {analytic:.6e} vs finite differences {numeric:.6e} (rel. error {err:.3})"
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
        let grads = l.backward();
        gains
            .log_gain
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
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
