//! The Brunel (2000) network: asynchronous irregular at the mean-field rate; seeds reproduce exactly.

use surge::exact::{siegert, simulate};
use surge::signal;
use surge::spec::{Connectome, NetworkSpec};

fn brunel() -> NetworkSpec {
    NetworkSpec::from_toml_str(surge::shipped::BRUNEL, "brunel").unwrap()
}

#[test]
fn brunel_is_asynchronous_irregular_at_the_siegert_rate() {
    let spec = brunel();
    let conn = Connectome::build(&spec);
    assert_eq!(conn.n_synapses(), 10_000 * 1000);
    assert!(conn.in_degrees(0)[..8000].iter().all(|&k| k == 800));
    let res = simulate(&spec, &conn, &mut |_, _| {}).unwrap();
    let mf =
        siegert::mean_field_rates(&spec).expect("current-based network has a mean-field solution");
    for (p, name) in ["E", "I"].iter().enumerate() {
        let cells = conn.pop_offsets[p]..conn.pop_offsets[p + 1];
        // Discard the first 200 ms (the uniform initial voltages).
        let keep: Vec<usize> = (0..res.spike_times_ms.len())
            .filter(|&i| res.spike_times_ms[i] >= 200.0)
            .collect();
        let t: Vec<f64> = keep.iter().map(|&i| res.spike_times_ms[i]).collect();
        let c: Vec<u32> = keep.iter().map(|&i| res.spike_cells[i]).collect();
        let n_spikes = c.iter().filter(|&&x| cells.contains(&(x as usize))).count();
        let rate = n_spikes as f64 / cells.len() as f64 / 0.8;
        let trains = signal::spike_trains(&t, &c, cells);
        let cv = signal::mean_cv_isi(&trains, 3).unwrap();
        let rel = (rate - mf[p]).abs() / mf[p];
        eprintln!(
            "{name}: rate {rate:.2} Hz, mean field {:.2} Hz ({:.1}%), CV {cv:.2}",
            mf[p],
            rel * 100.0
        );
        assert!(cv > 0.5, "{name}: CV ISI {cv}");
        assert!(rel < 0.2, "{name}: rate {rate} vs mean field {}", mf[p]);
    }
}

#[test]
fn same_seed_same_spikes_and_connectome_independent_of_threads() {
    let mut spec = brunel();
    spec.simulation.duration_ms = 150.0;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let c1 = one.install(|| Connectome::build(&spec));
    let c2 = two.install(|| Connectome::build(&spec));
    assert!(c1 == c2, "connectome depends on the thread count");
    let a = simulate(&spec, &c1, &mut |_, _| {}).unwrap();
    let b = simulate(&spec, &c2, &mut |_, _| {}).unwrap();
    assert!(!a.spike_times_ms.is_empty());
    assert_eq!(a.spike_times_ms, b.spike_times_ms);
    assert_eq!(a.spike_cells, b.spike_cells);
    // Another seed gives another network and other spikes.
    spec.simulation.seed = Some(99);
    let c3 = Connectome::build(&spec);
    assert!(c3.targets != c1.targets);
    let c = simulate(&spec, &c3, &mut |_, _| {}).unwrap();
    assert_ne!(a.spike_cells, c.spike_cells);
}
