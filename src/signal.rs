//! Analysis of simulation output shared by every engine: spike statistics, Welch power spectra,
//! band power and peak frequency.

use realfft::RealFftPlanner;

/// Mean firing rate (Hz) of the cells `cells` given every cell's spike count over `duration_ms`.
pub fn mean_rate_hz(spike_counts: &[u32], cells: std::ops::Range<usize>, duration_ms: f64) -> f64 {
    let n = cells.len();
    if n == 0 || duration_ms <= 0.0 {
        return 0.0;
    }
    let total: u64 = spike_counts[cells].iter().map(|&c| c as u64).sum();
    total as f64 / n as f64 / (duration_ms / 1000.0)
}

/// Spike trains per cell for the cells in `cells`, from time-ordered (time, cell) pairs.
pub fn spike_trains(times_ms: &[f64], ids: &[u32], cells: std::ops::Range<usize>) -> Vec<Vec<f64>> {
    let mut trains = vec![Vec::new(); cells.len()];
    for (&t, &c) in times_ms.iter().zip(ids) {
        let c = c as usize;
        if cells.contains(&c) {
            trains[c - cells.start].push(t);
        }
    }
    trains
}

/// Mean coefficient of variation of inter-spike intervals over cells with at least `min_spikes`
/// spikes (at least 3). `None` when no cell qualifies.
pub fn mean_cv_isi(trains: &[Vec<f64>], min_spikes: usize) -> Option<f64> {
    let mut sum = 0.0;
    let mut n = 0usize;
    for tr in trains.iter().filter(|t| t.len() >= min_spikes.max(3)) {
        let isi: Vec<f64> = tr.windows(2).map(|w| w[1] - w[0]).collect();
        let m = isi.iter().sum::<f64>() / isi.len() as f64;
        let var = isi.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (isi.len() - 1) as f64;
        if m > 0.0 {
            sum += var.sqrt() / m;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// Mean Fano factor (variance / mean of spike counts in windows of `window_ms` over `[0, duration_ms)`)
/// over cells that spiked at all. `None` when fewer than two windows fit or no cell spiked.
pub fn mean_fano(trains: &[Vec<f64>], window_ms: f64, duration_ms: f64) -> Option<f64> {
    let nw = (duration_ms / window_ms).floor() as usize;
    if nw < 2 {
        return None;
    }
    let mut sum = 0.0;
    let mut n = 0usize;
    for tr in trains {
        let mut counts = vec![0.0f64; nw];
        for &t in tr {
            let w = (t / window_ms) as usize;
            if w < nw {
                counts[w] += 1.0;
            }
        }
        let m = counts.iter().sum::<f64>() / nw as f64;
        if m > 0.0 {
            let var = counts.iter().map(|c| (c - m).powi(2)).sum::<f64>() / (nw - 1) as f64;
            sum += var / m;
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

/// Population rate (Hz) in bins of `bin_ms` over `[0, duration_ms)` for `n_cells` cells.
pub fn population_rate_hz(
    times_ms: &[f64],
    ids: &[u32],
    cells: std::ops::Range<usize>,
    bin_ms: f64,
    duration_ms: f64,
) -> Vec<f64> {
    let nb = (duration_ms / bin_ms).ceil() as usize;
    let mut h = vec![0.0; nb];
    for (&t, &c) in times_ms.iter().zip(ids) {
        if cells.contains(&(c as usize)) {
            // Spikes are stamped at step ends; one at exactly duration_ms belongs to the last bin.
            let b = ((t / bin_ms) as usize).min(nb.saturating_sub(1));
            h[b] += 1.0;
        }
    }
    let scale = 1000.0 / bin_ms / cells.len().max(1) as f64;
    h.iter_mut().for_each(|x| *x *= scale);
    h
}

/// Matches model spikes to data spikes one-to-one within `tol_ms` (greedy in time order; both sorted).
/// Returns (matched, unmatched model spikes, unmatched data spikes).
pub fn match_spikes(data: &[f64], model: &[f64], tol_ms: f64) -> (usize, usize, usize) {
    let (mut i, mut j, mut hits) = (0, 0, 0);
    while i < data.len() && j < model.len() {
        let d = model[j] - data[i];
        if d.abs() <= tol_ms {
            hits += 1;
            i += 1;
            j += 1;
        } else if d < 0.0 {
            j += 1;
        } else {
            i += 1;
        }
    }
    (hits, model.len() - hits, data.len() - hits)
}

/// Coincidence factor Gamma (Kistler, Gerstner & van Hemmen 1997) of a model train against a data train
/// over `duration_ms` with precision `delta_ms`: 1 for identical trains, about 0 for a Poisson train of the
/// same rate. `None` when neither train has spikes.
pub fn coincidence_factor(
    data: &[f64],
    model: &[f64],
    delta_ms: f64,
    duration_ms: f64,
) -> Option<f64> {
    if data.is_empty() && model.is_empty() {
        return None;
    }
    let (n_coinc, _, _) = match_spikes(data, model, delta_ms);
    let rate_model = model.len() as f64 / duration_ms;
    let expected = 2.0 * rate_model * delta_ms * data.len() as f64;
    let norm = 1.0 - 2.0 * rate_model * delta_ms;
    Some((n_coinc as f64 - expected) / (0.5 * (data.len() + model.len()) as f64) / norm)
}

/// Pearson correlation of two equally long series (0 when either is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// The mean of the Welch spectra of several traces sampled every `bin_ms` (segments of at most
/// 256 ms, and no longer than the shortest trace).
pub fn mean_welch_psd(traces: &[Vec<f64>], bin_ms: f64) -> Psd {
    let seg = ((256.0 / bin_ms) as usize).min(traces.iter().map(Vec::len).min().unwrap_or(0));
    let mut mean = Psd {
        freqs_hz: Vec::new(),
        power: Vec::new(),
    };
    for v in traces {
        let psd = welch_psd(v, 1000.0 / bin_ms, seg);
        if mean.power.is_empty() {
            mean = psd;
        } else {
            mean.power
                .iter_mut()
                .zip(&psd.power)
                .for_each(|(a, b)| *a += b);
        }
    }
    let n = traces.len().max(1) as f64;
    mean.power.iter_mut().for_each(|p| *p /= n);
    mean
}

/// A one-sided power spectral density.
#[derive(Debug, Clone)]
pub struct Psd {
    pub freqs_hz: Vec<f64>,
    /// Power per Hz (signal units squared per Hz).
    pub power: Vec<f64>,
}

/// Welch's PSD: mean-removed segments of `segment_len` samples overlapping by half, Hann window,
/// one-sided density scaling (so that the integral over frequency equals the variance).
/// Shorter signals use one segment of their full length.
pub fn welch_psd(x: &[f64], fs_hz: f64, segment_len: usize) -> Psd {
    let n = segment_len.min(x.len()).max(2);
    let step = (n / 2).max(1);
    let window: Vec<f64> = (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect();
    let w2: f64 = window.iter().map(|w| w * w).sum();
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(n);
    let mut input = fft.make_input_vec();
    let mut spec = fft.make_output_vec();
    let mut acc = vec![0.0; n / 2 + 1];
    let mut segments = 0usize;
    let mut start = 0;
    while start + n <= x.len() {
        let seg = &x[start..start + n];
        let mean = seg.iter().sum::<f64>() / n as f64;
        for i in 0..n {
            input[i] = (seg[i] - mean) * window[i];
        }
        fft.process(&mut input, &mut spec)
            .expect("buffer sizes match the plan");
        for (a, c) in acc.iter_mut().zip(&spec) {
            *a += c.norm_sqr();
        }
        segments += 1;
        start += step;
    }
    let scale = 1.0 / (fs_hz * w2 * segments.max(1) as f64);
    let last = n / 2;
    let power = acc
        .iter()
        .enumerate()
        .map(|(k, a)| {
            // Double every bin but DC and (for even n) Nyquist to fold in negative frequencies.
            let fold = if k == 0 || (n.is_multiple_of(2) && k == last) {
                1.0
            } else {
                2.0
            };
            a * scale * fold
        })
        .collect();
    let freqs_hz = (0..=last).map(|k| k as f64 * fs_hz / n as f64).collect();
    Psd { freqs_hz, power }
}

impl Psd {
    /// Power integrated over `[lo, hi]` Hz (rectangle rule on the bins inside).
    pub fn band_power(&self, lo: f64, hi: f64) -> f64 {
        let df = self.freqs_hz.get(1).copied().unwrap_or(1.0);
        self.freqs_hz
            .iter()
            .zip(&self.power)
            .filter(|(f, _)| **f >= lo && **f <= hi)
            .map(|(_, p)| p * df)
            .sum()
    }

    /// Fraction of the power in `[lo, hi]` Hz among all power above DC.
    pub fn band_fraction(&self, lo: f64, hi: f64) -> f64 {
        let total = self.band_power(f64::MIN_POSITIVE, f64::INFINITY);
        if total > 0.0 {
            self.band_power(lo, hi) / total
        } else {
            0.0
        }
    }

    /// Frequency of the largest power in `[lo, hi]` Hz.
    pub fn peak_hz(&self, lo: f64, hi: f64) -> Option<f64> {
        self.freqs_hz
            .iter()
            .zip(&self.power)
            .filter(|(f, _)| **f >= lo && **f <= hi)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(f, _)| *f)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn mean_welch_psd_averages_the_traces_spectra() {
        let sine = |f: f64, a: f64| -> Vec<f64> {
            (0..2000)
                .map(|k| a * (2.0 * std::f64::consts::PI * f * k as f64 * 5e-4).sin())
                .collect()
        };
        let (x, y) = (sine(20.0, 1.0), sine(40.0, 2.0));
        let mean = mean_welch_psd(&[x.clone(), y.clone()], 0.5);
        let (px, py) = (welch_psd(&x, 2000.0, 512), welch_psd(&y, 2000.0, 512));
        assert_eq!(mean.freqs_hz, px.freqs_hz);
        for ((m, a), b) in mean.power.iter().zip(&px.power).zip(&py.power) {
            assert!((m - 0.5 * (a + b)).abs() <= 1e-12 * (1.0 + a + b));
        }
    }
    use super::*;

    #[test]
    fn psd_of_a_sine_peaks_at_its_frequency_and_integrates_to_its_variance() {
        let fs = 1000.0;
        let x: Vec<f64> = (0..8000)
            .map(|i| 3.0 * (2.0 * std::f64::consts::PI * 40.0 * i as f64 / fs).sin())
            .collect();
        let psd = welch_psd(&x, fs, 1000);
        assert_eq!(psd.peak_hz(1.0, 500.0), Some(40.0));
        // Variance of A sin is A^2 / 2 = 4.5.
        let total = psd.band_power(0.0, 500.0);
        assert!((total - 4.5).abs() / 4.5 < 0.01, "total power {total}");
        assert!(psd.band_fraction(35.0, 45.0) > 0.99);
    }

    #[test]
    fn white_noise_psd_is_flat_at_variance_over_nyquist() {
        use rand::Rng;
        let mut rng = crate::seed::rng_for(7, &[1]);
        let fs = 1000.0;
        let x: Vec<f64> = (0..200_000).map(|_| rng.random::<f64>() - 0.5).collect();
        let psd = welch_psd(&x, fs, 512);
        // Uniform(-0.5, 0.5) has variance 1/12; the one-sided density is var / (fs / 2).
        let expected = (1.0 / 12.0) / (fs / 2.0);
        let mid: Vec<f64> = psd.power[10..200].to_vec();
        let mean = mid.iter().sum::<f64>() / mid.len() as f64;
        assert!(
            (mean - expected).abs() / expected < 0.03,
            "{mean} vs {expected}"
        );
    }

    #[test]
    fn coincidence_factor_is_one_for_identical_and_near_zero_for_independent_trains() {
        use rand::Rng;
        let mut rng = crate::seed::rng_for(11, &[3]);
        let mut poisson = |rate_per_ms: f64| {
            let mut t = 0.0;
            let mut v = Vec::new();
            loop {
                t += -(1.0 - rng.random::<f64>()).ln() / rate_per_ms;
                if t >= 100_000.0 {
                    return v;
                }
                v.push(t);
            }
        };
        let a = poisson(0.02);
        let b = poisson(0.02);
        assert!((coincidence_factor(&a, &a, 2.0, 100_000.0).unwrap() - 1.0).abs() < 1e-12);
        let g = coincidence_factor(&a, &b, 2.0, 100_000.0).unwrap();
        assert!(g.abs() < 0.05, "independent trains: {g}");
        // Shifting by 1 ms stays coincident at 2 ms precision, by 3 ms does not.
        let shifted: Vec<f64> = a.iter().map(|t| t + 1.0).collect();
        assert_eq!(match_spikes(&a, &shifted, 2.0), (a.len(), 0, 0));
        let far: Vec<f64> = a.iter().map(|t| t + 3.0).collect();
        let (hits, _, _) = match_spikes(&a, &far, 2.0);
        assert!(hits < a.len() / 10);
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cv_of_regular_train_is_zero_and_of_poisson_is_one() {
        let regular: Vec<f64> = (0..100).map(|i| i as f64 * 10.0).collect();
        assert!(mean_cv_isi(&[regular], 3).unwrap() < 1e-12);
        use rand::Rng;
        let mut rng = crate::seed::rng_for(3, &[2]);
        let mut t = 0.0;
        let poisson: Vec<f64> = (0..20_000)
            .map(|_| {
                t += -(1.0 - rng.random::<f64>()).ln() * 10.0;
                t
            })
            .collect();
        let cv = mean_cv_isi(std::slice::from_ref(&poisson), 3).unwrap();
        assert!((cv - 1.0).abs() < 0.03, "poisson cv {cv}");
        let fano = mean_fano(&[poisson], 100.0, t).unwrap();
        assert!((fano - 1.0).abs() < 0.1, "poisson fano {fano}");
    }
}
