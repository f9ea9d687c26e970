//! hnn-core's cells inside the exact engine's network: hnn-core's cell positions and
//! distance-dependent connections, and an L5 pyramidal cell driven through the kernel (bias drive,
//! threshold-crossing spikes, dipole signal) against NEURON's reference run of the same protocol.

use surge::exact;
use surge::spec::{Connectome, Layout, NetworkSpec};

/// hnn-core 0.6.1's `net.pos_dict['L2_basket'][:6]` (x, y) on its 10 x 10 grid, and its count.
#[test]
fn basket_positions_are_hnn_cores() {
    let p = Layout::HnnBasket([10, 10]).positions();
    assert_eq!(p.len(), 35);
    let want = [
        [0.0, 0.0],
        [3.0, 0.0],
        [6.0, 0.0],
        [9.0, 0.0],
        [1.0, 1.0],
        [4.0, 1.0],
    ];
    assert_eq!(&p[..6], &want);
    let g = Layout::Grid([10, 10]).positions();
    assert_eq!((g[0], g[1], g[10]), ([0.0, 0.0], [0.0, 1.0], [1.0, 0.0]));
}

fn spec(text: &str) -> NetworkSpec {
    NetworkSpec::from_toml_str(text, "test").unwrap()
}

const CELL: &str = r#"
name = "l5"
[simulation]
dt_ms = 0.025
duration_ms = 300.0
seed = 1
[[populations]]
name = "L5"
size = 3
layout = { grid = [1, 3] }
[populations.neuron]
model = "hnn_l5_pyramidal"
"#;

/// Each synapse of a gaussian connection has hnn-core's weight and delay for its distance; pairs whose
/// delay the engine cannot hold are left out.
#[test]
fn gaussian_connections_follow_distance() {
    let s = spec(&format!(
        "{CELL}[[connections]]\npre = \"L5\"\npost = \"L5\"\nchannel = \"proximal_ampa\"\n\
         rule = \"gaussian\"\nlamtha = 1.5\nweight = 2.0\ndelay_ms = 1.0\n"
    ));
    let conn = Connectome::build(&s);
    // Cells at y = 0, 1, 2: distance 1 (four ordered pairs) and 2 (two); no autapses.
    let mut seen = Vec::new();
    for pre in 0..3usize {
        for seg in &conn.segments[conn.seg_ptr[pre]..conn.seg_ptr[pre + 1]] {
            for k in seg.start..seg.end {
                let post = conn.targets[k] as usize;
                let d2 = (pre as f64 - post as f64).powi(2);
                let f = (-d2 / 2.25f64).exp();
                assert!((conn.weights[k] as f64 - 2.0 * f).abs() < 1e-6);
                assert_eq!(seg.delay_steps, (1.0 / f / 0.025f64).round() as u16);
                seen.push((pre, post));
            }
        }
    }
    seen.sort();
    assert_eq!(seen, [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]);
    // With a space constant of 0.3 the distance-2 pairs would need a delay beyond 65535 / 2 steps.
    let far = spec(&format!(
        "{CELL}[[connections]]\npre = \"L5\"\npost = \"L5\"\nchannel = \"proximal_ampa\"\n\
         rule = \"gaussian\"\nlamtha = 0.45\nweight = 2.0\ndelay_ms = 1.0\n"
    ));
    assert_eq!(Connectome::build(&far).targets.len(), 4);
}

/// The kernel runs hnn-core's L5 cell as NEURON does: a 250 pA somatic step from 50 to 250 ms (the
/// `step` protocol of tests/reference/hnn_cells.h5) gives NEURON's spikes within 0.5 ms in every
/// cell of the population, and the dipole signal is the cells' summed dipole (3 x one cell's).
#[test]
fn l5_cell_in_the_network_fires_at_neurons_times() {
    let s = spec(&format!(
        "{CELL}[[drives]]\nname = \"step\"\nkind = \"bias\"\ntargets = [\"L5\"]\namplitude = 250.0\n\
         start_ms = 50.0\nstop_ms = 250.0\n[recording]\nsignals = [{{ name = \"d\", kind = \
         \"dipole\", populations = [\"L5\"] }}]\n"
    ));
    let conn = Connectome::build(&s);
    let res = exact::simulate(&s, &conn, &mut |_, _| {}).unwrap();
    let f = hdf5::File::open("tests/reference/hnn_cells.h5").unwrap();
    let want: Vec<f64> = f
        .dataset("L5_pyramidal/step/spike_times_ms")
        .unwrap()
        .read_raw()
        .unwrap();
    for cell in 0..3u32 {
        let got: Vec<f64> = res
            .spike_times_ms
            .iter()
            .zip(&res.spike_cells)
            .filter(|(_, c)| **c == cell)
            .map(|(t, _)| *t)
            .collect();
        println!("cell {cell}: {got:?} vs NEURON {want:?}");
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 0.5, "{a} vs {b}");
        }
    }
    // Three identical cells: three times one cell's dipole (fA m -> nA m), read from NEURON's.
    let dp: Vec<f32> = f
        .dataset("L5_pyramidal/step/dipole_fam")
        .unwrap()
        .read_raw()
        .unwrap();
    let d = &res.signals[0].values;
    // Step n ends at (n + 1) dt; the reference is sampled every 0.1 ms from t = 0.
    let at = |t_ms: f64| d[(t_ms / 0.025).round() as usize - 1];
    for t in [20.0, 40.0, 45.0, 300.0 - 0.1] {
        let want = 3.0 * dp[(t / 0.1f64).round() as usize] as f64 * 1e-6;
        assert!(
            (at(t) - want).abs() <= 0.01 * want.abs().max(1e-9),
            "t {t}: {} vs {want}",
            at(t)
        );
    }
}
