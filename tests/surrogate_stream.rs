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

/// The fused CPU stream (plain buffers, `gemm`) gives the full forward pass's voltages, input scaling
/// and output scaling included, over 2,000 steps.
#[test]
fn fused_stream_equals_full_forward_over_2000_steps() {
    use surge::surrogate::train::{Scaling, SurrogateMeta};
    let device = Device::flex();
    device.seed(8);
    let arch = SurrogateArch::new(4);
    let model = arch.init(&device);
    let (batch, steps) = (3, 2000);
    let scale = [1.5f32, 0.3, 2.0, 90.0];
    let meta = SurrogateMeta::untrained(
        arch.clone(),
        ["ampa", "nmda", "gabaa", "gabab"]
            .map(String::from)
            .to_vec(),
        Scaling {
            input_scale: scale.to_vec(),
            v_mean: -65.0,
            v_std: 8.0,
        },
        0.5,
    );
    // Raw inputs: sparse, positive, channel scales apart.
    let raw = Tensor::<3>::random([batch, steps, 4], Distribution::Uniform(0.0, 1.0), &device);
    let raw = raw.clone().greater_elem(0.8).float() * raw * 3.0;
    let s = Tensor::<3>::from_data(
        burn::tensor::TensorData::new(scale.to_vec(), [1, 1, 4]),
        &device,
    );
    let scaled = (raw.clone() / s).add_scalar(1.0).log();
    let (v_full, _) = model.forward(scaled);
    let v_full: Vec<f32> = v_full.into_data().try_to_vec::<f32>().unwrap();
    let raw: Vec<f32> = raw.into_data().try_to_vec::<f32>().unwrap();
    // Per bin, [batch * C] as the network engine lays it out.
    let bins: Vec<Vec<f32>> = (0..steps)
        .map(|t| {
            (0..batch)
                .flat_map(|b| (0..4).map(move |c| (b, c)))
                .map(|(b, c)| raw[(b * steps + t) * 4 + c])
                .collect()
        })
        .collect();
    let mut stream = surge::netopt::FusedStream::new(&model, &meta, batch);
    // In two pieces: the state carries over.
    let mut v = stream.run(&bins[..700]);
    v.extend(stream.run(&bins[700..]));
    let mut worst = 0f32;
    for (t, vt) in v.iter().enumerate() {
        for (b, &x) in vt.iter().enumerate() {
            let want = v_full[b * steps + t] * 8.0 - 65.0;
            worst = worst.max((x - want).abs());
        }
    }
    eprintln!("max |full - fused stream|: {worst:.2e} mV");
    assert!(worst < 1e-3, "{worst} mV");
}
