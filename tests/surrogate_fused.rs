//! The fused CPU training step computes the same loss and the same gradient, weight by weight, as
//! burn's autodiff through the burn model; and the same result on one thread as on two.

use burn::module::{Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use surge::surrogate::cpu::train_step::{Batch, FusedTrainer, LossSpec};
use surge::surrogate::train::loss;
use surge::surrogate::{Surrogate, SurrogateArch};

/// The tests seed burn's one device generator; run them one at a time so none draws from another's stream.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn arch() -> SurrogateArch {
    SurrogateArch {
        n_inputs: 3,
        tcn_channels: 8,
        kernel: 3,
        dilations: vec![1, 2],
        lstm_hidden: 6,
    }
}

/// Every parameter of the model, in declaration order: (name, id, rank, values).
fn params(m: &Surrogate) -> Vec<(String, ParamId, usize, Vec<f32>)> {
    fn p<const D: usize>(
        out: &mut Vec<(String, ParamId, usize, Vec<f32>)>,
        name: String,
        p: &Param<Tensor<D>>,
    ) {
        let v = p
            .val()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        out.push((name, p.id, D, v));
    }
    let mut out = Vec::new();
    for (k, b) in m.blocks.iter().enumerate() {
        for (nm, c) in [
            ("conv1", Some(&b.conv1)),
            ("conv2", Some(&b.conv2)),
            ("skip", b.skip.as_ref()),
        ] {
            if let Some(c) = c {
                p(&mut out, format!("block{k}.{nm}.weight"), &c.weight);
                p(&mut out, format!("block{k}.{nm}.bias"), &c.bias);
            }
        }
    }
    let bias = |l: &burn::nn::Linear| l.bias.clone().expect("linear layers have a bias");
    p(&mut out, "lstm.input.weight".into(), &m.lstm.input.weight);
    p(&mut out, "lstm.input.bias".into(), &bias(&m.lstm.input));
    p(&mut out, "lstm.recurrent".into(), &m.lstm.recurrent);
    p(&mut out, "voltage.weight".into(), &m.voltage_head.weight);
    p(&mut out, "voltage.bias".into(), &bias(&m.voltage_head));
    p(&mut out, "spike.weight".into(), &m.spike_head.weight);
    p(&mut out, "spike.bias".into(), &bias(&m.spike_head));
    out
}

/// All weights of the model in one vector.
fn weights(m: &Surrogate) -> Vec<f32> {
    params(m).into_iter().flat_map(|(_, _, _, v)| v).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn grad_values(g: &GradientsParams, id: ParamId, rank: usize) -> Vec<f32> {
    let data = match rank {
        1 => g.get::<1>(id).map(|t| t.into_data()),
        2 => g.get::<2>(id).map(|t| t.into_data()),
        3 => g.get::<3>(id).map(|t| t.into_data()),
        _ => unreachable!(),
    };
    data.expect("a gradient for every parameter")
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

struct Case {
    x: Vec<f32>,
    v: Vec<f32>,
    s: Vec<f32>,
    b: usize,
    w: usize,
}

impl Case {
    fn batch(&self) -> Batch<'_> {
        Batch {
            x: &self.x,
            v: &self.v,
            s: &self.s,
            b: self.b,
            w: self.w,
        }
    }

    /// Burn's loss terms (total, MSE, BCE) of the case through `model`, on `device`.
    fn burn_loss(
        &self,
        model: &Surrogate,
        spec: LossSpec,
        device: &Device,
    ) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let (b, w) = (self.b, self.w);
        let tx = Tensor::<3>::from_data(TensorData::new(self.x.clone(), [b, w, 3]), device);
        let tv = Tensor::<2>::from_data(TensorData::new(self.v.clone(), [b, w]), device);
        let ts = Tensor::<2>::from_data(TensorData::new(self.s.clone(), [b, w]), device);
        loss(
            model,
            tx,
            tv,
            ts,
            spec.skip,
            spec.pos_weight as f64,
            spec.lambda as f64,
        )
    }
}

fn case(b: usize, w: usize, seed: u64) -> Case {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Sparse positive drive (as scaled synaptic input is), voltages with structure, 5% spikes.
    let x = (0..b * w * 3)
        .map(|_| {
            if rng.random::<f32>() < 0.3 {
                rng.random::<f32>() * 2.0
            } else {
                0.0
            }
        })
        .collect();
    let v = (0..b * w)
        .map(|i| ((i % w) as f32 * 0.05).sin() + rng.random::<f32>() * 0.3)
        .collect();
    let s = (0..b * w)
        .map(|_| (rng.random::<f32>() < 0.05) as u8 as f32)
        .collect();
    Case { x, v, s, b, w }
}

#[test]
fn fused_gradient_equals_burn_autodiff() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    let ad = device.clone().autodiff();
    ad.seed(5);
    let model = arch().init(&ad);
    // 11 windows: a full group of 8 and a partial one.
    let c = case(11, 40, 3);
    let spec = LossSpec {
        skip: 12,
        pos_weight: 4.0,
        lambda: 0.7,
    };
    let mut ft = FusedTrainer::new(&model);
    let batch = c.batch();
    let (fl, fg) = ft.step(&model, &batch, spec, &device);
    // The forward-only loss (validation) is the same pass without the backward.
    assert_eq!(ft.loss(&batch, spec), fl);

    let (l, m, bce) = c.burn_loss(&model, spec, &ad);
    let scalar = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap()[0] as f64;
    let (bm, bb) = (scalar(m), scalar(bce));
    let bg = GradientsParams::from_grads(l.backward(), &model);
    eprintln!(
        "loss: fused mse {:.6} bce {:.6}, burn mse {bm:.6} bce {bb:.6}",
        fl.mse, fl.bce
    );
    assert!(
        (fl.mse - bm).abs() < 1e-5 * bm.max(1.0),
        "MSE {} vs {bm}",
        fl.mse
    );
    assert!(
        (fl.bce - bb).abs() < 1e-5 * bb.max(1.0),
        "BCE {} vs {bb}",
        fl.bce
    );

    let mut worst = 0f32;
    for (name, id, rank, _) in params(&model) {
        let a = grad_values(&fg, id, rank);
        let b = grad_values(&bg, id, rank);
        assert_eq!(a.len(), b.len(), "{name}");
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let err = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale;
        eprintln!("{name:<20} max |grad| {scale:.3e}, max difference / max |grad| {err:.2e}");
        assert!(
            scale > 1e-6,
            "{name}: burn's gradient is zero, the case does not test it"
        );
        assert!(
            err < 1e-4,
            "{name}: fused and autodiff gradients differ by {err:e} of the largest"
        );
        worst = worst.max(err);
    }
    eprintln!("worst relative difference {worst:.2e}");
}

#[test]
fn fused_step_does_not_depend_on_the_thread_count() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(8);
    let model = arch().init(&device);
    let c = case(19, 30, 4);
    let spec = LossSpec {
        skip: 10,
        pos_weight: 2.0,
        lambda: 1.0,
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut ft = FusedTrainer::new(&model);
            let (l, g) = ft.step(&model, &c.batch(), spec, &device);
            let grads: Vec<Vec<f32>> = params(&model)
                .into_iter()
                .map(|(_, id, r, _)| grad_values(&g, id, r))
                .collect();
            (l, grads)
        })
    };
    let (l1, g1) = run(1);
    let (l2, g2) = run(2);
    assert_eq!(l1, l2);
    assert_eq!(g1, g2);
}

/// Several Adam steps (gradient clipping on) from the fused gradient follow the autodiff path's weights: the optimizer
/// state carries over between steps whichever path made the gradient.
#[test]
fn adam_steps_on_the_fused_gradient_follow_the_autodiff_path() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use burn::grad_clipping::GradientClippingConfig;
    use burn::optim::AdamConfig;
    let device = Device::flex();
    let ad = device.clone().autodiff();
    ad.seed(6);
    let mut a = arch().init(&ad);
    let mut b = a.clone();
    let config = AdamConfig::new().with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)));
    let (mut oa, mut ob) = (config.init(), config.init());
    let spec = LossSpec {
        skip: 8,
        pos_weight: 3.0,
        lambda: 0.5,
    };
    let mut ft = FusedTrainer::new(&b);
    let init = weights(&a);
    for step in 0..6 {
        let c = case(9, 30, 10 + step);
        let (l, _, _) = c.burn_loss(&a, spec, &ad);
        let ga = GradientsParams::from_grads(l.backward(), &a);
        a = oa.step(1e-2, a, ga);
        ft.load(&b);
        let (_, gb) = ft.step(&b, &c.batch(), spec, &device);
        b = ob.step(1e-2, b, gb);
    }
    let (va, vb) = (weights(&a), weights(&b));
    let moved = max_abs_diff(&va, &init);
    let diff = max_abs_diff(&va, &vb);
    eprintln!(
        "after 6 steps: weights moved up to {moved:.3e}; fused and autodiff paths differ by up to {diff:.3e}"
    );
    assert!(
        moved > 1e-2,
        "the steps hardly moved the weights ({moved}): the comparison tests nothing"
    );
    assert!(diff < 1e-4, "the paths' weights differ by {diff}");
}

/// burn initialises parameters lazily from the device's generator; the model's constructor reads them all at once,
/// so the fused step (which reads the heads first) and burn's forward pass start from the same weights.
#[test]
fn a_seed_gives_the_same_weights_whichever_path_reads_them_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex();
    device.seed(9);
    let a = arch().init(&device);
    let _ = FusedTrainer::new(&a);
    device.seed(9);
    let b = arch().init(&device);
    let _ = b.forward(Tensor::<3>::zeros([1, 4, 3], &device));
    assert_eq!(weights(&a), weights(&b));
}
