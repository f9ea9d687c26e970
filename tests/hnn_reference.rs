//! The exact engine's compartmental pieces (`exact::cable`, `exact::channels`) against NEURON
//! running hnn-core's cells (`tests/reference/hnn_cells.h5`, made by `make_hnn_cells.py`): so far
//! the basket cell (one section, `hh2`, an AMPA Exp2Syn at the soma).

use surge::exact::cable::{Cable, Section};
use surge::exact::channels::{Hh2, Hh2Gates};
use surge::exact::models::lif_conductance::exp2_norm;

struct Reference {
    t_ms: Vec<f32>,
    v_soma: Vec<f32>,
    spikes: Vec<f64>,
}

fn reference(cell: &str, protocol: &str) -> Reference {
    let f = hdf5::File::open("tests/reference/hnn_cells.h5").unwrap();
    let g = f.group(&format!("{cell}/{protocol}")).unwrap();
    Reference {
        t_ms: g.dataset("t_ms").unwrap().read_raw().unwrap(),
        v_soma: g.dataset("v_soma_mv").unwrap().read_raw().unwrap(),
        spikes: g.dataset("spike_times_ms").unwrap().read_raw().unwrap(),
    }
}

/// hnn-core's basket cell: soma 39 x 20 um, cm 0.85, Ra 200, `hh2` at its defaults, starting at
/// -64.9737 mV with the gates at their steady states; a somatic current `i_na(t)` and AMPA events
/// (weight uS) through an Exp2Syn (0.5 / 5 ms, 0 mV). Returns the soma voltage every 0.1 ms and the
/// upward crossings of 0 mV.
fn basket(i_na: &dyn Fn(f64) -> f64, events: &[(f64, f64)]) -> (Vec<f64>, Vec<f64>) {
    let cable = Cable::new(&[Section {
        name: "soma".into(),
        length_um: 39.0,
        diam_um: 20.0,
        ra_ohm_cm: 200.0,
        cm_uf_cm2: 0.85,
        nseg: 1,
        parent: None,
    }]);
    let node = cable.segments[0][0];
    let area = cable.area_cm2[node];
    let hh = Hh2::default();
    let n = cable.len();
    let mut v = vec![-64.9737; n];
    let mut gates: Vec<Hh2Gates> = v.iter().map(|&x| hh.steady(x)).collect();
    let (dt, steps) = (0.025, 12_000);
    let (rise, decay) = (0.5, 5.0);
    let norm = exp2_norm(rise, decay);
    let (mut a, mut b) = (0.0f64, 0.0f64);
    let (mut trace, mut spikes) = (vec![v[node]], Vec::new());
    for k in 0..steps {
        let t = k as f64 * dt;
        for &(te, w) in events {
            if (te - t).abs() < dt / 2.0 {
                a += w * norm;
                b += w * norm;
            }
        }
        let mut g = vec![0.0; n];
        let mut e = vec![0.0; n];
        for i in 0..n {
            if cable.area_cm2[i] > 0.0 {
                (g[i], e[i]) = hh.conductance(&gates[i]);
            }
        }
        // The synapse's conductance (uS) as a density at its node, reversal 0 mV.
        let g_syn = (b - a) / (area * 1e3);
        e[node] = (g[node] * e[node]) / (g[node] + g_syn);
        g[node] += g_syn;
        let mut inj = vec![0.0; n];
        inj[node] = i_na(t + dt / 2.0);
        let before = v[node];
        cable.step(&mut v, &g, &e, &inj, dt);
        for (gt, &x) in gates.iter_mut().zip(&v) {
            hh.advance(gt, x, dt);
        }
        a *= (-dt / rise).exp();
        b *= (-dt / decay).exp();
        if before < 0.0 && v[node] >= 0.0 {
            spikes.push(t + dt * (0.0 - before) / (v[node] - before));
        }
        if (k + 1) % 4 == 0 {
            trace.push(v[node]);
        }
    }
    (trace, spikes)
}

fn compare(name: &str, r: &Reference, trace: &[f64], spikes: &[f64]) {
    assert_eq!(
        spikes.len(),
        r.spikes.len(),
        "{name}: {spikes:?} vs {:?}",
        r.spikes
    );
    for (a, b) in spikes.iter().zip(&r.spikes) {
        assert!(
            (a - b).abs() <= 0.5,
            "{name}: spike at {a} ms vs NEURON's {b} ms"
        );
    }
    // Subthreshold: samples more than 5 ms from any reference spike.
    let (mut sum, mut count) = (0.0, 0usize);
    for (k, (&t, &vr)) in r.t_ms.iter().zip(&r.v_soma).enumerate() {
        if r.spikes.iter().all(|&s| (t as f64 - s).abs() > 5.0) && k < trace.len() {
            sum += (trace[k] - vr as f64).powi(2);
            count += 1;
        }
    }
    let rmse = (sum / count as f64).sqrt();
    println!(
        "{name}: spikes {spikes:?} vs NEURON {:?}; subthreshold RMSE {rmse:.3} mV",
        r.spikes
    );
    assert!(rmse <= 0.5, "{name}: subthreshold RMSE {rmse} mV");
}

#[test]
fn basket_cell_follows_neuron_under_a_current_step() {
    let r = reference("L2_basket", "step");
    let (trace, spikes) = basket(&|t| if (50.0..250.0).contains(&t) { 0.1 } else { 0.0 }, &[]);
    compare("step", &r, &trace, &spikes);
}

#[test]
fn basket_cell_follows_neuron_under_synaptic_events() {
    let r = reference("L2_basket", "synaptic");
    let events: Vec<(f64, f64)> = [60.0, 61.0, 62.0, 63.0, 150.0, 152.0]
        .iter()
        .map(|&t| (t, 0.01))
        .collect();
    let (trace, spikes) = basket(&|_| 0.0, &events);
    compare("synaptic", &r, &trace, &spikes);
}
