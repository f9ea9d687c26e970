//! RLS (FORCE) training reaches the published convergence bars.

use rand::Rng;
use surge::rls::force::{RateRnnConfig, RlsLearner, pearson, train_rate_rnn};

#[test]
fn rls_solves_a_linear_regression_exactly() {
    // With P = I / alpha and alpha -> 0, RLS is recursive least squares: it recovers w from noiseless data.
    let truth = [0.5, -1.0, 2.0, 0.25];
    let mut w = vec![0.0; 4];
    let mut l = RlsLearner::new(4, 1e-6, &[]);
    let mut last = f64::INFINITY;
    let mut rng = surge::seed::rng_for(5, &[0]);
    for _ in 0..40 {
        let r: Vec<f64> = (0..4).map(|_| rng.random::<f64>() - 0.5).collect();
        let y: f64 = truth.iter().zip(&r).map(|(a, b)| a * b).sum();
        last = l.update(&mut w, &r, y);
    }
    assert!(last.abs() < 1e-6, "prediction error {last}");
    for (a, b) in w.iter().zip(&truth) {
        assert!((a - b).abs() < 1e-6, "{w:?}");
    }
    // r of [1, 2, 3] and [2, 4, 6.5] is 4.5 / sqrt(2 * 61/6).
    let expected = 4.5 / (2.0f64 * 61.0 / 6.0).sqrt();
    assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.5]) - expected).abs() < 1e-12);
    assert!((pearson(&[1.0, 2.0, 3.0], &[-1.0, -3.0, -5.0]) + 1.0).abs() < 1e-12);
}

#[test]
fn part1_rate_network_learns_phase_shifted_sines() {
    let cfg = RateRnnConfig::default();
    let res = train_rate_rnn(&cfg, &mut |_, _| {});
    eprintln!(
        "mean r before {:.3}, after {} loops {:.4}",
        res.mean_r_before, cfg.loops, res.mean_test_r
    );
    assert!(
        res.mean_r_before < 0.5,
        "untrained network already follows the targets: {}",
        res.mean_r_before
    );
    assert!(
        res.mean_test_r >= 0.99,
        "test-trial mean r {}",
        res.mean_test_r
    );
}

#[test]
fn part2_spiking_network_learns_slow_sines() {
    let cfg = surge::rls::force::SpikingRlsConfig::default();
    let res = surge::rls::force::train_spiking(&cfg, &mut |_, _| {});
    eprintln!(
        "part 2: r before {:.3}, per loop {:?}, test {:.4}; rate {:.1} -> {:.1} Hz",
        res.mean_r_before,
        res.train_r
            .iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>(),
        res.mean_test_r,
        res.rate_before_hz,
        res.rate_after_hz
    );
    assert!(
        res.mean_test_r >= 0.95,
        "test-trial mean r {}",
        res.mean_test_r
    );
}

#[test]
fn textbook_force_learns_a_sum_of_sines() {
    let mut net = surge::rls::force::Force::new(surge::rls::force::ForceConfig::default());
    let (z0, f0) = net.run(2000.0, false);
    let before = pearson(&z0, &f0);
    let mut train_r = 0.0;
    for _ in 0..30 {
        let (zt, ft) = net.run(1000.0, true);
        train_r = pearson(&zt, &ft);
    }
    let (z, f) = net.run(2000.0, false);
    let r = pearson(&z, &f);
    eprintln!(
        "train r {train_r:.4}, first 500 ms of test {:.4}",
        pearson(&z[..500], &f[..500])
    );
    let rmse =
        (z.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / z.len() as f64).sqrt();
    eprintln!("FORCE: r before {before:.3}, after 30 s of training {r:.4} (RMSE {rmse:.3})");
    assert!(r > 0.95, "test r {r}");
}
