//! The TCN-LSTM: residual blocks of dilated causal convolutions (Bai et al. 2018), an LSTM written as one
//! input projection for the whole sequence plus one recurrent product per step (burn's stock LSTM grows
//! quadratically with sequence length under autodiff), and linear heads for voltage and spike logit.

use burn::module::{Initializer, Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Architecture of a surrogate; stored with every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurrogateArch {
    /// Input channels (receptor channels of the cell); taken from the dataset when training.
    #[serde(default)]
    pub n_inputs: usize,
    /// Channels of every TCN block.
    #[serde(default = "d_tcn")]
    pub tcn_channels: usize,
    #[serde(default = "d_kernel")]
    pub kernel: usize,
    /// One residual block per dilation.
    #[serde(default = "d_dilations")]
    pub dilations: Vec<usize>,
    #[serde(default = "d_hidden")]
    pub lstm_hidden: usize,
}

fn d_tcn() -> usize {
    32
}
fn d_kernel() -> usize {
    3
}
fn d_dilations() -> Vec<usize> {
    vec![1, 2, 4, 8]
}
fn d_hidden() -> usize {
    64
}

impl SurrogateArch {
    /// Defaults for a cell with `n_inputs` channels: 4 blocks of 32 channels, kernel 3, dilations 1-8, LSTM 64.
    pub fn new(n_inputs: usize) -> Self {
        SurrogateArch {
            n_inputs,
            tcn_channels: d_tcn(),
            kernel: d_kernel(),
            dilations: d_dilations(),
            lstm_hidden: d_hidden(),
        }
    }

    /// Bins an output depends on through the TCN: `1 + 2 (kernel - 1) sum(dilations)`.
    pub fn receptive_field(&self) -> usize {
        1 + 2 * (self.kernel - 1) * self.dilations.iter().sum::<usize>()
    }

    pub fn init(&self, device: &Device) -> Surrogate {
        let mut blocks = Vec::new();
        let mut c_in = self.n_inputs;
        for &d in &self.dilations {
            blocks.push(TcnBlock {
                conv1: CausalConv::new(c_in, self.tcn_channels, self.kernel, d, device),
                conv2: CausalConv::new(
                    self.tcn_channels,
                    self.tcn_channels,
                    self.kernel,
                    d,
                    device,
                ),
                skip: (c_in != self.tcn_channels)
                    .then(|| CausalConv::new(c_in, self.tcn_channels, 1, 1, device)),
            });
            c_in = self.tcn_channels;
        }
        let h = self.lstm_hidden;
        let model = Surrogate {
            blocks,
            lstm: FusedLstm {
                input: LinearConfig::new(self.tcn_channels, 4 * h).init(device),
                recurrent: Initializer::KaimingUniform {
                    gain: 1.0 / 3.0f64.sqrt(),
                    fan_out_only: false,
                }
                .init_with([h, 4 * h], Some(h), Some(4 * h), device),
                hidden: h,
            },
            voltage_head: LinearConfig::new(h, 1).init(device),
            spike_head: LinearConfig::new(h, 1).init(device),
        };
        // burn initialises a parameter lazily, from the device's generator, when it is first read. Read them all
        // now, in the order of the forward pass, so that a seed gives the same weights whichever code reads them
        // first (the fused training step reads the heads first, burn's forward pass the convolutions).
        if self.n_inputs > 0 {
            let _ = model.forward(Tensor::zeros([1, 1, self.n_inputs], device));
        }
        model
    }
}

/// A dilated convolution that sees only the present and the past (left padding).
#[derive(Module, Debug)]
pub struct CausalConv {
    /// `[out, in, kernel]`.
    pub weight: Param<Tensor<3>>,
    pub bias: Param<Tensor<1>>,
    pub kernel: usize,
    pub dilation: usize,
}

impl CausalConv {
    fn new(c_in: usize, c_out: usize, kernel: usize, dilation: usize, device: &Device) -> Self {
        let fan_in = c_in * kernel;
        let init = Initializer::KaimingUniform {
            gain: 1.0 / 3.0f64.sqrt(),
            fan_out_only: false,
        };
        let bound = 1.0 / (fan_in as f64).sqrt();
        CausalConv {
            weight: init.init_with(
                [c_out, c_in, kernel],
                Some(fan_in),
                Some(c_out * kernel),
                device,
            ),
            bias: Initializer::Uniform {
                min: -bound,
                max: bound,
            }
            .init([c_out], device),
            kernel,
            dilation,
        }
    }

    /// Past samples the convolution needs besides the present one.
    pub fn span(&self) -> usize {
        (self.kernel - 1) * self.dilation
    }

    /// `x`: `[batch, time, in]` -> `[batch, time, out]`, output `t` from inputs `t - span ..= t`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        // Time-major (`[batch, time, channels]`) and as one matrix product over the kernel's shifted
        // copies of the input (im2col): a single large product, which the CPU backends run on every
        // core, instead of a direct convolution and the transposes around it.
        let [b, t, c] = x.dims();
        let [c_out, _, k] = self.weight.dims();
        let span = self.span();
        let device = x.device();
        let padded = if span > 0 {
            Tensor::cat(vec![Tensor::zeros([b, span, c], &device), x], 1)
        } else {
            x
        };
        let cols = if k == 1 {
            padded
        } else {
            Tensor::cat(
                (0..k)
                    .map(|j| padded.clone().narrow(1, j * self.dilation, t))
                    .collect(),
                2,
            )
        };
        // Row `j * c + ci` of the matrix is weight `[out, ci, j]`, as the columns are ordered.
        let w = self.weight.val().permute([2, 1, 0]).reshape([k * c, c_out]);
        (cols.reshape([b * t, k * c]).matmul(w) + self.bias.val().reshape([1, c_out]))
            .reshape([b, t, c_out])
    }
}

/// Two causal convolutions with ReLU and a residual connection.
#[derive(Module, Debug)]
pub struct TcnBlock {
    pub conv1: CausalConv,
    pub conv2: CausalConv,
    /// 1x1 projection of the residual when the channel count changes.
    pub skip: Option<CausalConv>,
}

impl TcnBlock {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let y = relu(self.conv2.forward(relu(self.conv1.forward(x.clone()))));
        let res = match &self.skip {
            Some(s) => s.forward(x),
            None => x,
        };
        relu(y + res)
    }
}

/// `tanh(x) = 2 sigmoid(2x) - 1`: on the CPU backends tanh goes through the C library's scalar
/// `tanhf` (an `expm1f` per element), which made it the single largest cost of a surrogate network's
/// step; the sigmoid is a plain `exp` (burn's, numerically stable for any input).
fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    sigmoid(x.mul_scalar(2.0)).mul_scalar(2.0).sub_scalar(1.0)
}

/// LSTM with gates ordered (input, forget, cell, output).
#[derive(Module, Debug)]
pub struct FusedLstm {
    pub input: Linear,
    /// `[hidden, 4 hidden]`.
    pub recurrent: Param<Tensor<2>>,
    pub hidden: usize,
}

impl FusedLstm {
    /// `[1, 4H]`: 1 on the input, forget and output gates, 2 on the cell gate. Scaling the gates by it
    /// before one sigmoid gives `sigmoid(2u)` for the cell gate, and `tanh(u) = 2 sigmoid(2u) - 1`.
    pub fn gate_scale(&self, device: &Device) -> Tensor<2> {
        let hd = self.hidden;
        let v: Vec<f32> = (0..4 * hd)
            .map(|j| if j / hd == 2 { 2.0 } else { 1.0 })
            .collect();
        Tensor::<1>::from_floats(v.as_slice(), device).reshape([1, 4 * hd])
    }

    /// One step from pre-computed input gates `[batch, 4H]`; returns the new `(h, c)`.
    pub fn cell(&self, gates_x: Tensor<2>, h: Tensor<2>, c: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let scale = self.gate_scale(&gates_x.device());
        self.cell_scaled(gates_x, h, c, &scale)
    }

    /// [`Self::cell`] with the gate scale made once per sequence. Under autodiff every operation of a
    /// step is a graph node with its own allocation and bookkeeping, which is what a training step
    /// spends most of its time on; so the step is written in as few operations as it can be: one
    /// sigmoid (burn's own, one node) for all four gates and the cell gate's tanh, and tanh of the cell
    /// state from the same sigmoid.
    fn cell_scaled(
        &self,
        gates_x: Tensor<2>,
        h: Tensor<2>,
        c: Tensor<2>,
        scale: &Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let gates = gates_x + h.matmul(self.recurrent.val());
        let [_, four_h] = gates.dims();
        let hd = four_h / 4;
        let s = sigmoid(gates * scale.clone());
        let (i, f, g, o) = (
            s.clone().narrow(1, 0, hd),
            s.clone().narrow(1, hd, hd),
            s.clone().narrow(1, 2 * hd, hd),
            s.narrow(1, 3 * hd, hd),
        );
        let c = f * c + i * g.mul_scalar(2.0).sub_scalar(1.0);
        let h = o * tanh(c.clone());
        (h, c)
    }

    /// `x`: `[batch, time, features]` -> hidden states `[batch, time, hidden]`, starting from zeros.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let device = x.device();
        let gates_x = self.input.forward(x);
        let mut h = Tensor::<2>::zeros([b, self.hidden], &device);
        let mut c = Tensor::<2>::zeros([b, self.hidden], &device);
        let mut out = Vec::with_capacity(t);
        let scale = self.gate_scale(&device);
        self.run(gates_x, &mut h, &mut c, &scale, &mut out);
        Tensor::stack(out, 1)
    }

    /// Steps through `gates_x` (`[batch, time, 4H]`), splitting time in halves until the pieces are short:
    /// under autodiff every slice allocates a gradient the size of its parent, so slicing single steps
    /// out of the whole sequence costs O(T^2), out of halves O(T log T).
    fn run(
        &self,
        gates_x: Tensor<3>,
        h: &mut Tensor<2>,
        c: &mut Tensor<2>,
        scale: &Tensor<2>,
        out: &mut Vec<Tensor<2>>,
    ) {
        const LEAF: usize = 16;
        let [b, t, g] = gates_x.dims();
        if t <= LEAF {
            for step in 0..t {
                let gs = gates_x.clone().narrow(1, step, 1).reshape([b, g]);
                let (h2, c2) = self.cell_scaled(gs, h.clone(), c.clone(), scale);
                *h = h2;
                *c = c2;
                out.push(h.clone());
            }
        } else {
            let half = t / 2;
            self.run(gates_x.clone().narrow(1, 0, half), h, c, scale, out);
            self.run(gates_x.narrow(1, half, t - half), h, c, scale, out);
        }
    }
}

/// The surrogate cell model.
#[derive(Module, Debug)]
pub struct Surrogate {
    pub blocks: Vec<TcnBlock>,
    pub lstm: FusedLstm,
    pub voltage_head: Linear,
    pub spike_head: Linear,
}

impl Surrogate {
    /// `x`: scaled inputs `[batch, time, channels]` -> (standardised voltage, spike logit), each `[batch, time]`.
    pub fn forward(&self, x: Tensor<3>) -> (Tensor<2>, Tensor<2>) {
        let mut y = x;
        for b in &self.blocks {
            y = b.forward(y);
        }
        let h = self.lstm.forward(y);
        let [b, t, _] = h.dims();
        let v = self.voltage_head.forward(h.clone()).reshape([b, t]);
        let s = self.spike_head.forward(h).reshape([b, t]);
        (v, s)
    }
}
