//! Training a small surrogate on a small set: the validation voltage error falls well below that of
//! predicting the mean, and a saved checkpoint reloads to the same predictions.

mod common;

use burn::tensor::{Device, Distribution, Tensor};
use surge::data::{DatasetConfig, generate_to_file};
use surge::surrogate::SurrogateArch;
use surge::surrogate::train::{TrainConfig, TrainHow, load_checkpoint, train};

const SET: &str = r#"
name = "tiny"
[dataset]
traces = 40
duration_ms = 200.0
seed = 9
mix = { subthreshold = 1.0, suprathreshold = 1.0 }
[neuron]
model = "lif_conductance"
[[channels]]
name = "ampa"
n_sources = 100
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.05, 0.3], suprathreshold = [0.3, 1.5], network = [0.3, 1.5] }
[[channels]]
name = "gabaa"
n_sources = 30
rate_hz = [5.0, 30.0]
weights = { subthreshold = [0.05, 0.5], suprathreshold = [0.05, 0.5], network = [0.05, 0.5] }
"#;

#[test]
fn training_learns_the_voltage_and_checkpoints_reload() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DatasetConfig::from_toml_str(SET, "tiny").unwrap();
    let data = generate_to_file(
        &cfg,
        SET,
        &dir.path().join("tiny.h5"),
        (0, 1),
        &mut |_, _| {},
    )
    .unwrap();
    let arch = SurrogateArch {
        n_inputs: 4,
        tcn_channels: 16,
        kernel: 3,
        dilations: vec![1, 2, 4],
        lstm_hidden: 24,
    };
    let mut tc = TrainConfig::new(3);
    tc.window = 300;
    tc.burn_in = 100;
    tc.batch = 8;
    tc.epochs = 8;
    tc.steps_per_epoch = 15;
    tc.lr = 1e-2;
    tc.lr_min = 1e-3;
    let out = dir.path().join("ckpt");
    let device = Device::flex();
    let meta = train(
        std::slice::from_ref(&data),
        Some(arch.clone()),
        &tc,
        &out,
        &device,
        TrainHow {
            fused: true,
            resume: false,
        },
        &mut |_, _, _| true,
    )
    .unwrap();
    let first = &meta.epochs[0];
    let best = meta
        .epochs
        .iter()
        .map(|e| e.val_voltage_mse)
        .fold(f64::INFINITY, f64::min);
    eprintln!(
        "val voltage MSE (standardised): epoch 1 {:.3}, best {:.3}; spike BCE {:.3} -> {:.3}",
        first.val_voltage_mse,
        best,
        first.val_spike_bce,
        meta.epochs[meta.best_epoch - 1].val_spike_bce
    );
    // Predicting the mean gives an MSE of about 1 on standardised voltage.
    assert!(best < 0.5, "best validation voltage MSE {best}");
    assert!(best < 0.7 * first.val_voltage_mse.max(0.5));

    let (model, meta2) = load_checkpoint(&out, &device).unwrap();
    assert_eq!(meta2.channel_names, vec!["ampa", "nmda", "gabaa", "gabab"]);
    let (again, _) = load_checkpoint(&out, &device).unwrap();
    let x = Tensor::<3>::random([2, 100, 4], Distribution::Uniform(0.0, 1.0), &device);
    let a: Vec<f32> = model.forward(x.clone()).0.into_data().try_to_vec().unwrap();
    let b: Vec<f32> = again.forward(x).0.into_data().try_to_vec().unwrap();
    assert_eq!(a, b);
    // Held-out traces (another seed): the evaluation agrees with the validation loss.
    let mut held = cfg.clone();
    held.dataset.seed = Some(10);
    held.dataset.traces = 12;
    let held_path = generate_to_file(
        &held,
        SET,
        &dir.path().join("held.h5"),
        (0, 1),
        &mut |_, _| {},
    )
    .unwrap();
    let (m, _) =
        surge::surrogate::eval::evaluate(&out, std::slice::from_ref(&held_path), &device).unwrap();
    eprintln!(
        "held-out: r {:.3}, RMSE {:.2} mV, subthreshold RMSE {:.2} mV, F1 {:.2}",
        m.voltage_r, m.voltage_rmse_mv, m.subthreshold_rmse_mv, m.spike_f1
    );
    assert!(
        m.voltage_r > 0.5
            && m.voltage_rmse_mv.is_finite()
            && m.subthreshold_rmse_mv <= m.voltage_rmse_mv
    );
    // Calibration on the training set makes the surrogate call as many spikes there as the exact cell.
    let cal =
        surge::surrogate::eval::calibrate(&out, std::slice::from_ref(&data), 64, false, &device)
            .unwrap();
    let (thr, exact) = (cal.threshold, cal.exact_spikes);
    let (mt, _) =
        surge::surrogate::eval::evaluate(&out, std::slice::from_ref(&data), &device).unwrap();
    assert!(thr.is_finite() && exact > 0);
    // The logit's rise at threshold crossings is measured and stored with the threshold.
    let (_, stored) = surge::surrogate::train::load_checkpoint(&out, &device).unwrap();
    assert!(cal.width > 0.0 && stored.spike_logit_width == Some(cal.width));
    assert_eq!(stored.spike_logit_threshold, thr);
    // Onsets counted on the calibration data at the stored threshold: as close to the exact count as
    // at threshold 0 or closer, and within 10%.
    assert!(
        cal.called.abs_diff(exact) <= cal.at_zero.abs_diff(exact)
            && cal.called.abs_diff(exact) as f64 <= 0.1 * exact as f64 + 2.0,
        "calibrated count {} vs exact {exact} (at threshold 0: {}; threshold {thr})",
        cal.called,
        cal.at_zero
    );
    // `surge eval` counts onsets by the same rule on the same scored bins: its rate is as close.
    assert!(
        (mt.rate_predicted_hz - mt.rate_exact_hz).abs() <= 0.1 * mt.rate_exact_hz + 0.5,
        "calibrated rate {} Hz vs exact {} Hz (threshold {thr})",
        mt.rate_predicted_hz,
        mt.rate_exact_hz
    );
    // A set of another neuron (other channels) is refused.
    let other = common::edit(
        SET,
        "model = \"lif_conductance\"",
        "model = \"lif_current\"\nv_threshold_mv = 20.0\nv_reset_mv = 10.0\nchannels = [{ name = \"ampa\", tau_ms = 5.0 }, { name = \"gabaa\", tau_ms = 5.0 }]",
    );
    let ocfg = DatasetConfig::from_toml_str(&other, "other").unwrap();
    let opath = generate_to_file(
        &ocfg,
        &other,
        &dir.path().join("other.h5"),
        (0, 1),
        &mut |_, _| {},
    )
    .unwrap();
    let err = surge::surrogate::eval::evaluate(&out, &[opath], &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("channels") && err.contains("trained on"),
        "{err}"
    );
    // Killed after epoch 3 and resumed: the same epochs and the same model as the uninterrupted run.
    let out2 = dir.path().join("resumed");
    let stopped = train(
        std::slice::from_ref(&data),
        Some(arch.clone()),
        &tc,
        &out2,
        &device,
        TrainHow {
            fused: true,
            resume: false,
        },
        &mut |e, _, _| e < 3,
    )
    .unwrap();
    assert_eq!(stopped.epochs.len(), 3);
    let resumed = train(
        std::slice::from_ref(&data),
        Some(arch.clone()),
        &tc,
        &out2,
        &device,
        TrainHow {
            fused: true,
            resume: true,
        },
        &mut |_, _, _| true,
    )
    .unwrap();
    let losses = |m: &surge::surrogate::train::SurrogateMeta| {
        m.epochs.iter().map(|e| e.val_loss).collect::<Vec<_>>()
    };
    assert_eq!(
        losses(&resumed),
        losses(&meta),
        "resumed run differs from the uninterrupted one"
    );
    assert_eq!(resumed.best_epoch, meta.best_epoch);
    let (m2, _) = load_checkpoint(&out2, &device).unwrap();
    let y = Tensor::<3>::random([1, 80, 4], Distribution::Uniform(0.0, 1.0), &device);
    let p1: Vec<f32> = model.forward(y.clone()).0.into_data().try_to_vec().unwrap();
    let p2: Vec<f32> = m2.forward(y).0.into_data().try_to_vec().unwrap();
    assert_eq!(p1, p2);
    // Resuming with another configuration is refused.
    let mut other_tc = tc.clone();
    other_tc.lr = 5e-3;
    let err = train(
        std::slice::from_ref(&data),
        Some(arch.clone()),
        &other_tc,
        &out2,
        &device,
        TrainHow {
            fused: true,
            resume: true,
        },
        &mut |_, _, _| true,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("another configuration"), "{err}");
    // A missing sidecar is refused with a message.
    std::fs::remove_file(out.join("surrogate.json")).unwrap();
    let err = load_checkpoint(&out, &device).err().unwrap().to_string();
    assert!(err.contains("surrogate.json"), "{err}");
}
