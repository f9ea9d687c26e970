//! One surrogate's weights as plain `f32` buffers, and the CPU kernels the fused paths share: the
//! network engine's (`crate::netopt`) and the training step's (`super::fused`). Both step the same
//! TCN-LSTM outside burn, so they read its weights in one layout and compute its activations one way.

use super::Surrogate;
use burn::tensor::Tensor;

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

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

/// A causal convolution as `kernel` tap matrices.
#[derive(Clone)]
pub(crate) struct Conv {
    /// `[kernel * c_in, c_out]`: rows `j * c_in ..` are tap `j`, which reads the input
    /// `(kernel - 1 - j) * dilation` bins back.
    pub(crate) w: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) kernel: usize,
    pub(crate) dilation: usize,
    pub(crate) c_in: usize,
    pub(crate) c_out: usize,
}

impl Conv {
    pub(crate) fn from_burn(conv: &super::model::CausalConv) -> Self {
        let [c_out, c_in, k] = conv.weight.dims();
        Conv {
            w: to_vec(
                conv.weight
                    .val()
                    .permute([2, 1, 0])
                    .reshape([k * c_in, c_out]),
            ),
            b: to_vec(conv.bias.val()),
            kernel: k,
            dilation: conv.dilation,
            c_in,
            c_out,
        }
    }
    pub(crate) fn span(&self) -> usize {
        (self.kernel - 1) * self.dilation
    }
    pub(crate) fn back(&self, j: usize) -> usize {
        (self.kernel - 1 - j) * self.dilation
    }
    pub(crate) fn tap(&self, j: usize) -> &[f32] {
        &self.w[j * self.c_in * self.c_out..(j + 1) * self.c_in * self.c_out]
    }
}

pub(crate) struct Block {
    pub(crate) conv1: Conv,
    pub(crate) conv2: Conv,
    pub(crate) skip: Option<Conv>,
}

/// One surrogate's weights as plain buffers.
pub(crate) struct Model {
    pub(crate) blocks: Vec<Block>,
    /// `[c_tcn, 4H]`, `[4H]`.
    pub(crate) w_in: Vec<f32>,
    pub(crate) b_in: Vec<f32>,
    /// `[H, 4H]`.
    pub(crate) w_rec: Vec<f32>,
    /// `[H, 2]`: voltage and spike heads side by side; `[2]`.
    pub(crate) w_head: Vec<f32>,
    pub(crate) b_head: [f32; 2],
    pub(crate) hidden: usize,
    pub(crate) n_inputs: usize,
}

impl Model {
    pub(crate) fn from_burn(m: &Surrogate) -> Self {
        let hidden = m.lstm.hidden;
        let bias = |l: &burn::nn::Linear, d: usize| {
            l.bias
                .as_ref()
                .map_or_else(|| vec![0.0; d], |b| to_vec(b.val()))
        };
        let wv = to_vec(m.voltage_head.weight.val());
        let ws = to_vec(m.spike_head.weight.val());
        let w_head = (0..hidden).flat_map(|i| [wv[i], ws[i]]).collect();
        let blocks: Vec<Block> = m
            .blocks
            .iter()
            .map(|b| Block {
                conv1: Conv::from_burn(&b.conv1),
                conv2: Conv::from_burn(&b.conv2),
                skip: b.skip.as_ref().map(Conv::from_burn),
            })
            .collect();
        let n_inputs = blocks.first().map_or(0, |b| b.conv1.c_in);
        Model {
            w_in: to_vec(m.lstm.input.weight.val()),
            b_in: bias(&m.lstm.input, 4 * hidden),
            w_rec: to_vec(m.lstm.recurrent.val()),
            w_head,
            b_head: [bias(&m.voltage_head, 1)[0], bias(&m.spike_head, 1)[0]],
            hidden,
            n_inputs,
            blocks,
        }
    }
    /// The same shapes, all zero: a gradient of the weights.
    pub(crate) fn zeros_like(&self) -> Self {
        let z = |c: &Conv| Conv {
            w: vec![0.0; c.w.len()],
            b: vec![0.0; c.b.len()],
            ..*c
        };
        Model {
            blocks: self
                .blocks
                .iter()
                .map(|b| Block {
                    conv1: z(&b.conv1),
                    conv2: z(&b.conv2),
                    skip: b.skip.as_ref().map(z),
                })
                .collect(),
            w_in: vec![0.0; self.w_in.len()],
            b_in: vec![0.0; self.b_in.len()],
            w_rec: vec![0.0; self.w_rec.len()],
            w_head: vec![0.0; self.w_head.len()],
            b_head: [0.0; 2],
            hidden: self.hidden,
            n_inputs: self.n_inputs,
        }
    }
    /// Every weight buffer, in one fixed order.
    pub(crate) fn buffers_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out: Vec<&mut [f32]> = Vec::new();
        for b in &mut self.blocks {
            for c in [Some(&mut b.conv1), Some(&mut b.conv2), b.skip.as_mut()]
                .into_iter()
                .flatten()
            {
                out.push(&mut c.w);
                out.push(&mut c.b);
            }
        }
        out.push(&mut self.w_in);
        out.push(&mut self.b_in);
        out.push(&mut self.w_rec);
        out.push(&mut self.w_head);
        out.push(&mut self.b_head);
        out
    }
    pub(crate) fn tcn_out(&self) -> usize {
        self.blocks.last().map_or(self.n_inputs, |b| b.conv2.c_out)
    }
}

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
) {
    #[inline(always)]
    fn body(
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
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        unsafe fn avx2(
            gates: &mut [f32],
            b_in: &[f32],
            c_prev: &[f32],
            c_new: &mut [f32],
            tc: &mut [f32],
            h_new: &mut [f32],
            hd: usize,
        ) {
            body(gates, b_in, c_prev, c_new, tc, h_new, hd)
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { avx2(gates, b_in, c_prev, c_new, tc, h_new, hd) };
            return;
        }
    }
    body(gates, b_in, c_prev, c_new, tc, h_new, hd)
}

#[cfg(test)]
mod tests {
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
