//! hnn-core's cells in the exact engine (`exact::hnn_cells` on `exact::compartmental`) against
//! NEURON running hnn-core's own cells (`tests/reference/hnn_cells.h5`, made by
//! `make_hnn_cells.py`): somatic and apical-trunk voltage under a current step and under a fixed
//! train of synaptic events. Bars: spike times within 0.5 ms, subthreshold RMSE at most 0.5 mV, the
//! pyramidal cells' dipole within 1% (RMSE against its largest subthreshold value).

use surge::exact::compartmental::{CellType, Stepper, Work};
use surge::exact::hnn_cells::{self, AMPA, NMDA};
use surge::spec::HnnCell;

struct Reference {
    t_ms: Vec<f32>,
    v_soma: Vec<f32>,
    v_trunk: Option<Vec<f32>>,
    dipole: Option<Vec<f32>>,
    spikes: Vec<f64>,
}

fn reference(cell: &str, protocol: &str) -> Reference {
    let f = hdf5::File::open("tests/reference/hnn_cells.h5").unwrap();
    let g = f.group(&format!("{cell}/{protocol}")).unwrap();
    Reference {
        t_ms: g.dataset("t_ms").unwrap().read_raw().unwrap(),
        v_soma: g.dataset("v_soma_mv").unwrap().read_raw().unwrap(),
        v_trunk: g
            .dataset("v_apical_trunk_mv")
            .ok()
            .map(|d| d.read_raw().unwrap()),
        dipole: g.dataset("dipole_fam").ok().map(|d| d.read_raw().unwrap()),
        spikes: g.dataset("spike_times_ms").unwrap().read_raw().unwrap(),
    }
}

/// The events `make_hnn_cells.py` sends: `(section, receptor, times, weight uS)`.
fn events(pyramidal: bool) -> Vec<(&'static str, &'static str, Vec<f64>, f64)> {
    if pyramidal {
        vec![
            (
                "basal_2",
                "ampa",
                vec![60.0, 62.0, 64.0, 150.0, 151.0],
                0.004,
            ),
            (
                "apical_tuft",
                "ampa",
                vec![100.0, 101.0, 103.0, 200.0],
                0.006,
            ),
            ("apical_tuft", "nmda", vec![100.0, 200.0], 0.002),
            ("basal_3", "nmda", vec![60.0, 150.0], 0.001),
        ]
    } else {
        vec![(
            "soma",
            "ampa",
            vec![60.0, 61.0, 62.0, 63.0, 150.0, 152.0],
            0.01,
        )]
    }
}

/// Runs `cell` for 300 ms at dt 0.025 ms with somatic current `i_na(t)` and `events`; returns the
/// soma and apical-trunk (middle) voltage and the dipole (fA m) every 0.1 ms, and the upward
/// crossings of 0 mV.
fn run(
    mut cell: CellType,
    i_na: &dyn Fn(f64) -> f64,
    events: &[(&str, &str, Vec<f64>, f64)],
) -> Trace {
    // One channel per event line, on that section alone.
    for (k, (sec, rec, _, _)) in events.iter().enumerate() {
        let receptor = if *rec == "ampa" { AMPA } else { NMDA };
        cell.add_channel(&format!("test_{k}"), receptor, &[sec]);
    }
    let first = cell.channels.len() - events.len();
    let trunk = cell
        .sections
        .iter()
        .position(|s| s.name == "apical_trunk")
        .map(|si| cell.cable.segments[si][cell.sections[si].nseg / 2]);
    let stepper = Stepper::new(cell, 0.025);
    let mut s = stepper.initial::<1>();
    let mut work = Work::default();
    let dt = stepper.dt;
    let mut tr = Trace {
        soma: vec![stepper.v_soma(&s, 0)],
        dend: Vec::new(),
        dipole: vec![stepper.dipole(&s)[0]],
        spikes: Vec::new(),
    };
    if let Some(n) = trunk {
        tr.dend.push(s.v[n][0]);
    }
    for k in 0..12_000 {
        let t = k as f64 * dt;
        for (c, (_, _, times, w)) in events.iter().enumerate() {
            for &te in times {
                if (te - t).abs() < dt / 2.0 {
                    stepper.receive(&mut s, 0, first + c, w * 1e3);
                }
            }
        }
        let before = stepper.v_soma(&s, 0);
        stepper.step(&mut s, &[i_na(t + dt / 2.0)], &mut work);
        let after = stepper.v_soma(&s, 0);
        if before < 0.0 && after >= 0.0 {
            tr.spikes.push(t + dt * (0.0 - before) / (after - before));
        }
        if (k + 1) % 4 == 0 {
            tr.soma.push(after);
            tr.dipole.push(stepper.dipole(&s)[0]);
            if let Some(n) = trunk {
                tr.dend.push(s.v[n][0]);
            }
        }
    }
    tr
}

struct Trace {
    soma: Vec<f64>,
    dend: Vec<f64>,
    dipole: Vec<f64>,
    spikes: Vec<f64>,
}

/// Subthreshold RMSE: samples more than 5 ms from any reference spike.
fn rmse(r: &Reference, reference: &[f32], trace: &[f64]) -> f64 {
    let (mut sum, mut count) = (0.0, 0usize);
    for (k, (&t, &vr)) in r.t_ms.iter().zip(reference).enumerate() {
        if r.spikes.iter().all(|&s| (t as f64 - s).abs() > 5.0) && k < trace.len() {
            sum += (trace[k] - vr as f64).powi(2);
            count += 1;
        }
    }
    (sum / count as f64).sqrt()
}

fn check(name: &str, cell: CellType, protocol: &str) {
    let pyramidal = !name.ends_with("basket");
    let r = reference(name, protocol);
    let Trace {
        soma,
        dend,
        dipole,
        spikes,
    } = if protocol == "step" {
        let amp = if pyramidal { 0.25 } else { 0.1 };
        run(
            cell,
            &|t| if (50.0..250.0).contains(&t) { amp } else { 0.0 },
            &[],
        )
    } else {
        run(cell, &|_| 0.0, &events(pyramidal))
    };
    let soma_rmse = rmse(&r, &r.v_soma, &soma);
    let dend_rmse = r.v_trunk.as_ref().map(|vt| rmse(&r, vt, &dend));
    // The dipole: RMSE over the subthreshold samples against the largest subthreshold value.
    let dipole_error = r.dipole.as_ref().map(|dp| {
        let scale = r
            .t_ms
            .iter()
            .zip(dp)
            .filter(|(t, _)| r.spikes.iter().all(|&s| (**t as f64 - s).abs() > 5.0))
            .map(|(_, &x)| (x as f64).abs())
            .fold(0.0, f64::max);
        (rmse(&r, dp, &dipole), scale)
    });
    println!(
        "{name} {protocol}: {} spikes vs NEURON's {}; first {:?} vs {:?}; subthreshold RMSE soma \
         {soma_rmse:.3} mV, apical trunk {dend_rmse:?}; dipole RMSE, largest |dipole| (fA m) \
         {dipole_error:?}",
        spikes.len(),
        r.spikes.len(),
        spikes.iter().take(4).collect::<Vec<_>>(),
        r.spikes.iter().take(4).collect::<Vec<_>>()
    );
    assert_eq!(
        spikes.len(),
        r.spikes.len(),
        "{name} {protocol}: spike count"
    );
    let within = spikes
        .iter()
        .zip(&r.spikes)
        .filter(|(a, b)| (*a - *b).abs() <= 0.5)
        .count();
    assert!(
        within as f64 >= 0.95 * r.spikes.len() as f64,
        "{name} {protocol}: {within} of {} spikes within 0.5 ms: {spikes:?} vs {:?}",
        r.spikes.len(),
        r.spikes
    );
    assert!(soma_rmse <= 0.5, "{name} {protocol}: soma RMSE {soma_rmse}");
    if let Some(d) = dend_rmse {
        assert!(d <= 0.5, "{name} {protocol}: apical trunk RMSE {d}");
    }
    if let Some((e, scale)) = dipole_error {
        assert!(
            e <= 0.01 * scale,
            "{name} {protocol}: dipole RMSE {e} fA m, largest {scale}"
        );
    }
}

#[test]
fn basket_cell_follows_neuron() {
    check("L2_basket", hnn_cells::basket(&HnnCell::default()), "step");
    check(
        "L2_basket",
        hnn_cells::basket(&HnnCell::default()),
        "synaptic",
    );
}

#[test]
fn l2_pyramidal_cell_follows_neuron() {
    check(
        "L2_pyramidal",
        hnn_cells::l2_pyramidal(&HnnCell::default()),
        "step",
    );
    check(
        "L2_pyramidal",
        hnn_cells::l2_pyramidal(&HnnCell::default()),
        "synaptic",
    );
}

#[test]
fn l5_pyramidal_cell_follows_neuron() {
    check(
        "L5_pyramidal",
        hnn_cells::l5_pyramidal(&HnnCell::default()),
        "step",
    );
    check(
        "L5_pyramidal",
        hnn_cells::l5_pyramidal(&HnnCell::default()),
        "synaptic",
    );
}
