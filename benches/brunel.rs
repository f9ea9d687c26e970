//! Criterion benchmarks of the exact engine's hot paths on the Brunel network: building the
//! connectome and simulating 100 ms. `surge bench brunel` times the full 1 s run.

use criterion::{Criterion, criterion_group, criterion_main};
use surge::exact::simulate;
use surge::spec::{Connectome, NetworkSpec};

fn brunel(duration_ms: f64) -> NetworkSpec {
    let mut spec = NetworkSpec::from_toml_str(surge::shipped::BRUNEL, "brunel").unwrap();
    spec.simulation.duration_ms = duration_ms;
    spec.recording.voltages.clear();
    spec
}

fn bench(c: &mut Criterion) {
    let spec = brunel(100.0);
    let mut g = c.benchmark_group("brunel");
    g.sample_size(10);
    g.bench_function("build_connectome_10M_synapses", |b| {
        b.iter(|| Connectome::build(&spec))
    });
    let conn = Connectome::build(&spec);
    g.bench_function("simulate_100ms", |b| {
        b.iter(|| simulate(&spec, &conn, &mut |_, _| {}).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
