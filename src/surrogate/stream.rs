//! Streaming inference: the surrogate advanced one bin at a time for a batch of cells, with O(1) work
//! per step. Each causal convolution keeps its last `span` inputs and is applied as one matrix product
//! over its `kernel` taps; the LSTM carries (h, c). The published HNN surrogates re-ran their whole
//! window at every step; this does not.

use super::model::{CausalConv, Surrogate};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use std::collections::VecDeque;

/// One causal convolution in streaming form.
struct TapConv {
    /// `[kernel * in, out]`, row `j * in + c` = weight `[out, c, j]`.
    weight: Tensor<2>,
    bias: Tensor<2>,
    kernel: usize,
    dilation: usize,
    /// The last `span` inputs `[batch, in]`, oldest first.
    past: VecDeque<Tensor<2>>,
}

impl TapConv {
    fn new(conv: &CausalConv, batch: usize, device: &Device) -> Self {
        let [c_out, c_in, k] = conv.weight.dims();
        let weight = conv
            .weight
            .val()
            .permute([2, 1, 0])
            .reshape([k * c_in, c_out]);
        let bias = conv.bias.val().reshape([1, c_out]);
        let past = (0..conv.span())
            .map(|_| Tensor::<2>::zeros([batch, c_in], device))
            .collect();
        TapConv {
            weight,
            bias,
            kernel: k,
            dilation: conv.dilation,
            past,
        }
    }

    /// Output for the present input `x` (`[batch, in]`), then remembers `x`.
    fn step(&mut self, x: Tensor<2>) -> Tensor<2> {
        let span = self.past.len();
        // Kernel tap j multiplies the input (kernel - 1 - j) * dilation steps back.
        let taps: Vec<Tensor<2>> = (0..self.kernel)
            .map(|j| {
                let back = (self.kernel - 1 - j) * self.dilation;
                if back == 0 {
                    x.clone()
                } else {
                    self.past[span - back].clone()
                }
            })
            .collect();
        let y = Tensor::cat(taps, 1).matmul(self.weight.clone()) + self.bias.clone();
        if span > 0 {
            self.past.pop_front();
            self.past.push_back(x);
        }
        y
    }
}

struct BlockState {
    conv1: TapConv,
    conv2: TapConv,
    skip: Option<TapConv>,
}

/// Per-cell state of a batch of surrogate cells.
pub struct SurrogateState {
    blocks: Vec<BlockState>,
    h: Tensor<2>,
    c: Tensor<2>,
}

impl SurrogateState {
    /// A batch of `batch` cells at rest (zero input history, zero LSTM state), as the full forward pass
    /// starts. The model's weights are copied in: build a new state after changing them.
    pub fn new(model: &Surrogate, batch: usize, device: &Device) -> Self {
        let blocks = model
            .blocks
            .iter()
            .map(|b| BlockState {
                conv1: TapConv::new(&b.conv1, batch, device),
                conv2: TapConv::new(&b.conv2, batch, device),
                skip: b.skip.as_ref().map(|s| TapConv::new(s, batch, device)),
            })
            .collect();
        let hd = model.lstm.hidden;
        SurrogateState {
            blocks,
            h: Tensor::zeros([batch, hd], device),
            c: Tensor::zeros([batch, hd], device),
        }
    }

    /// Every tensor the state carries (ring buffers oldest first, block by block, then h and c), in an
    /// order [`SurrogateState::set_tensors`] reads back; lets a caller store the state at a point in
    /// time and restart from it, for example as gradient leaves.
    pub fn tensors(&self) -> Vec<Tensor<2>> {
        let mut out = Vec::new();
        for b in &self.blocks {
            for conv in [Some(&b.conv1), Some(&b.conv2), b.skip.as_ref()]
                .into_iter()
                .flatten()
            {
                out.extend(conv.past.iter().cloned());
            }
        }
        out.push(self.h.clone());
        out.push(self.c.clone());
        out
    }

    /// Replaces the state with tensors in the order of [`SurrogateState::tensors`] (same shapes).
    pub fn set_tensors(&mut self, it: &mut dyn Iterator<Item = Tensor<2>>) {
        let mut next = || it.next().expect("as many tensors as `tensors` gave");
        for b in &mut self.blocks {
            for conv in [Some(&mut b.conv1), Some(&mut b.conv2), b.skip.as_mut()]
                .into_iter()
                .flatten()
            {
                for slot in conv.past.iter_mut() {
                    *slot = next();
                }
            }
        }
        self.h = next();
        self.c = next();
    }

    /// Advances every cell by one bin: `x` is `[batch, channels]` (scaled input); returns the standardised
    /// voltage and the spike logit, each `[batch]`.
    pub fn step(&mut self, model: &Surrogate, x: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let [b, _] = x.dims();
        let mut y = x;
        for blk in self.blocks.iter_mut() {
            let z = relu(blk.conv1.step(y.clone()));
            let out = relu(blk.conv2.step(z));
            let res = match &mut blk.skip {
                Some(s) => s.step(y),
                None => y,
            };
            y = relu(out + res);
        }
        let gates = model.lstm.input.forward(y);
        let (h, c) = model.lstm.cell(gates, self.h.clone(), self.c.clone());
        self.h = h.clone();
        self.c = c;
        let v = model.voltage_head.forward(h.clone()).reshape([b]);
        let s = model.spike_head.forward(h).reshape([b]);
        (v, s)
    }
}
