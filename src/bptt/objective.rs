//! The optimiser's loss on a differentiable exact run, scored as the exact engine's re-check
//! scores it (the mean voltage of the signal populations in 1 ms bins, its Welch spectrum,
//! population rates, the L2 penalty), and its gradient with respect to the group log-gains and,
//! optionally, per-synapse log-weights.

use super::BpttConfig;
use super::net::{ExactNet, Forward};
use crate::error::Result;
use crate::experiment::{bin_signal, psd_segment};
use crate::netopt::objective::{PlainLoss, PlainSpectrum, loss_welch};
use crate::netopt::optimize::OptimizeConfig;
use crate::spec::{Connectome, NetworkSpec};

/// A loss and its gradient.
pub struct Evaluation {
    pub loss: PlainLoss,
    pub rates_hz: Vec<f64>,
    /// d loss / d log-gain per connection group (the L2 term included).
    pub d_log_gain: Vec<f64>,
    /// d loss / d log-weight per synapse of the connectome (no penalty on them).
    pub d_log_w: Vec<f64>,
    /// The frequencies of `loss.power`.
    pub freqs_hz: Vec<f64>,
    pub forward: Forward,
}

/// The parameters being evaluated on one network instance: `conn` holds the connectome drawn at
/// zero log-gains (the spec's own gains); weights are `conn.weights * exp(log_gain[group] + log_w)`.
pub struct Params<'a> {
    pub log_gains: &'a [f32],
    pub log_w: Option<&'a [f32]>,
}

/// Each synapse's weight under `params`.
pub fn weights(conn: &Connectome, params: &Params) -> Vec<f64> {
    let mut w = vec![0.0; conn.weights.len()];
    for seg in &conn.segments {
        let g = params.log_gains[seg.group as usize] as f64;
        for s in seg.start..seg.end {
            let lw = params.log_w.map_or(0.0, |l| l[s] as f64);
            w[s] = conn.weights[s] as f64 * (g + lw).exp();
        }
    }
    w
}

/// Runs `spec` (seed: drive noise and initial state) on `conn` under `params` for `warm_ms +
/// window_ms`, scores the last `window_ms` with `cfg.objective`, and back-propagates.
pub fn evaluate(
    spec: &NetworkSpec,
    conn: &Connectome,
    cfg: &OptimizeConfig,
    bptt: &BpttConfig,
    params: &Params,
    warm_ms: f64,
    window_ms: f64,
) -> Result<Evaluation> {
    let mut s = spec.clone();
    s.simulation.duration_ms = warm_ms + window_ms;
    let dt = s.simulation.dt_ms;
    let skip = (warm_ms / dt).round() as usize;
    let signal_pops = cfg.signal_populations(&s);
    // The exact re-check counts spikes at t >= warm_ms, i.e. those of steps ending there or later.
    let w = weights(conn, params);
    let net = ExactNet::new(
        &s,
        conn,
        w.clone(),
        signal_pops,
        skip.saturating_sub(1),
        *bptt,
    )?;
    let fwd = net.forward()?;
    // Scored as `experiment::signal_psd` scores the exact re-check.
    let scored = &fwd.signal[skip.min(fwd.signal.len())..];
    let (binned, per_bin, fs) = bin_signal(scored, dt);
    let spectrum = PlainSpectrum::new(psd_segment(binned.len()), fs);
    let analysed_s = window_ms / 1000.0;
    let rates_hz: Vec<f64> = fwd
        .counts
        .iter()
        .zip(&s.populations)
        .map(|(&n, p)| n / p.size as f64 / analysed_s)
        .collect();
    let loss = loss_welch(
        &cfg.objective,
        &spectrum,
        &binned,
        &rates_hz,
        params.log_gains,
    );
    // Back to every step: a bin's mean spreads its gradient over its steps.
    let mut d_signal = vec![0.0; fwd.signal.len()];
    for (b, c) in scored.chunks(per_bin).enumerate() {
        let d = loss.d_signal[b] / c.len() as f64;
        for k in 0..c.len() {
            d_signal[skip + b * per_bin + k] = d;
        }
    }
    let d_counts: Vec<f64> = loss
        .d_rates
        .iter()
        .zip(&s.populations)
        .map(|(&d, p)| d / p.size as f64 / analysed_s)
        .collect();
    let d_w = net.backward(&fwd, &d_signal, &d_counts)?;
    let mut d_log_gain = loss.d_log_gain.clone();
    let mut d_log_w = vec![0.0; d_w.len()];
    for seg in &conn.segments {
        for s in seg.start..seg.end {
            let g = w[s] * d_w[s];
            d_log_gain[seg.group as usize] += g;
            d_log_w[s] = g;
        }
    }
    Ok(Evaluation {
        loss,
        rates_hz,
        d_log_gain,
        d_log_w,
        freqs_hz: spectrum.freqs_hz.clone(),
        forward: fwd,
    })
}
