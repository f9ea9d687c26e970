//! The surrogate's training step fused for the CPU: the forward pass and the loss of
//! [`super::train`], and their gradient with respect to every weight, computed on plain `f32`
//! buffers with a hand-written backward pass; burn's Adam then applies the gradient to the burn
//! model, so checkpoints, optimizer state and resumption are those of the burn path.
//!
//! Why: under burn's autodiff each of the LSTM's 1,000 sequential steps is a dozen graph nodes, each
//! with its own allocation, forward and again backward; on the CPU that bookkeeping, not arithmetic,
//! is most of a step. Here a window's convolutions are one matrix product per tap over all its bins,
//! the input projection and the weight gradients of the LSTM are one product over all bins and
//! cells, and only the recurrent product is done step by step. The batch is cut into groups of a fixed
//! size that run on the cores in parallel (each carries its own LSTM recurrence and gradient sums,
//! added in group order, so the result does not depend on the thread count). `tests/surrogate_fused.rs`
//! holds the gradient to burn's autodiff and to finite differences; burn's autodiff stays the
//! path for GPUs.

use super::kernels::{View, col_sums, gemm_view, logistic, lstm_cells, lstm_cells_backward};
use super::weights::{Conv, Model};
use crate::surrogate::Surrogate;
use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

/// Cells per group: each group is one task for the thread pool and one LSTM recurrence.
const GROUP: usize = 8;

/// A batch of training windows, time-major per window: `x [b, w, channels]` (scaled input),
/// `v [b, w]` (standardised voltage), `s [b, w]` (0/1 spike).
pub struct Batch<'a> {
    pub x: &'a [f32],
    pub v: &'a [f32],
    pub s: &'a [f32],
    pub b: usize,
    pub w: usize,
}

/// How the loss is formed (as in [`super::train`]): bins from `skip` on count; the spike term is
/// class-weighted binary cross-entropy on the logit, weighted by `lambda`.
#[derive(Clone, Copy, Debug)]
pub struct LossSpec {
    pub skip: usize,
    pub pos_weight: f32,
    pub lambda: f32,
}

/// Loss terms of one step: (total, voltage MSE, spike BCE), means over the scored bins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    pub total: f64,
    pub mse: f64,
    pub bce: f64,
}

/// The fused step's state: the model's weights as buffers and the work space of every group, kept
/// between steps (allocating them anew each step costs page faults, as burn's allocations did).
pub struct FusedTrainer {
    model: Model,
    groups: Vec<Work>,
}

/// One group's activations, gradient buffers and gradient sums.
#[derive(Default)]
struct Work {
    /// Per cell of the group, per series (scaled input; per block the first convolution's output
    /// and the block's output), `[pad + w, width]` with zero padding rows.
    series: Vec<Vec<Vec<f32>>>,
    /// Per cell, per block: the second convolution after its ReLU, `[w, c]`.
    o: Vec<Vec<Vec<f32>>>,
    /// Time-major LSTM input `[w, n, c]`, gates `[w, n, 4H]` (activations after the forward
    /// pass, pre-activation gradients after the backward pass), `c` and `h` `[w + 1, n, H]` (row 0
    /// the zero start), `tanh(c)` `[w, n, H]`, heads `[w, n, 2]`.
    z: Vec<f32>,
    gates: Vec<f32>,
    c: Vec<f32>,
    h: Vec<f32>,
    tc: Vec<f32>,
    heads: Vec<f32>,
    /// Gradients: of the heads, of the LSTM input, of one cell's series (a block's output, its
    /// middle series, its second convolution's pre-activation, its input), and of the state carried
    /// between steps.
    dheads: Vec<f32>,
    dz: Vec<f32>,
    d_a: Vec<f32>,
    d_b: Vec<f32>,
    d_mid: Vec<f32>,
    d_x: Vec<f32>,
    dh: Vec<f32>,
    dc: Vec<f32>,
    grad: Option<Model>,
    mse: f64,
    bce: f64,
}

fn zeroed(v: &mut Vec<f32>, len: usize) {
    v.clear();
    v.resize(len, 0.0);
}

/// `ln sigmoid(x)`, stable for any `x`.
fn log_sigmoid(x: f32) -> f32 {
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}

impl FusedTrainer {
    pub fn new(model: &Surrogate) -> Self {
        FusedTrainer {
            model: Model::from_burn(model),
            groups: Vec::new(),
        }
    }

    /// Takes the weights of `model` (after an optimizer step).
    pub fn load(&mut self, model: &Surrogate) {
        self.model = Model::from_burn(model);
    }

    /// Series shapes per cell: (width, pad) of the scaled input, then per block its first
    /// convolution's output and the block's output (padded for the convolution that reads it).
    fn shapes(&self) -> Vec<(usize, usize)> {
        let m = &self.model;
        let mut out = Vec::new();
        let mut c = m.n_inputs;
        for (k, b) in m.blocks.iter().enumerate() {
            out.push((c, b.conv1.span()));
            out.push((b.conv1.c_out, b.conv2.span()));
            c = b.conv2.c_out;
            if k + 1 == m.blocks.len() {
                out.push((c, 0));
            }
        }
        if m.blocks.is_empty() {
            out.push((c, 0));
        }
        out
    }

    /// The loss of one batch, forward pass only (validation).
    pub fn loss(&mut self, batch: &Batch, spec: LossSpec) -> StepLoss {
        self.pass(batch, spec, false).0
    }

    /// The loss of one batch and its gradient with respect to every weight (in [`Model`] layout).
    pub(crate) fn loss_and_grad(&mut self, batch: &Batch, spec: LossSpec) -> (StepLoss, Model) {
        let (loss, grad) = self.pass(batch, spec, true);
        (loss, grad.expect("asked for"))
    }

    fn pass(
        &mut self,
        batch: &Batch,
        spec: LossSpec,
        want_grad: bool,
    ) -> (StepLoss, Option<Model>) {
        let (b, w) = (batch.b, batch.w);
        assert!(spec.skip < w, "the window must be longer than the burn-in");
        let nch = self.model.n_inputs;
        assert_eq!(batch.x.len(), b * w * nch, "input shape");
        let n_groups = b.div_ceil(GROUP);
        self.groups.resize_with(n_groups, Work::default);
        let shapes = self.shapes();
        let model = &self.model;
        let scored = (b * (w - spec.skip)) as f32;
        self.groups[..n_groups]
            .par_iter_mut()
            .enumerate()
            .for_each(|(g, work)| {
                let cells = g * GROUP..((g + 1) * GROUP).min(b);
                let sub = Batch {
                    x: &batch.x[cells.start * w * nch..cells.end * w * nch],
                    v: &batch.v[cells.start * w..cells.end * w],
                    s: &batch.s[cells.start * w..cells.end * w],
                    b: cells.len(),
                    w,
                };
                work.run(model, &shapes, &sub, spec, scored, want_grad);
            });
        let mut grad = want_grad.then(|| self.model.zeros_like());
        let (mut mse, mut bce) = (0.0, 0.0);
        for work in &mut self.groups[..n_groups] {
            if let Some(grad) = grad.as_mut() {
                let gw = work.grad.as_mut().expect("computed");
                for (d, s) in grad.buffers_mut().into_iter().zip(gw.buffers_mut()) {
                    for (d, s) in d.iter_mut().zip(s.iter()) {
                        *d += s;
                    }
                }
            }
            mse += work.mse;
            bce += work.bce;
        }
        let (mse, bce) = (mse / scored as f64, bce / scored as f64);
        (
            StepLoss {
                total: mse + spec.lambda as f64 * bce,
                mse,
                bce,
            },
            grad,
        )
    }

    /// The loss of one batch and its gradient as burn parameter gradients of `model` (the module
    /// whose weights were last loaded), on `device`, ready for the optimizer.
    pub fn step(
        &mut self,
        model: &Surrogate,
        batch: &Batch,
        spec: LossSpec,
        device: &Device,
    ) -> (StepLoss, GradientsParams) {
        let (loss, grad) = self.loss_and_grad(batch, spec);
        (loss, to_params(grad, model, device))
    }
}

/// The gradient in burn's parameter layout, keyed by the parameters of `model`.
fn to_params(grad: Model, model: &Surrogate, device: &Device) -> GradientsParams {
    let mut out = GradientsParams::new();
    fn conv(
        out: &mut GradientsParams,
        g: Conv,
        p: &crate::surrogate::model::CausalConv,
        device: &Device,
    ) {
        let (k, ci, co) = (g.kernel, g.c_in, g.c_out);
        let w =
            Tensor::<3>::from_data(TensorData::new(g.w, [k, ci, co]), device).permute([2, 1, 0]);
        out.register(p.weight.id, w);
        out.register(
            p.bias.id,
            Tensor::<1>::from_data(TensorData::new(g.b, [co]), device),
        );
    }
    fn put<const D: usize>(
        out: &mut GradientsParams,
        p: &Param<Tensor<D>>,
        v: Vec<f32>,
        shape: [usize; D],
        device: &Device,
    ) {
        out.register(
            p.id,
            Tensor::<D>::from_data(TensorData::new(v, shape), device),
        );
    }
    let hd = grad.hidden;
    let c_tcn = grad.w_in.len() / (4 * hd);
    for (g, p) in grad.blocks.into_iter().zip(&model.blocks) {
        conv(&mut out, g.conv1, &p.conv1, device);
        conv(&mut out, g.conv2, &p.conv2, device);
        if let (Some(g), Some(p)) = (g.skip, &p.skip) {
            conv(&mut out, g, p, device);
        }
    }
    let lstm = &model.lstm;
    put(
        &mut out,
        &lstm.input.weight,
        grad.w_in,
        [c_tcn, 4 * hd],
        device,
    );
    if let Some(bias) = &lstm.input.bias {
        put(&mut out, bias, grad.b_in, [4 * hd], device);
    }
    put(&mut out, &lstm.recurrent, grad.w_rec, [hd, 4 * hd], device);
    for (col, head) in [&model.voltage_head, &model.spike_head]
        .into_iter()
        .enumerate()
    {
        let w: Vec<f32> = (0..hd).map(|i| grad.w_head[2 * i + col]).collect();
        put(&mut out, &head.weight, w, [hd, 1], device);
        if let Some(bias) = &head.bias {
            put(&mut out, bias, vec![grad.b_head[col]], [1], device);
        }
    }
    out
}

impl Work {
    /// Forward (and with `want_grad` backward) for the cells of `batch` (one group); leaves the
    /// summed (not averaged) loss terms and the gradient sums in `self`. `scored` is the whole
    /// batch's count of scored bins, by which the loss is averaged.
    fn run(
        &mut self,
        m: &Model,
        shapes: &[(usize, usize)],
        batch: &Batch,
        spec: LossSpec,
        scored: f32,
        want_grad: bool,
    ) {
        let mut grad = self.grad.take().unwrap_or_else(|| m.zeros_like());
        for buf in grad.buffers_mut() {
            buf.fill(0.0);
        }
        self.tcn_forward(m, shapes, batch);
        self.lstm_forward(m, batch.b, batch.w);
        self.heads_and_loss(m, batch, spec, scored);
        if want_grad {
            self.heads_backward(m, batch.b, batch.w, &mut grad);
            self.lstm_backward(m, batch.b, batch.w, &mut grad);
            self.tcn_backward(m, shapes, batch.b, batch.w, &mut grad);
        }
        self.grad = Some(grad);
    }

    /// The TCN, one cell at a time; each output row goes to the time-major LSTM input `z`.
    fn tcn_forward(&mut self, m: &Model, shapes: &[(usize, usize)], batch: &Batch) {
        let (n, w) = (batch.b, batch.w);
        let (nch, ct) = (m.n_inputs, m.tcn_out());
        self.series.resize_with(n, Vec::new);
        self.o.resize_with(n, Vec::new);
        zeroed(&mut self.z, w * n * ct);
        for i in 0..n {
            let series = &mut self.series[i];
            series.resize_with(shapes.len(), Vec::new);
            for (s, &(width, pad)) in series.iter_mut().zip(shapes) {
                zeroed(s, (pad + w) * width);
            }
            let (_, pad0) = shapes[0];
            series[0][pad0 * nch..].copy_from_slice(&batch.x[i * w * nch..(i + 1) * w * nch]);
            let o = &mut self.o[i];
            o.resize_with(m.blocks.len(), Vec::new);
            for (k, blk) in m.blocks.iter().enumerate() {
                let (yin, mid, yout) = (2 * k, 2 * k + 1, 2 * k + 2);
                let (p_in, p_mid, p_out) = (shapes[yin].1, shapes[mid].1, shapes[yout].1);
                let (c1, c2) = (blk.conv1.c_out, blk.conv2.c_out);
                let (head, rest) = series.split_at_mut(mid);
                let x_in = &head[yin];
                let (mid_s, rest) = rest.split_first_mut().expect("series");
                let out_s = &mut rest[0];
                blk.conv1
                    .seq_forward(x_in, p_in, w, &mut mid_s[p_mid * c1..], c1);
                mid_s[p_mid * c1..].iter_mut().for_each(|v| *v = v.max(0.0));
                let ob = &mut o[k];
                zeroed(ob, w * c2);
                blk.conv2.seq_forward(mid_s, p_mid, w, ob, c2);
                ob.iter_mut().for_each(|v| *v = v.max(0.0));
                let out = &mut out_s[p_out * c2..];
                match &blk.skip {
                    Some(s) => s.seq_forward(x_in, p_in, w, out, c2),
                    None => out.copy_from_slice(&x_in[p_in * c2..]),
                }
                for (y, &v) in out.iter_mut().zip(ob.iter()) {
                    *y = (*y + v).max(0.0);
                }
            }
            let last = &series[shapes.len() - 1];
            for t in 0..w {
                self.z[(t * n + i) * ct..(t * n + i + 1) * ct]
                    .copy_from_slice(&last[t * ct..(t + 1) * ct]);
            }
        }
    }

    /// The LSTM: one input product for all bins, then the recurrence.
    fn lstm_forward(&mut self, m: &Model, n: usize, w: usize) {
        let (hd, g4, ct) = (m.hidden, 4 * m.hidden, m.tcn_out());
        zeroed(&mut self.gates, w * n * g4);
        gemm_view(
            w * n,
            g4,
            ct,
            &mut self.gates,
            View::rows(0, g4),
            false,
            &self.z,
            View::rows(0, ct),
            &m.w_in,
            View::rows(0, g4),
        );
        zeroed(&mut self.c, (w + 1) * n * hd);
        zeroed(&mut self.h, (w + 1) * n * hd);
        zeroed(&mut self.tc, w * n * hd);
        for t in 0..w {
            let gates = &mut self.gates[t * n * g4..(t + 1) * n * g4];
            let (h_prev, h_next) = self.h.split_at_mut((t + 1) * n * hd);
            gemm_view(
                n,
                g4,
                hd,
                gates,
                View::rows(0, g4),
                true,
                &h_prev[t * n * hd..],
                View::rows(0, hd),
                &m.w_rec,
                View::rows(0, g4),
            );
            let (c_prev, c_next) = self.c.split_at_mut((t + 1) * n * hd);
            lstm_cells(
                gates,
                &m.b_in,
                &c_prev[t * n * hd..],
                &mut c_next[..n * hd],
                &mut self.tc[t * n * hd..(t + 1) * n * hd],
                &mut h_next[..n * hd],
                hd,
            );
        }
    }

    /// The heads, the loss terms (`mse`, `bce`) and their gradient with respect to the heads.
    fn heads_and_loss(&mut self, m: &Model, batch: &Batch, spec: LossSpec, scored: f32) {
        let (n, w, hd) = (batch.b, batch.w, m.hidden);
        zeroed(&mut self.heads, w * n * 2);
        gemm_view(
            w * n,
            2,
            hd,
            &mut self.heads,
            View::rows(0, 2),
            false,
            &self.h,
            View::rows(n * hd, hd),
            &m.w_head,
            View::rows(0, 2),
        );
        zeroed(&mut self.dheads, w * n * 2);
        let (mut mse, mut bce) = (0f64, 0f64);
        let pw = spec.pos_weight;
        for t in spec.skip..w {
            for i in 0..n {
                let r = t * n + i;
                let vp = self.heads[2 * r] + m.b_head[0];
                let logit = self.heads[2 * r + 1] + m.b_head[1];
                let (v, s) = (batch.v[i * w + t], batch.s[i * w + t]);
                let e = vp - v;
                mse += (e * e) as f64;
                bce -= (pw * s * log_sigmoid(logit) + (1.0 - s) * log_sigmoid(-logit)) as f64;
                self.dheads[2 * r] = 2.0 * e / scored;
                let sg = logistic(logit);
                self.dheads[2 * r + 1] = spec.lambda * (sg * (pw * s + 1.0 - s) - pw * s) / scored;
            }
        }
        self.mse = mse;
        self.bce = bce;
    }

    /// The heads' weight gradient over all bins at once.
    fn heads_backward(&mut self, m: &Model, n: usize, w: usize, grad: &mut Model) {
        let hd = m.hidden;
        gemm_view(
            hd,
            2,
            w * n,
            &mut grad.w_head,
            View::rows(0, 2),
            true,
            &self.h,
            View::rows(n * hd, hd).t(),
            &self.dheads,
            View::rows(0, 2),
        );
        for r in self.dheads.chunks_exact(2) {
            grad.b_head[0] += r[0];
            grad.b_head[1] += r[1];
        }
    }

    /// The LSTM backward, last bin first (`gates` becomes the pre-activation gradient), then its
    /// weight gradients over all bins and the gradient of its input `dz`.
    fn lstm_backward(&mut self, m: &Model, n: usize, w: usize, grad: &mut Model) {
        let (hd, g4, ct) = (m.hidden, 4 * m.hidden, m.tcn_out());
        zeroed(&mut self.dh, n * hd);
        zeroed(&mut self.dc, n * hd);
        for t in (0..w).rev() {
            gemm_view(
                n,
                hd,
                2,
                &mut self.dh,
                View::rows(0, hd),
                true,
                &self.dheads,
                View::rows(t * n * 2, 2),
                &m.w_head,
                View::rows(0, 2).t(),
            );
            let gates = &mut self.gates[t * n * g4..(t + 1) * n * g4];
            lstm_cells_backward(
                gates,
                &self.c[t * n * hd..(t + 1) * n * hd],
                &self.tc[t * n * hd..(t + 1) * n * hd],
                &self.dh,
                &mut self.dc,
                hd,
            );
            if t > 0 {
                gemm_view(
                    n,
                    hd,
                    g4,
                    &mut self.dh,
                    View::rows(0, hd),
                    false,
                    gates,
                    View::rows(0, g4),
                    &m.w_rec,
                    View::rows(0, g4).t(),
                );
            }
        }
        let da = &self.gates;
        gemm_view(
            hd,
            g4,
            w * n,
            &mut grad.w_rec,
            View::rows(0, g4),
            true,
            &self.h,
            View::rows(0, hd).t(),
            da,
            View::rows(0, g4),
        );
        col_sums(&mut grad.b_in, da, g4);
        gemm_view(
            ct,
            g4,
            w * n,
            &mut grad.w_in,
            View::rows(0, g4),
            true,
            &self.z,
            View::rows(0, ct).t(),
            da,
            View::rows(0, g4),
        );
        zeroed(&mut self.dz, w * n * ct);
        gemm_view(
            w * n,
            ct,
            g4,
            &mut self.dz,
            View::rows(0, ct),
            false,
            da,
            View::rows(0, g4),
            &m.w_in,
            View::rows(0, g4).t(),
        );
    }

    /// The TCN backward, one cell at a time, last block first. `d_a` holds the gradient of the
    /// block's output rows (no padding), `d_b` that of its input (padded as the input is).
    fn tcn_backward(
        &mut self,
        m: &Model,
        shapes: &[(usize, usize)],
        n: usize,
        w: usize,
        grad: &mut Model,
    ) {
        let ct = m.tcn_out();
        for i in 0..n {
            zeroed(&mut self.d_a, w * ct);
            for t in 0..w {
                self.d_a[t * ct..(t + 1) * ct]
                    .copy_from_slice(&self.dz[(t * n + i) * ct..(t * n + i + 1) * ct]);
            }
            let series = &self.series[i];
            for (k, blk) in m.blocks.iter().enumerate().rev() {
                let (yin, mid, yout) = (2 * k, 2 * k + 1, 2 * k + 2);
                let (p_in, p_mid, p_out) = (shapes[yin].1, shapes[mid].1, shapes[yout].1);
                let (c_in, c1, c2) = (blk.conv1.c_in, blk.conv1.c_out, blk.conv2.c_out);
                let out = &series[yout][p_out * c2..];
                let o = &self.o[i][k];
                // Through the final ReLU (d_a becomes the gradient of y + residual), then the
                // second convolution's ReLU (into d_mid, unpadded).
                zeroed(&mut self.d_mid, w * c2);
                for ((d, dm), (&y, &ov)) in self
                    .d_a
                    .iter_mut()
                    .zip(self.d_mid.iter_mut())
                    .zip(out.iter().zip(o.iter()))
                {
                    if y <= 0.0 {
                        *d = 0.0;
                    }
                    *dm = if ov > 0.0 { *d } else { 0.0 };
                }
                let gk = &mut grad.blocks[k];
                // Second convolution: its input gradient into d_b, padded as the first
                // convolution's output.
                zeroed(&mut self.d_b, (p_mid + w) * c1);
                blk.conv2.seq_backward(
                    &series[mid],
                    p_mid,
                    w,
                    &self.d_mid,
                    &mut gk.conv2,
                    Some(&mut self.d_b),
                );
                // Through the first ReLU, in place (rows after the padding).
                for (d, &a) in self.d_b[p_mid * c1..]
                    .iter_mut()
                    .zip(&series[mid][p_mid * c1..])
                {
                    if a <= 0.0 {
                        *d = 0.0;
                    }
                }
                let need_dx = k > 0;
                if need_dx {
                    zeroed(&mut self.d_x, (p_in + w) * c_in);
                }
                let dx = &mut self.d_x;
                blk.conv1.seq_backward(
                    &series[yin],
                    p_in,
                    w,
                    &self.d_b[p_mid * c1..],
                    &mut gk.conv1,
                    need_dx.then_some(&mut dx[..]),
                );
                match (&blk.skip, gk.skip.as_mut()) {
                    (Some(s), Some(gs)) => s.seq_backward(
                        &series[yin],
                        p_in,
                        w,
                        &self.d_a,
                        gs,
                        need_dx.then_some(&mut dx[..]),
                    ),
                    _ => {
                        if need_dx {
                            for (d, g) in dx[p_in * c_in..].iter_mut().zip(&self.d_a) {
                                *d += g;
                            }
                        }
                    }
                }
                if need_dx {
                    self.d_a.clear();
                    self.d_a.extend_from_slice(&dx[p_in * c_in..]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::surrogate::SurrogateArch;
    use rand::{Rng, SeedableRng};

    /// Each weight buffer's largest gradient entry against a central difference of the loss.
    #[test]
    fn gradient_matches_central_differences() {
        let device = Device::flex();
        device.seed(3);
        let arch = SurrogateArch {
            n_inputs: 2,
            tcn_channels: 4,
            kernel: 2,
            dilations: vec![1, 3],
            lstm_hidden: 5,
        };
        let mut ft = FusedTrainer::new(&arch.init(&device));
        let (b, w) = (3, 25);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let x: Vec<f32> = (0..b * w * 2).map(|_| rng.random::<f32>() * 2.0).collect();
        let v: Vec<f32> = (0..b * w).map(|_| rng.random::<f32>() - 0.5).collect();
        let s: Vec<f32> = (0..b * w)
            .map(|_| (rng.random::<f32>() < 0.1) as u8 as f32)
            .collect();
        let batch = Batch {
            x: &x,
            v: &v,
            s: &s,
            b,
            w,
        };
        let spec = LossSpec {
            skip: 5,
            pos_weight: 3.0,
            lambda: 0.5,
        };
        let (_, mut grad) = ft.loss_and_grad(&batch, spec);
        let grads: Vec<Vec<f32>> = grad.buffers_mut().iter().map(|g| g.to_vec()).collect();
        let eps = 1e-2f32;
        for (k, g) in grads.iter().enumerate() {
            let (i, &gi) = g
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .expect("non-empty");
            let mut at = |d: f32| {
                ft.model.buffers_mut()[k][i] += d;
                let l = ft.loss(&batch, spec).total;
                ft.model.buffers_mut()[k][i] -= d;
                l
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            assert!(
                (fd - gi as f64).abs() <= 0.03 * (gi as f64).abs() + 1e-4,
                "buffer {k}, entry {i}: analytic {gi}, central difference {fd}"
            );
        }
    }
}
