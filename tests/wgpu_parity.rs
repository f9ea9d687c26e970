//! The GPU code path (burn-wgpu) computes what the CPU path (Flex) computes: one training step of a
//! small surrogate, same weights and data on both devices, gives the same loss and the same update.
//! Built only with `--features wgpu`; CI runs it on lavapipe, Mesa's software Vulkan driver, so the
//! wgpu kernels are exercised on every change even without a GPU.
#![cfg(feature = "wgpu")]

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, DeviceKind, Tensor, TensorData};
use surge::surrogate::{Surrogate, SurrogateArch};

fn params(model: &Surrogate) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0
                .extend(param.val().into_data().try_to_vec::<f32>().unwrap());
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// Loss, and the parameters after one SGD step of rate 1 (their change is minus the gradient).
fn step(model: Surrogate, device: &Device) -> (f64, Vec<f32>) {
    let (b, t, c) = (2, 48, 3);
    let x: Vec<f32> = (0..b * t * c)
        .map(|i| ((i as f32) * 0.37).sin().abs())
        .collect();
    let y: Vec<f32> = (0..b * t).map(|i| ((i as f32) * 0.11).cos()).collect();
    let x = Tensor::<3>::from_data(TensorData::new(x, [b, t, c]), device);
    let y = Tensor::<2>::from_data(TensorData::new(y, [b, t]), device);
    let (v, logit) = model.forward(x);
    let loss = (v - y).powi_scalar(2).mean() + logit.powi_scalar(2).mean().mul_scalar(0.1);
    let value = loss.clone().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut sgd = SgdConfig::new().init();
    let model = sgd.step(1.0, model, grads);
    (value, params(&model))
}

#[test]
fn one_training_step_on_wgpu_matches_flex() {
    let cpu = Device::flex().autodiff();
    cpu.seed(9);
    let arch = SurrogateArch {
        n_inputs: 3,
        tcn_channels: 4,
        kernel: 2,
        dilations: vec![1, 2],
        lstm_hidden: 4,
    };
    let model = arch.init(&cpu);
    let before = params(&model);
    let gpu = Device::wgpu(DeviceKind::DefaultDevice).autodiff();
    let on_gpu = model.clone().fork(&gpu);
    assert_eq!(
        params(&on_gpu),
        before,
        "the weights moved to wgpu unchanged"
    );
    let (l_cpu, p_cpu) = step(model, &cpu);
    let (l_gpu, p_gpu) = step(on_gpu, &gpu);
    assert!(
        (l_cpu - l_gpu).abs() <= 1e-4 * l_cpu.abs().max(1.0),
        "loss: flex {l_cpu} vs wgpu {l_gpu}"
    );
    // With rate 1 the change of each parameter is its gradient.
    let worst = p_cpu
        .iter()
        .zip(&p_gpu)
        .zip(&before)
        .map(|((a, b), w)| ((a - w) - (b - w)).abs())
        .fold(0f32, f32::max);
    let largest = p_cpu
        .iter()
        .zip(&before)
        .map(|(a, w)| (a - w).abs())
        .fold(0f32, f32::max);
    assert!(largest > 1e-4, "gradients vanish ({largest})");
    assert!(
        worst <= 1e-4 * largest.max(1.0),
        "gradients differ by up to {worst} (largest {largest})"
    );
    eprintln!(
        "loss flex {l_cpu:.6} wgpu {l_gpu:.6}; gradients agree within {worst:.2e} (largest {largest:.3})"
    );
}
