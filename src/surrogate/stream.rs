//! Streaming inference: the surrogate advanced one bin at a time for a batch of cells, with O(1) work
//! per step. Each causal convolution keeps the last `span` samples of its input; the LSTM carries (h, c).
//! The published HNN surrogates re-ran their whole window at every step; this does not.

use super::model::Surrogate;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Per-cell state of a batch of surrogate cells.
pub struct SurrogateState {
    /// Per block, the histories `[batch, channels, span]` of conv1's and conv2's (and the skip's) inputs.
    hist: Vec<(Tensor<3>, Tensor<3>)>,
    h: Tensor<2>,
    c: Tensor<2>,
    batch: usize,
}

impl SurrogateState {
    /// A batch of `batch` cells at rest (zero input history, zero LSTM state), as the full forward pass starts.
    pub fn new(model: &Surrogate, batch: usize, device: &Device) -> Self {
        let mut hist = Vec::new();
        for b in &model.blocks {
            let c_in = b.conv1.weight.dims()[1];
            let c_mid = b.conv2.weight.dims()[1];
            hist.push((
                Tensor::<3>::zeros([batch, c_in, b.conv1.span()], device),
                Tensor::<3>::zeros([batch, c_mid, b.conv2.span()], device),
            ));
        }
        let hd = model.lstm.hidden;
        SurrogateState {
            hist,
            h: Tensor::zeros([batch, hd], device),
            c: Tensor::zeros([batch, hd], device),
            batch,
        }
    }

    /// Advances every cell by one bin: `x` is `[batch, channels]` (scaled input); returns the standardised
    /// voltage and the spike logit, each `[batch]`.
    pub fn step(&mut self, model: &Surrogate, x: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
        let b = self.batch;
        let mut y: Tensor<3> = x.unsqueeze_dim(2);
        for (block, (h1, h2)) in model.blocks.iter().zip(self.hist.iter_mut()) {
            let w1 = Tensor::cat(vec![h1.clone(), y.clone()], 2);
            let span1 = block.conv1.span();
            *h1 = w1.clone().narrow(2, 1, span1);
            let z = relu(block.conv1.forward_window(w1));
            let w2 = Tensor::cat(vec![h2.clone(), z], 2);
            let span2 = block.conv2.span();
            *h2 = w2.clone().narrow(2, 1, span2);
            let out = block.conv2.forward_window(w2);
            let res = match &block.skip {
                Some(s) => s.forward_window(y),
                None => y,
            };
            y = relu(relu(out) + res);
        }
        let feat: Tensor<2> = y.reshape([b, model.lstm.hidden_input()]);
        let gates = model.lstm.input.forward(feat);
        let (h, c) = model.lstm.cell(gates, self.h.clone(), self.c.clone());
        self.h = h.clone();
        self.c = c;
        let v = model.voltage_head.forward(h.clone()).reshape([b]);
        let s = model.spike_head.forward(h).reshape([b]);
        (v, s)
    }
}
