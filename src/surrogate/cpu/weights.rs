//! One surrogate's weights as plain `f32` buffers, in the layout every CPU kernel reads.

use crate::surrogate::Surrogate;
use burn::tensor::Tensor;

pub(crate) fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
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
    pub(crate) fn from_burn(conv: &crate::surrogate::model::CausalConv) -> Self {
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
