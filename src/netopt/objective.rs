//! Objectives on the population signal, differentiable inside burn: a one-sided periodogram with a Hann
//! window computed as a DFT matrix product (the same estimator as `signal::welch_psd` with one segment),
//! band fraction and band power, a penalty on log-gains and bounds on population rates.

use burn::tensor::{Device, Tensor, TensorData};

/// What to optimise, as written in the `[objective]` table of an optimisation experiment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// Target band (Hz).
    pub band_hz: (f64, f64),
    /// `band_fraction` (power in the band over all power above DC; cannot win by getting louder) or
    /// `log_band_power`.
    pub kind: String,
    /// Weight of `sum(log_gain^2)`.
    pub l2: f64,
    /// Every population's rate (Hz) should stay inside these bounds...
    pub rate_bounds_hz: (f64, f64),
    /// ...with this weight on the squared log-distance outside them.
    pub rate_weight: f64,
    /// Target for the signal's dominant frequency, if any: the power-weighted mean frequency
    /// (spectral centroid) within `peak_range_hz` is pulled towards it...
    pub target_peak_hz: Option<f64>,
    /// ...with this weight on `ln(centroid / target)^2`.
    pub peak_weight: f64,
    pub peak_range_hz: (f64, f64),
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig {
            band_hz: (15.0, 60.0),
            kind: "band_fraction".into(),
            l2: 0.01,
            rate_bounds_hz: (0.5, 50.0),
            rate_weight: 1.0,
            target_peak_hz: None,
            peak_weight: 1.0,
            peak_range_hz: (2.0, 100.0),
        }
    }
}

/// DFT of a window of `len` samples at `fs_hz`, restricted to the one-sided frequencies.
pub struct Spectrum {
    pub freqs_hz: Vec<f64>,
    cos: Tensor<2>,
    sin: Tensor<2>,
    window: Tensor<1>,
    /// One-sided folding (2 except DC and Nyquist) over `fs * sum(window^2)`: density scaling.
    scale: Tensor<2>,
    len: usize,
}

impl Spectrum {
    pub fn new(len: usize, fs_hz: f64, device: &Device) -> Self {
        let nf = len / 2 + 1;
        let mut c = vec![0f32; len * nf];
        let mut s = vec![0f32; len * nf];
        for t in 0..len {
            for k in 0..nf {
                let ph = std::f64::consts::TAU * (t * k % len) as f64 / len as f64;
                c[t * nf + k] = ph.cos() as f32;
                s[t * nf + k] = ph.sin() as f32;
            }
        }
        let w: Vec<f64> = (0..len)
            .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / len as f64).cos())
            .collect();
        let w2: f64 = w.iter().map(|x| x * x).sum();
        let scale: Vec<f32> = (0..nf)
            .map(|k| {
                let fold = if k == 0 || (len.is_multiple_of(2) && k == len / 2) {
                    1.0
                } else {
                    2.0
                };
                (fold / (fs_hz * w2)) as f32
            })
            .collect();
        Spectrum {
            freqs_hz: (0..nf).map(|k| k as f64 * fs_hz / len as f64).collect(),
            cos: Tensor::from_data(TensorData::new(c, [len, nf]), device),
            sin: Tensor::from_data(TensorData::new(s, [len, nf]), device),
            window: Tensor::from_data(
                TensorData::new(w.iter().map(|&x| x as f32).collect::<Vec<_>>(), [len]),
                device,
            ),
            scale: Tensor::from_data(TensorData::new(scale, [1, nf]), device),
            len,
        }
    }

    /// Power spectral density `[1, F]` of `x` (`[len]`), mean removed, Hann window.
    pub fn psd(&self, x: Tensor<1>) -> Tensor<2> {
        let m = x.clone().mean();
        let xw = ((x - m) * self.window.clone()).reshape([1, self.len]);
        let re = xw.clone().matmul(self.cos.clone());
        let im = xw.matmul(self.sin.clone());
        (re.clone() * re + im.clone() * im) * self.scale.clone()
    }

    /// 0/1 mask `[1, F]` of the bins in `[lo, hi]` Hz (DC never included).
    pub fn mask(&self, lo: f64, hi: f64, device: &Device) -> Tensor<2> {
        let m: Vec<f32> = self
            .freqs_hz
            .iter()
            .enumerate()
            .map(|(k, &f)| {
                if k > 0 && f >= lo && f <= hi {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let nf = m.len();
        Tensor::from_data(TensorData::new(m, [1, nf]), device)
    }

    /// Fraction of the power above DC that lies in `[lo, hi]` Hz.
    pub fn band_fraction(&self, psd: Tensor<2>, lo: f64, hi: f64, device: &Device) -> Tensor<1> {
        let band = (psd.clone() * self.mask(lo, hi, device)).sum();
        let total = (psd * self.mask(f64::MIN_POSITIVE, f64::INFINITY, device)).sum();
        band / total
    }

    /// Power in `[lo, hi]` Hz (rectangle rule, as `Psd::band_power`).
    pub fn band_power(&self, psd: Tensor<2>, lo: f64, hi: f64, device: &Device) -> Tensor<1> {
        let df = self.freqs_hz.get(1).copied().unwrap_or(1.0);
        (psd * self.mask(lo, hi, device)).sum().mul_scalar(df)
    }
}

/// The loss to minimise and its parts, for one window.
pub struct Loss {
    pub total: Tensor<1>,
    pub band_score: f64,
    pub rate_penalty: f64,
    pub l2_penalty: f64,
    /// `ln(centroid / target)^2` (0 without a target).
    pub peak_penalty: f64,
}

/// `-score(band) + rate_weight * sum_p outside(rate_p)^2 + l2 * |log_gain|^2`, where `outside` is the
/// log-distance of a rate outside the bounds.
pub fn loss(
    cfg: &ObjectiveConfig,
    spectrum: &Spectrum,
    signal: Tensor<1>,
    rates_hz: &[Tensor<1>],
    log_gain: Tensor<1>,
    device: &Device,
) -> Loss {
    let psd = spectrum.psd(signal);
    let peak_pen = cfg.target_peak_hz.map(|target| {
        let (lo, hi) = cfg.peak_range_hz;
        let m = spectrum.mask(lo, hi, device);
        let f: Vec<f32> = spectrum.freqs_hz.iter().map(|&f| f as f32).collect();
        let nf = f.len();
        let f = Tensor::<2>::from_data(TensorData::new(f, [1, nf]), device);
        let inside = psd.clone() * m;
        let centroid = (inside.clone() * f).sum() / inside.sum().add_scalar(1e-30);
        let d = centroid.add_scalar(1e-9).log().sub_scalar(target.ln());
        d.clone() * d
    });
    let score = if cfg.kind == "log_band_power" {
        spectrum
            .band_power(psd, cfg.band_hz.0, cfg.band_hz.1, device)
            .add_scalar(1e-12)
            .log()
    } else {
        spectrum.band_fraction(psd, cfg.band_hz.0, cfg.band_hz.1, device)
    };
    let (lo, hi) = (cfg.rate_bounds_hz.0.ln(), cfg.rate_bounds_hz.1.ln());
    let mut rate_pen: Option<Tensor<1>> = None;
    for r in rates_hz {
        let lr = r.clone().add_scalar(1e-3).log();
        let below = lr.clone().neg().add_scalar(lo).clamp_min(0.0);
        let above = lr.sub_scalar(hi).clamp_min(0.0);
        let p = below.clone() * below + above.clone() * above;
        rate_pen = Some(match rate_pen {
            Some(a) => a + p,
            None => p,
        });
    }
    let rate_pen = rate_pen.unwrap_or_else(|| Tensor::zeros([1], device));
    let l2 = (log_gain.clone() * log_gain).sum();
    let scalar = |t: &Tensor<1>| -> f64 {
        t.clone().into_data().try_to_vec::<f32>().expect("f32")[0] as f64
    };
    let band_score = scalar(&score);
    let rate_penalty = scalar(&rate_pen);
    let l2_penalty = scalar(&l2);
    let mut total = score.neg() + rate_pen.mul_scalar(cfg.rate_weight) + l2.mul_scalar(cfg.l2);
    let mut peak_penalty = 0.0;
    if let Some(p) = peak_pen {
        peak_penalty = scalar(&p);
        total = total + p.mul_scalar(cfg.peak_weight);
    }
    Loss {
        total,
        band_score,
        rate_penalty,
        l2_penalty,
        peak_penalty,
    }
}

/// [`Spectrum`] on plain `f64` buffers: the same periodogram (Hann window, mean removed, density
/// scaling), summed in a fixed order. The optimiser's trajectory runs through it, so it gives the same
/// numbers on every x86-64 CPU, where burn's reductions pick SIMD widths by CPU.
pub struct PlainSpectrum {
    pub freqs_hz: Vec<f64>,
    /// `[F, len]`, row k the DFT's cosines (sines) at frequency k.
    cos: Vec<f64>,
    sin: Vec<f64>,
    window: Vec<f64>,
    scale: Vec<f64>,
    len: usize,
}

impl PlainSpectrum {
    pub fn new(len: usize, fs_hz: f64) -> Self {
        let nf = len / 2 + 1;
        let mut cos = vec![0f64; len * nf];
        let mut sin = vec![0f64; len * nf];
        for k in 0..nf {
            for t in 0..len {
                let ph = std::f64::consts::TAU * (t * k % len) as f64 / len as f64;
                cos[k * len + t] = ph.cos();
                sin[k * len + t] = ph.sin();
            }
        }
        let window: Vec<f64> = (0..len)
            .map(|i| 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / len as f64).cos())
            .collect();
        let w2: f64 = window.iter().map(|x| x * x).sum();
        let scale = (0..nf)
            .map(|k| {
                let fold = if k == 0 || (len.is_multiple_of(2) && k == len / 2) {
                    1.0
                } else {
                    2.0
                };
                fold / (fs_hz * w2)
            })
            .collect();
        PlainSpectrum {
            freqs_hz: (0..nf).map(|k| k as f64 * fs_hz / len as f64).collect(),
            cos,
            sin,
            window,
            scale,
            len,
        }
    }

    /// The DFT (re, im) per frequency of the windowed, mean-removed signal.
    fn transform(&self, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = self.len;
        let m = x.iter().sum::<f64>() / n as f64;
        let y: Vec<f64> = x
            .iter()
            .zip(&self.window)
            .map(|(&v, w)| (v - m) * w)
            .collect();
        let nf = self.freqs_hz.len();
        let mut re = vec![0f64; nf];
        let mut im = vec![0f64; nf];
        for k in 0..nf {
            let (c, s) = (&self.cos[k * n..(k + 1) * n], &self.sin[k * n..(k + 1) * n]);
            re[k] = y.iter().zip(c).map(|(a, b)| a * b).sum();
            im[k] = y.iter().zip(s).map(|(a, b)| a * b).sum();
        }
        (re, im)
    }

    /// The periodogram from [`PlainSpectrum::transform`]'s output.
    fn power(&self, re: &[f64], im: &[f64]) -> Vec<f64> {
        (0..re.len())
            .map(|k| (re[k] * re[k] + im[k] * im[k]) * self.scale[k])
            .collect()
    }

    /// Back through the periodogram: `d_power` to the gradient with respect to the signal, added
    /// into `d_x` (through the DFT, the window and the mean removal).
    fn backward(&self, re: &[f64], im: &[f64], d_power: &[f64], d_x: &mut [f64]) {
        let n = self.len;
        let mut d_y = vec![0f64; n];
        for k in 0..re.len() {
            let (a, b) = (
                2.0 * d_power[k] * self.scale[k] * re[k],
                2.0 * d_power[k] * self.scale[k] * im[k],
            );
            if a == 0.0 && b == 0.0 {
                continue;
            }
            let (c, s) = (&self.cos[k * n..(k + 1) * n], &self.sin[k * n..(k + 1) * n]);
            for t in 0..n {
                d_y[t] += a * c[t] + b * s[t];
            }
        }
        for (d, w) in d_y.iter_mut().zip(&self.window) {
            *d *= w;
        }
        let mean_d = d_y.iter().sum::<f64>() / n as f64;
        for (dx, d) in d_x.iter_mut().zip(&d_y) {
            *dx += d - mean_d;
        }
    }
}

/// [`loss`] in `f64` with its gradient with respect to the signal, the rates and the log-gains.
pub struct PlainLoss {
    pub total: f64,
    pub band_score: f64,
    pub rate_penalty: f64,
    pub l2_penalty: f64,
    pub peak_penalty: f64,
    /// The spectrum of the signal.
    pub power: Vec<f64>,
    pub d_signal: Vec<f64>,
    pub d_rates: Vec<f64>,
    pub d_log_gain: Vec<f64>,
}

/// The spectral terms of the loss (band score, peak penalty) and the loss's gradient with respect
/// to each frequency's power.
fn spectral_terms(cfg: &ObjectiveConfig, f: &[f64], power: &[f64]) -> (f64, f64, Vec<f64>) {
    let nf = power.len();
    let in_range = |k: usize, lo: f64, hi: f64| k > 0 && f[k] >= lo && f[k] <= hi;
    let (blo, bhi) = cfg.band_hz;
    let mut d_power = vec![0f64; nf];
    let band: f64 = (0..nf)
        .filter(|&k| in_range(k, blo, bhi))
        .map(|k| power[k])
        .sum();
    let band_score = if cfg.kind == "log_band_power" {
        let df = f.get(1).copied().unwrap_or(1.0);
        let bp = band * df + 1e-12;
        for (k, d) in d_power.iter_mut().enumerate() {
            if in_range(k, blo, bhi) {
                *d -= df / bp;
            }
        }
        bp.ln()
    } else {
        let total: f64 = (1..nf).map(|k| power[k]).sum();
        let frac = band / total;
        for (k, d) in d_power.iter_mut().enumerate().skip(1) {
            let inside = if in_range(k, blo, bhi) { 1.0 } else { 0.0 };
            *d -= (inside - frac) / total;
        }
        frac
    };
    let mut peak_penalty = 0.0;
    if let Some(target) = cfg.target_peak_hz {
        let (lo, hi) = cfg.peak_range_hz;
        let (mut num, mut den) = (0.0, 0.0);
        for k in (0..nf).filter(|&k| in_range(k, lo, hi)) {
            num += f[k] * power[k];
            den += power[k];
        }
        let c = num / (den + 1e-30);
        let d = (c + 1e-9).ln() - target.ln();
        peak_penalty = d * d;
        let dc = cfg.peak_weight * 2.0 * d / (c + 1e-9);
        for k in (0..nf).filter(|&k| in_range(k, lo, hi)) {
            d_power[k] += dc * (f[k] - c) / (den + 1e-30);
        }
    }
    (band_score, peak_penalty, d_power)
}

/// The rest of the loss: rate bounds and the L2 penalty on log-gains, with their gradients.
fn finish(
    cfg: &ObjectiveConfig,
    (band_score, peak_penalty): (f64, f64),
    power: Vec<f64>,
    d_signal: Vec<f64>,
    rates_hz: &[f64],
    log_gain: &[f32],
) -> PlainLoss {
    let (lo, hi) = (cfg.rate_bounds_hz.0.ln(), cfg.rate_bounds_hz.1.ln());
    let mut rate_penalty = 0.0;
    let d_rates = rates_hz
        .iter()
        .map(|&r| {
            let lr = (r + 1e-3).ln();
            let (below, above) = ((lo - lr).max(0.0), (lr - hi).max(0.0));
            rate_penalty += below * below + above * above;
            cfg.rate_weight * 2.0 * (above - below) / (r + 1e-3)
        })
        .collect();
    let l2_penalty: f64 = log_gain.iter().map(|&g| (g as f64).powi(2)).sum();
    let d_log_gain = log_gain.iter().map(|&g| 2.0 * cfg.l2 * g as f64).collect();
    PlainLoss {
        total: -band_score
            + cfg.rate_weight * rate_penalty
            + cfg.l2 * l2_penalty
            + cfg.peak_weight * peak_penalty,
        band_score,
        rate_penalty,
        l2_penalty,
        peak_penalty,
        power,
        d_signal,
        d_rates,
        d_log_gain,
    }
}

/// [`loss`] on plain numbers (see [`PlainSpectrum`]), with its gradient written out.
pub fn loss_plain(
    cfg: &ObjectiveConfig,
    spectrum: &PlainSpectrum,
    signal: &[f32],
    rates_hz: &[f64],
    log_gain: &[f32],
) -> PlainLoss {
    let x: Vec<f64> = signal.iter().map(|&v| v as f64).collect();
    let (re, im) = spectrum.transform(&x);
    let power = spectrum.power(&re, &im);
    let (score, peak, d_power) = spectral_terms(cfg, &spectrum.freqs_hz, &power);
    let mut d_signal = vec![0f64; x.len()];
    spectrum.backward(&re, &im, &d_power, &mut d_signal);
    finish(cfg, (score, peak), power, d_signal, rates_hz, log_gain)
}

/// The loss of the exact engine's scoring ([`crate::signal::welch_psd`]: Welch segments of
/// `spectrum`'s length at half-length steps, averaged) on plain numbers, with its gradient.
pub fn loss_welch(
    cfg: &ObjectiveConfig,
    spectrum: &PlainSpectrum,
    signal: &[f64],
    rates_hz: &[f64],
    log_gain: &[f32],
) -> PlainLoss {
    let n = spectrum.len.min(signal.len());
    let step = (n / 2).max(1);
    let starts: Vec<usize> = (0..)
        .map(|k| k * step)
        .take_while(|s| s + n <= signal.len())
        .collect();
    let parts: Vec<(Vec<f64>, Vec<f64>)> = starts
        .iter()
        .map(|&s| spectrum.transform(&signal[s..s + n]))
        .collect();
    let segments = parts.len().max(1) as f64;
    let mut power = vec![0f64; spectrum.freqs_hz.len()];
    for (re, im) in &parts {
        for (p, q) in power.iter_mut().zip(spectrum.power(re, im)) {
            *p += q;
        }
    }
    power.iter_mut().for_each(|p| *p /= segments);
    let (score, peak, mut d_power) = spectral_terms(cfg, &spectrum.freqs_hz, &power);
    d_power.iter_mut().for_each(|d| *d /= segments);
    let mut d_signal = vec![0f64; signal.len()];
    for (&s, (re, im)) in starts.iter().zip(&parts) {
        spectrum.backward(re, im, &d_power, &mut d_signal[s..s + n]);
    }
    finish(cfg, (score, peak), power, d_signal, rates_hz, log_gain)
}

/// The peak term of [`loss`] on a plain spectrum (`ln(centroid / target)^2`, 0 without a target):
/// the same definition, for the exact engine (a test holds the two together).
pub fn peak_penalty(cfg: &ObjectiveConfig, freqs_hz: &[f64], power: &[f64]) -> f64 {
    let Some(target) = cfg.target_peak_hz else {
        return 0.0;
    };
    let (lo, hi) = cfg.peak_range_hz;
    let (mut num, mut den) = (0.0, 0.0);
    for (k, (&f, &p)) in freqs_hz.iter().zip(power).enumerate() {
        if k > 0 && f >= lo && f <= hi {
            num += f * p;
            den += p;
        }
    }
    let c = num / (den + 1e-30);
    ((c + 1e-9).ln() - target.ln()).powi(2)
}

/// The penalty terms of [`loss`] on plain numbers, for an engine without tensors (the exact engine
/// scored by a gradient-free search): `(sum_p outside(rate_p)^2, |log_gain|^2)`, unweighted, with the
/// same definitions as [`loss`] (a test holds the two together).
pub fn penalties(cfg: &ObjectiveConfig, rates_hz: &[f64], log_gains: &[f32]) -> (f64, f64) {
    let (lo, hi) = (cfg.rate_bounds_hz.0.ln(), cfg.rate_bounds_hz.1.ln());
    let rate: f64 = rates_hz
        .iter()
        .map(|&r| {
            let lr = (r + 1e-3).ln();
            (lo - lr).max(0.0).powi(2) + (lr - hi).max(0.0).powi(2)
        })
        .sum();
    let l2 = log_gains.iter().map(|&g| (g as f64).powi(2)).sum();
    (rate, l2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_penalties_equal_the_differentiable_ones() {
        let device = Device::flex();
        let cfg = ObjectiveConfig::default();
        let spectrum = Spectrum::new(64, 1000.0, &device);
        let signal: Vec<f32> = (0..64).map(|i| (i as f32 * 0.3).sin()).collect();
        // Below, inside and above the default 0.5-50 Hz bounds.
        let rates = [0.1f64, 7.0, 120.0];
        let gains = [0.5f32, -1.5, 0.0, 2.0];
        let l = loss(
            &cfg,
            &spectrum,
            Tensor::from_data(TensorData::new(signal, [64]), &device),
            &rates
                .iter()
                .map(|&r| Tensor::from_data(TensorData::new(vec![r as f32], [1]), &device))
                .collect::<Vec<_>>(),
            Tensor::from_data(TensorData::new(gains.to_vec(), [4]), &device),
            &device,
        );
        let (rate, l2) = penalties(&cfg, &rates, &gains);
        assert!(rate > 1.0, "the bounds are crossed: {rate}");
        assert!(
            (rate - l.rate_penalty).abs() < 1e-5 * rate,
            "{rate} vs {}",
            l.rate_penalty
        );
        assert!(
            (l2 - l.l2_penalty).abs() < 1e-6 * l2,
            "{l2} vs {}",
            l.l2_penalty
        );
    }

    #[test]
    fn plain_peak_penalty_equals_the_differentiable_one() {
        let device = Device::flex();
        let cfg = ObjectiveConfig {
            target_peak_hz: Some(40.0),
            peak_range_hz: (2.0, 200.0),
            ..ObjectiveConfig::default()
        };
        let spectrum = Spectrum::new(200, 1000.0, &device);
        // 10 Hz and 60 Hz components: the centroid lies between, far from 40 Hz in neither direction.
        let signal: Vec<f32> = (0..200)
            .map(|i| {
                let t = i as f32 / 1000.0;
                (std::f32::consts::TAU * 10.0 * t).sin()
                    + 0.5 * (std::f32::consts::TAU * 60.0 * t).sin()
            })
            .collect();
        let x = Tensor::from_data(TensorData::new(signal, [200]), &device);
        let l = loss(
            &cfg,
            &spectrum,
            x.clone(),
            &[],
            Tensor::zeros([1], &device),
            &device,
        );
        let power: Vec<f64> = spectrum
            .psd(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        let plain = peak_penalty(&cfg, &spectrum.freqs_hz, &power);
        // Power 1 : 0.25 at 10 and 60 Hz: centroid 20 Hz, so ln(20 / 40)^2 = 0.48.
        assert!((plain - 0.48).abs() < 0.05, "{plain}");
        assert!(
            (plain - l.peak_penalty).abs() < 1e-4 * plain,
            "{plain} vs {}",
            l.peak_penalty
        );
    }

    /// The plain objective equals the differentiable one in value and gradient (signal, rates and
    /// log-gains), for both score kinds and with a peak target.
    #[test]
    fn plain_loss_equals_the_differentiable_one() {
        let device = Device::flex().autodiff();
        let n = 240;
        let signal: Vec<f32> = (0..n)
            .map(|i| {
                let t = i as f32 / 2000.0;
                (std::f32::consts::TAU * 12.0 * t).sin()
                    + 0.4 * (std::f32::consts::TAU * 30.0 * t).sin()
                    + 0.1 * ((i * 7919 % 13) as f32 - 6.0)
            })
            .collect();
        let rates = [0.2f64, 7.0, 80.0];
        let gains = [0.5f32, -1.5, 0.0];
        for (kind, peak) in [("band_fraction", None), ("log_band_power", Some(25.0))] {
            let cfg = ObjectiveConfig {
                kind: kind.into(),
                target_peak_hz: peak,
                ..ObjectiveConfig::default()
            };
            let spectrum = Spectrum::new(n, 2000.0, &device);
            let x = Tensor::<1>::from_data(TensorData::new(signal.clone(), [n]), &device)
                .require_grad();
            let r: Vec<Tensor<1>> = rates
                .iter()
                .map(|&v| {
                    Tensor::<1>::from_data(TensorData::new(vec![v as f32], [1]), &device)
                        .require_grad()
                })
                .collect();
            let g = Tensor::<1>::from_data(TensorData::new(gains.to_vec(), [3]), &device)
                .require_grad();
            let l = loss(&cfg, &spectrum, x.clone(), &r, g.clone(), &device);
            let total = l.total.clone().into_data().try_to_vec::<f32>().unwrap()[0] as f64;
            let grads = l.total.backward();
            let vals = |t: &Tensor<1>| -> Vec<f64> {
                t.grad(&grads)
                    .unwrap()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
                    .into_iter()
                    .map(f64::from)
                    .collect()
            };
            let p = loss_plain(
                &cfg,
                &PlainSpectrum::new(n, 2000.0),
                &signal,
                &rates,
                &gains,
            );
            assert!(
                (p.total - total).abs() < 1e-4 * total.abs().max(1.0),
                "{kind}: {} vs {total}",
                p.total
            );
            let close = |a: &[f64], b: &[f64], what: &str| {
                let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (x - y).abs() < 1e-3 * scale,
                        "{kind} {what}[{i}]: {x} vs {y}"
                    );
                }
            };
            close(&p.d_signal, &vals(&x), "signal");
            let dr: Vec<f64> = r.iter().map(|t| vals(t)[0]).collect();
            close(&p.d_rates, &dr, "rates");
            close(&p.d_log_gain, &vals(&g), "log-gains");
        }
    }
}
