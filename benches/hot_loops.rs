//! Criterion benchmarks of the hot loops outside the exact network engine: one structured RLS update of
//! many neurons sharing their feedforward inputs (Part 3's inner loop), a textbook FORCE training loop,
//! a streaming surrogate step for 1,000 cells, and one exact single-cell training-set batch.
//! `surge bench` times the same work at full size with peak memory.

use criterion::{Criterion, criterion_group, criterion_main};
use rayon::prelude::*;
use surge::rls::structured::{Item, NeuronBlock, SharedBlock, update_all};

/// `n` neurons with `m` private and `s` shared inputs, identity-scaled priors.
fn blocks(n: usize, m: usize, s: usize) -> (SharedBlock, Vec<NeuronBlock>) {
    let mut prec = vec![0.0; m * m];
    for i in 0..m {
        prec[i * m + i] = 1.0;
    }
    let blocks = (0..n)
        .map(|_| NeuronBlock::new(m, s, &prec, true).unwrap())
        .collect();
    (SharedBlock::new(s, 1.0), blocks)
}

fn rls(c: &mut Criterion) {
    let (n, m, s) = (1824, 40, 300);
    let (mut shared, mut nb) = blocks(n, m, s);
    let r: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..m)
                .map(|j| ((i * 7 + j * 13) % 17) as f64 / 17.0)
                .collect()
        })
        .collect();
    let x: Vec<f64> = (0..s).map(|j| (j % 11) as f64 / 11.0).collect();
    let mut w_r = vec![vec![0.0; m]; n];
    let mut w_s = vec![vec![0.0; s]; n];
    let mut g = c.benchmark_group("rls");
    g.sample_size(10);
    // With the next input announced, as Part 3 does (its feedforward spikes are drawn ahead), and
    // without: the announced form reads each neuron's cross block once per update instead of twice.
    for (name, ahead) in [
        ("structured_update_1824_neurons_40_private_300_shared", true),
        (
            "structured_update_1824_neurons_40_private_300_shared_no_lookahead",
            false,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let items = nb
                    .par_iter_mut()
                    .zip(r.par_iter())
                    .zip(w_r.par_iter_mut().zip(w_s.par_iter_mut()))
                    .map(|((block, r), (w_r, w_s))| Item {
                        block,
                        r,
                        e: 1e-3,
                        w_r,
                        w_s,
                    });
                update_all(&mut shared, &x, ahead.then_some(x.as_slice()), items)
            })
        });
    }
    let mut force = surge::rls::force::Force::new(surge::rls::force::ForceConfig::default());
    g.bench_function("force_500_units_1s_loop", |b| {
        b.iter(|| force.run(1000.0, true))
    });
    g.finish();
}

fn surrogate(c: &mut Criterion) {
    use burn::tensor::{Device, Distribution, Tensor};
    let device = Device::flex();
    device.seed(1);
    let model = surge::surrogate::SurrogateArch::new(4).init(&device);
    let mut state = surge::surrogate::SurrogateState::new(&model, 1000, &device);
    let x = Tensor::<2>::random([1000, 4], Distribution::Uniform(0.0, 1.0), &device);
    let mut g = c.benchmark_group("surrogate");
    g.sample_size(20);
    g.bench_function("stream_step_1000_cells", |b| {
        b.iter(|| {
            let (v, _) = state.step(&model, x.clone());
            v.into_data()
        })
    });
    g.finish();
}

fn generation(c: &mut Criterion) {
    let cfg = surge::data::DatasetConfig::from_toml_str(
        surge::shipped::DATASET_LIF,
        "experiments/dataset_lif.toml",
    )
    .unwrap();
    let mut g = c.benchmark_group("gen");
    g.sample_size(10);
    g.bench_function("64_traces_of_1s", |b| {
        b.iter(|| surge::data::generate::generate_traces(&cfg, 0..64).unwrap())
    });
    g.finish();
}

criterion_group!(benches, rls, surrogate, generation);
criterion_main!(benches);
