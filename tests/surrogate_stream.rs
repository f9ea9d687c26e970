//! The streaming surrogate (one bin at a time, O(1) per step) equals the full-sequence forward pass.

use burn::tensor::{Device, Distribution, Tensor};
use surge::surrogate::{SurrogateArch, SurrogateState};

fn max_abs_diff(a: Vec<f32>, b: Vec<f32>) -> f32 {
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn streaming_equals_full_forward_over_2000_steps() {
    let device = Device::flex();
    device.seed(7);
    let arch = SurrogateArch::new(4);
    assert_eq!(arch.receptive_field(), 61);
    let model = arch.init(&device);
    let (batch, steps) = (3, 2000);
    // Sparse, positive inputs like binned synaptic drive.
    let x = Tensor::<3>::random([batch, steps, 4], Distribution::Uniform(0.0, 1.0), &device);
    let x = x.clone().greater_elem(0.8).float() * x * 3.0;
    let (v_full, s_full) = model.forward(x.clone());
    let mut state = SurrogateState::new(&model, batch, &device);
    let mut v_stream = Vec::with_capacity(steps);
    let mut s_stream = Vec::with_capacity(steps);
    for t in 0..steps {
        let xt = x.clone().narrow(1, t, 1).reshape([batch, 4]);
        let (v, s) = state.step(&model, xt);
        v_stream.push(v);
        s_stream.push(s);
    }
    let v_stream: Tensor<2> = Tensor::stack(v_stream, 1);
    let s_stream: Tensor<2> = Tensor::stack(s_stream, 1);
    let full_v: Vec<f32> = v_full.into_data().try_to_vec::<f32>().unwrap();
    let dv = max_abs_diff(
        full_v.clone(),
        v_stream.into_data().try_to_vec::<f32>().unwrap(),
    );
    let ds = max_abs_diff(
        s_full.into_data().try_to_vec::<f32>().unwrap(),
        s_stream.into_data().try_to_vec::<f32>().unwrap(),
    );
    eprintln!("max |full - stream|: voltage {dv:.2e}, spike logit {ds:.2e}");
    assert!(dv < 1e-4 && ds < 1e-4, "voltage {dv}, logit {ds}");
    // The output does depend on the input (the comparison is not between two constants).
    let spread = full_v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
        - full_v.iter().fold(f32::INFINITY, |a, &b| a.min(b));
    assert!(spread > 1e-3, "output spread {spread}");
}
