//! The surrogate's input, defined once for both engines: per channel and bin, the sum of the weights of
//! the spikes that arrive in that bin. The exact engine delivers that sum at the start of the bin; the
//! surrogate network engine feeds the same quantity to its cells.

/// Adds the weights of `spikes` (arrival time in ms, channel, weight) into `out`, laid out `[bin][channel]`
/// with `n_channels` channels, for bins of `bin_ms` starting at 0. Spikes beyond the last bin are dropped.
pub fn bin_spikes(
    spikes: impl IntoIterator<Item = (f64, usize, f64)>,
    bin_ms: f64,
    n_channels: usize,
    out: &mut [f32],
) {
    let bins = out.len() / n_channels;
    for (t, c, w) in spikes {
        let b = (t / bin_ms).floor();
        if b >= 0.0 && (b as usize) < bins {
            out[b as usize * n_channels + c] += w as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_land_in_their_bin_and_channel() {
        let mut out = vec![0.0f32; 4 * 2];
        bin_spikes(
            [
                (0.0, 0, 1.0),
                (0.49, 0, 2.0),
                (0.5, 1, 3.0),
                (1.99, 1, 0.5),
                (2.0, 0, 9.0),
            ],
            0.5,
            2,
            &mut out,
        );
        assert_eq!(out, vec![3.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.5]);
    }
}
