//! Every CPU kernel of the surrogate, forward and backward, written once: matrix products, the
//! activations, the LSTM cells, the causal convolution and the spike onset. The fused training
//! step ([`super::train_step`]) and the fused network engine (`crate::netopt`) both call them.

use super::weights::Conv;

/// `c[m, n] = a[m, k] b[k, n]` (or `+=` with `acc`), row-major slices.
pub(crate) fn mm(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, acc: bool) {
    gemm_rm(c, a, b, m, k, n, acc, (1, n as isize));
}

/// `c[m, n] (+)= a[m, k] b^T` where `b` is stored `[n, k]` row-major.
pub(crate) fn mm_bt(c: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, acc: bool) {
    gemm_rm(c, a, b, m, k, n, acc, (k as isize, 1));
}

/// `gemm` on row-major `c` and `a`, with `b` read through its (column, row) strides `b_strides`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_rm(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    acc: bool,
    b_strides: (isize, isize),
) {
    assert!(c.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the slices hold the matrices the strides describe (the lengths are checked above and
    // both stride pairs address exactly `k * n` elements of `b`); `gemm` reads and writes only
    // within them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            b_strides.0,
            b_strides.1,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Where a matrix lies in a slice: element `(i, j)` at `off + i * rs + j * cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View {
    pub(crate) off: usize,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl View {
    /// Row-major rows from `off`, `cols` values apart (a row may be shorter than that).
    pub(crate) fn rows(off: usize, cols: usize) -> Self {
        View {
            off,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of the same elements.
    pub(crate) fn t(self) -> Self {
        View {
            off: self.off,
            rs: self.cs,
            cs: self.rs,
        }
    }
    fn fits(&self, rows: usize, cols: usize, len: usize) -> bool {
        rows == 0 || cols == 0 || self.off + (rows - 1) * self.rs + (cols - 1) * self.cs < len
    }
}

/// `c[m, n] (+)= a[m, k] b[k, n]` with each matrix anywhere in its slice (see [`View`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_view(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    cv: View,
    acc: bool,
    a: &[f32],
    av: View,
    b: &[f32],
    bv: View,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        cv.fits(m, n, c.len()) && av.fits(m, k, a.len()) && bv.fits(k, n, b.len()),
        "matrix views outside their slices"
    );
    if k == 0 {
        if !acc {
            for i in 0..m {
                for j in 0..n {
                    c[cv.off + i * cv.rs + j * cv.cs] = 0.0;
                }
            }
        }
        return;
    }
    // SAFETY: every element the views address lies inside its slice (checked above; strides are
    // non-negative), and `gemm` touches no other.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().add(cv.off),
            cv.cs as isize,
            cv.rs as isize,
            acc,
            a.as_ptr().add(av.off),
            av.cs as isize,
            av.rs as isize,
            b.as_ptr().add(bv.off),
            bv.cs as isize,
            bv.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// `exp(x)` for `|x| <= 87` without a library call, so that loops over it vectorise: `x = k ln 2 + r`
/// with integer `k` and `|r| <= ln 2 / 2`, `exp(r)` from its Taylor series to `r^7` (relative error
/// below 2e-7, about the rounding of `f32`), and `2^k` written into the exponent bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and removing 1.5 * 2^23 rounds to the nearest integer without a `floor` call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 87.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    f32::from_bits(((k as i32 + 127) << 23) as u32) * p
}

/// The logistic function as the burn engine computes it (input clamped to +-30).
#[inline(always)]
pub(crate) fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x.clamp(-30.0, 30.0)))
}

/// `tanh(x) = 2 sigmoid(2x) - 1`, as the burn engine computes it.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    2.0 * logistic(2.0 * x) - 1.0
}

/// `dst[r] += row`-wise sums: the bias gradient from `[rows, cols]` at `g`.
pub(crate) fn col_sums(dst: &mut [f32], g: &[f32], cols: usize) {
    for row in g.chunks_exact(cols) {
        for (d, v) in dst.iter_mut().zip(row) {
            *d += v;
        }
    }
}

/// The causal convolution on rows of channels. Tap `j` of a convolution reads `rows` consecutive
/// rows of `c_in` values starting at element `at(j)` of its source: bins of one sequence (the
/// training step) or cells of one bin (the network engine) are the same product.
impl Conv {
    /// `dst` (+)= the convolution, rows `dst_rs` apart; the bias is added.
    pub(crate) fn forward_rows(
        &self,
        src: &[f32],
        at: impl Fn(usize) -> usize,
        rows: usize,
        dst: &mut [f32],
        dst_rs: usize,
    ) {
        for j in 0..self.kernel {
            gemm_view(
                rows,
                self.c_out,
                self.c_in,
                dst,
                View::rows(0, dst_rs),
                j > 0,
                src,
                View::rows(at(j), self.c_in),
                self.tap(j),
                View::rows(0, self.c_out),
            );
        }
        for r in 0..rows {
            for (d, b) in dst[r * dst_rs..r * dst_rs + self.c_out]
                .iter_mut()
                .zip(&self.b)
            {
                *d += b;
            }
        }
    }

    /// Adds the input gradient to `dsrc` (laid out as the source): tap `j`'s rows `+= dout W_j^T`.
    /// `dout` is `[rows, c_out]`.
    pub(crate) fn backward_input_rows(
        &self,
        dout: &[f32],
        rows: usize,
        dsrc: &mut [f32],
        at: impl Fn(usize) -> usize,
    ) {
        let (ci, co) = (self.c_in, self.c_out);
        for j in 0..self.kernel {
            gemm_view(
                rows,
                ci,
                co,
                dsrc,
                View::rows(at(j), ci),
                true,
                dout,
                View::rows(0, co),
                self.tap(j),
                View::rows(0, co).t(),
            );
        }
    }

    /// Adds the weight and bias gradients to `grad`: `dW_j += src_j^T dout`.
    pub(crate) fn backward_weights_rows(
        &self,
        src: &[f32],
        at: impl Fn(usize) -> usize,
        rows: usize,
        dout: &[f32],
        grad: &mut Conv,
    ) {
        let (ci, co) = (self.c_in, self.c_out);
        for j in 0..self.kernel {
            gemm_view(
                ci,
                co,
                rows,
                &mut grad.w,
                View::rows(j * ci * co, co),
                true,
                src,
                View::rows(at(j), ci).t(),
                dout,
                View::rows(0, co),
            );
        }
        col_sums(&mut grad.b, &dout[..rows * co], co);
    }

    /// One sequence: `dst[t] (+)= conv(src)[t]` for `t < w`, `src` being `[pad + w, c_in]` with
    /// `pad >= span`.
    pub(crate) fn seq_forward(
        &self,
        src: &[f32],
        pad: usize,
        w: usize,
        dst: &mut [f32],
        dst_rs: usize,
    ) {
        self.forward_rows(src, |j| (pad - self.back(j)) * self.c_in, w, dst, dst_rs);
    }

    /// Back through [`Conv::seq_forward`]: the weight and bias gradients into `grad` and, with
    /// `dsrc`, the input gradient (laid out as `src`). `dout` is `[w, c_out]`.
    pub(crate) fn seq_backward(
        &self,
        src: &[f32],
        pad: usize,
        w: usize,
        dout: &[f32],
        grad: &mut Conv,
        dsrc: Option<&mut [f32]>,
    ) {
        let at = |j| (pad - self.back(j)) * self.c_in;
        self.backward_weights_rows(src, at, w, dout, grad);
        if let Some(dsrc) = dsrc {
            self.backward_input_rows(dout, w, dsrc, at);
        }
    }
}

/// A spike is the bin where the spike indicator rises: `now (1 - prev)`, for hard (0/1) and soft
/// indicators alike. Every engine calls this (burn's through [`onset_tensor`]).
#[inline(always)]
pub fn onset(now: f32, prev: f32) -> f32 {
    now * (1.0 - prev)
}

/// The gradient of [`onset`] from the gradient `d` of its value: `(d_now, d_prev)`.
#[inline(always)]
pub fn onset_grad(now: f32, prev: f32, d: f32) -> (f32, f32) {
    (d * (1.0 - prev), -d * now)
}

/// [`onset`] on burn tensors.
pub fn onset_tensor<const D: usize>(
    now: burn::tensor::Tensor<D>,
    prev: burn::tensor::Tensor<D>,
) -> burn::tensor::Tensor<D> {
    now * prev.neg().add_scalar(1.0)
}

/// Onsets of runs of `logits` above `thr` (the first bin counts when it is above).
pub fn count_onsets(logits: &[f32], thr: f32) -> usize {
    let mut prev = 0.0;
    let mut n = 0;
    for &l in logits {
        let now = if l > thr { 1.0 } else { 0.0 };
        n += onset(now, prev) as usize;
        prev = now;
    }
    n
}

#[inline(always)]
fn lstm_cells_body(
    gates: &mut [f32],
    b_in: &[f32],
    c_prev: &[f32],
    c_new: &mut [f32],
    tc: &mut [f32],
    h_new: &mut [f32],
    hd: usize,
) {
    for (i, g) in gates.chunks_exact_mut(4 * hd).enumerate() {
        for (v, b) in g.iter_mut().zip(b_in) {
            *v += b;
        }
        let (gi, rest) = g.split_at_mut(hd);
        let (gf, rest) = rest.split_at_mut(hd);
        let (gu, go) = rest.split_at_mut(hd);
        let cp = &c_prev[i * hd..(i + 1) * hd];
        let cn = &mut c_new[i * hd..(i + 1) * hd];
        let tcn = &mut tc[i * hd..(i + 1) * hd];
        let hn = &mut h_new[i * hd..(i + 1) * hd];
        for q in 0..hd {
            let a_i = logistic(gi[q]);
            let a_f = logistic(gf[q]);
            let a_u = tanh(gu[q]);
            let a_o = logistic(go[q]);
            gi[q] = a_i;
            gf[q] = a_f;
            gu[q] = a_u;
            go[q] = a_o;
            let c = a_f * cp[q] + a_i * a_u;
            cn[q] = c;
            let t_c = tanh(c);
            tcn[q] = t_c;
            hn[q] = a_o * t_c;
        }
    }
}

avx2_dispatch! {
    /// The LSTM cells of one bin: `gates` (`[n, 4H]`, before the bias) become the activations
    /// `(i, f, u, o)`, and the new `c`, `tanh(c)` and `h` are written. Compiled for AVX2 where the CPU
    /// has it (chosen at run time): the loops vectorise, with the same results as the baseline build.
    pub(crate) fn lstm_cells(
    gates: &mut [f32],
    b_in: &[f32],
    c_prev: &[f32],
    c_new: &mut [f32],
    tc: &mut [f32],
    h_new: &mut [f32],
    hd: usize,
) = lstm_cells_body;
}

#[inline(always)]
fn lstm_cells_backward_body(
    gates: &mut [f32],
    c_prev: &[f32],
    tc: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    hd: usize,
) {
    for (i, g) in gates.chunks_exact_mut(4 * hd).enumerate() {
        let (gi, rest) = g.split_at_mut(hd);
        let (gf, rest) = rest.split_at_mut(hd);
        let (gu, go) = rest.split_at_mut(hd);
        let r = i * hd..(i + 1) * hd;
        let (cp, tcc, dhh) = (&c_prev[r.clone()], &tc[r.clone()], &dh[r.clone()]);
        let dcc = &mut dc[r];
        for q in 0..hd {
            let (a_i, a_f, a_u, a_o) = (gi[q], gf[q], gu[q], go[q]);
            let t_c = tcc[q];
            let d_o = dhh[q] * t_c;
            let d_c = dcc[q] + dhh[q] * a_o * (1.0 - t_c * t_c);
            gi[q] = d_c * a_u * a_i * (1.0 - a_i);
            gf[q] = d_c * cp[q] * a_f * (1.0 - a_f);
            gu[q] = d_c * a_i * (1.0 - a_u * a_u);
            go[q] = d_o * a_o * (1.0 - a_o);
            dcc[q] = d_c * a_f;
        }
    }
}

avx2_dispatch! {
    /// One bin of the LSTM backward: `gates` holds the activations `(i, f, u, o)` of `[n, 4H]` cells and
    /// becomes the gradient of their pre-activations; `dh` is the gradient of the bin's `h`, `dc` that
    /// of its `c` from later bins on entry and of the previous bin's `c` on exit.
    pub(crate) fn lstm_cells_backward(
    gates: &mut [f32],
    c_prev: &[f32],
    tc: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    hd: usize,
) = lstm_cells_backward_body;
}

#[cfg(test)]
mod tests {

    /// Deterministic values in (-2, 2).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let h = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) % 4001;
                (h as f32 / 1000.0) - 2.0
            })
            .collect()
    }

    type CellsFn = fn(&mut [f32], &[f32], &[f32], &mut [f32], &mut [f32], &mut [f32], usize);
    type BackwardFn = fn(&mut [f32], &[f32], &[f32], &[f32], &mut [f32], usize);

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn lstm_cells_avx2_and_baseline_builds_agree_bit_for_bit() {
        let (n, hd) = (7, 13);
        let (gates, b_in, c_prev) = (values(n * 4 * hd, 1), values(4 * hd, 2), values(n * hd, 3));
        let run = |f: CellsFn| {
            let (mut g, mut c, mut tc, mut h) = (
                gates.clone(),
                vec![0.0; n * hd],
                vec![0.0; n * hd],
                vec![0.0; n * hd],
            );
            f(&mut g, &b_in, &c_prev, &mut c, &mut tc, &mut h, hd);
            [bits(&g), bits(&c), bits(&tc), bits(&h)]
        };
        assert_eq!(
            run(super::lstm_cells),
            run(super::lstm_cells_body),
            "avx2: {}",
            crate::simd::has_avx2()
        );
    }

    #[test]
    fn lstm_backward_avx2_and_baseline_builds_agree_bit_for_bit() {
        let (n, hd) = (5, 11);
        let gates: Vec<f32> = values(n * 4 * hd, 4)
            .iter()
            .map(|x| 0.5 + 0.2 * x)
            .collect();
        let (c_prev, tc, dh, dc) = (
            values(n * hd, 5),
            values(n * hd, 6),
            values(n * hd, 7),
            values(n * hd, 8),
        );
        let run = |f: BackwardFn| {
            let (mut g, mut d) = (gates.clone(), dc.clone());
            f(&mut g, &c_prev, &tc, &dh, &mut d, hd);
            [bits(&g), bits(&d)]
        };
        assert_eq!(
            run(super::lstm_cells_backward),
            run(super::lstm_cells_backward_body),
            "avx2: {}",
            crate::simd::has_avx2()
        );
    }

    #[test]
    fn onsets_are_counted_where_the_indicator_rises() {
        assert_eq!(super::count_onsets(&[1.0, 1.0, -1.0, 0.5, -2.0], 0.0), 2);
        assert_eq!(super::count_onsets(&[-1.0, -1.0], 0.0), 0);
        let (d_now, d_prev) = super::onset_grad(0.25, 0.5, 2.0);
        assert_eq!((d_now, d_prev), (1.0, -0.5));
    }
    #[test]
    fn fast_exp_is_as_accurate_as_f32() {
        let mut worst = 0f64;
        for i in -870_000..=870_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let got = super::exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "relative error {worst:e}");
    }
}
