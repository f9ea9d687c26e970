//! The surrogate network engine fused for the CPU: the same network as [`super::SurrogateNetwork`]
//! (same surrogates, coupling, drive and spike rule), stepped on plain `f32` buffers with matrix
//! products from the `gemm` crate, and differentiated by a hand-written backward pass instead of
//! burn's autodiff.
//!
//! Why: one bin of the default column is ~200 small burn operations; on the CPU each costs an
//! allocation and, under autodiff, a graph node behind a process-wide lock, so an iteration spent
//! most of its time in bookkeeping and could not use a second core. Here the only gradient needed is
//! that of the connection gains (the surrogates are frozen), so the backward pass propagates input
//! gradients only: no weight gradients, no graph. The two engines agree to float rounding
//! (`tests/netopt_grad.rs`), and the burn engine stays for GPUs and as the reference.
//!
//! Time runs in chunks: a chunk's forward pass keeps every activation of its bins (a [`Tape`]); the
//! backward pass walks the tape last bin first, carrying the gradient of the network state
//! ([`FusedState`]) from the chunk after it.

use super::engine::SpikeMode;
use crate::surrogate::Surrogate;
use crate::surrogate::cpu::kernels::{
    exp, lstm_cells, lstm_cells_backward, mm, mm_bt, onset, onset_grad,
};
use crate::surrogate::cpu::weights::{Conv, Model};

/// The convolution at one bin of a [`Series`]: the kernels' row form with the `n` cells as rows.
trait ConvAtBin {
    /// `out[n, c_out]` = the convolution at bin `t` of `src`.
    fn forward_bin(&self, src: &Series, t: usize, n: usize, out: &mut [f32]);
    /// Adds the input gradient of the convolution at bin `t` to `dsrc`, from `dout[n, c_out]`.
    fn backward_bin(&self, dout: &[f32], dsrc: &mut Series, t: usize, n: usize);
}

impl ConvAtBin for Conv {
    fn forward_bin(&self, src: &Series, t: usize, n: usize, out: &mut [f32]) {
        let at = |j| (src.pad + t - self.back(j)) * src.width;
        self.forward_rows(&src.data, at, n, out, self.c_out);
    }
    fn backward_bin(&self, dout: &[f32], dsrc: &mut Series, t: usize, n: usize) {
        let (pad, width) = (dsrc.pad, dsrc.width);
        let at = |j| (pad + t - self.back(j)) * width;
        self.backward_input_rows(dout, n, &mut dsrc.data, at);
    }
}

impl Model {
    /// Widths (channels) and pads (bins of history) of the series: the scaled input, then per block
    /// its first convolution's output and the block's output.
    fn series_shapes(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut c = self.n_inputs;
        for b in &self.blocks {
            out.push((c, b.conv1.span()));
            out.push((b.conv1.c_out, b.conv2.span()));
            c = b.conv2.c_out;
        }
        out.push((c, 0));
        out
    }
}

/// Rows of `width` values per bin, with `pad` rows of history before the chunk's first bin.
#[derive(Clone)]
struct Series {
    pad: usize,
    width: usize,
    data: Vec<f32>,
}

impl Series {
    fn new(pad: usize, width: usize, bins: usize, history: &[f32]) -> Self {
        let mut s = Series::zeros(pad, width, bins);
        s.data[..pad * width].copy_from_slice(history);
        s
    }
    fn zeros(pad: usize, width: usize, bins: usize) -> Self {
        Series {
            pad,
            width,
            data: vec![0f32; (pad + bins) * width],
        }
    }
    fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.width..(r + 1) * self.width]
    }
    fn row_mut(&mut self, r: usize) -> &mut [f32] {
        &mut self.data[r * self.width..(r + 1) * self.width]
    }
    /// The last `pad` rows: the history the next chunk starts from.
    fn tail(&self) -> Vec<f32> {
        self.data[self.data.len() - self.pad * self.width..].to_vec()
    }
    fn add_tail(&mut self, g: &[f32]) {
        let at = self.data.len() - self.pad * self.width;
        for (d, g) in self.data[at..].iter_mut().zip(g) {
            *d += g;
        }
    }
    fn head(&self) -> Vec<f32> {
        self.data[..self.pad * self.width].to_vec()
    }
}

/// One cell type of the network.
struct CellType {
    start: usize,
    n: usize,
    model: Model,
    /// The datasets' input transform and output scaling.
    scaling: crate::surrogate::train::Scaling,
    threshold: f32,
    /// The spike surrogate's width in logit units (`SurrogateMeta::spike_width`).
    width: f32,
}

/// All synapses of one delay (see the burn engine's `Link`).
struct Link {
    delay: usize,
    k: usize,
    /// `[N, K]`, the connectome's weights.
    w: Vec<f32>,
    group: Vec<usize>,
    /// `post * C + channel`.
    target: Vec<usize>,
    /// Per column, its synapse entries: (presynaptic cell, index of the per-synapse log-weight).
    col_entries: Vec<Vec<(usize, usize)>>,
}

/// Each link's weights for one window, per-synapse log-weights applied: `[N, K]` and `[K, N]`.
pub(crate) struct LinkWeights {
    w: Vec<Vec<f32>>,
    wt: Vec<Vec<f32>>,
}

/// What carries from one bin to the next, per cell type, and the spikes in flight; the same shape
/// holds the gradient with respect to it.
#[derive(Clone)]
pub(crate) struct FusedState {
    types: Vec<TypeState>,
    /// The last `max_delay` spike vectors `[N]`, oldest first.
    hist: Vec<f32>,
}

#[derive(Clone)]
struct TypeState {
    tails: Vec<Vec<f32>>,
    h: Vec<f32>,
    c: Vec<f32>,
    soft: Vec<f32>,
    hard: Vec<f32>,
    /// The rate sigmoid of the previous bin (see [`TypeTape::rate`]).
    rate: Vec<f32>,
}

/// Everything a chunk's backward pass reads, per cell type.
struct TypeTape {
    series: Vec<Series>,
    /// Per block: the second convolution after its ReLU `[T, n * c]`.
    o: Vec<Vec<f32>>,
    x_raw: Vec<f32>,
    /// Gate activations `(i, f, u, o)` `[T, n * 4H]`.
    gates: Vec<f32>,
    /// `[T + 1, n * H]`, row 0 from the chunk's start state.
    c: Vec<f32>,
    h: Vec<f32>,
    tc: Vec<f32>,
    /// `[T + 1, n]`, row 0 from the start state.
    soft: Vec<f32>,
    /// `[T + 1, n]`: `sigmoid((logit - threshold) / width)`, a spike probability in calibrated logit
    /// widths (independent of the gradient surrogate's beta) whose onsets' gradient the hard spike
    /// counts carry: a silent population still learns how to fire.
    rate: Vec<f32>,
    hard_end: Vec<f32>,
    /// Somatic voltage (mV) `[T, n]`.
    v: Vec<f32>,
}

/// A chunk's forward pass: activations, spikes (`hist` rows from `pad`), coupling sums and signal.
pub(crate) struct Tape {
    types: Vec<TypeTape>,
    hist: Series,
    /// Per link `[T, K]`: the presynaptic spikes times the weights, before the gains.
    coupling: Vec<Vec<f32>>,
    pub signal: Vec<f32>,
    bins: usize,
}

impl Tape {
    /// The spike vector `[N]` of bin `t` (hard onsets, or the smooth spikes).
    pub fn spikes(&self, t: usize) -> &[f32] {
        self.hist.row(self.hist.pad + t)
    }
    pub fn bins(&self) -> usize {
        self.bins
    }
}

/// The fused engine's copy of a wired network.
pub(crate) struct FusedNet {
    types: Vec<CellType>,
    links: Vec<Link>,
    n: usize,
    nc: usize,
    max_delay: usize,
    n_groups: usize,
}

/// A cell type as the burn engine holds it: its range of engine cells, its surrogate and meta.
pub(crate) struct TypeSource<'a> {
    pub range: std::ops::Range<usize>,
    pub model: &'a Surrogate,
    pub meta: &'a crate::surrogate::train::SurrogateMeta,
}

/// One delay's synapses as the burn engine gathers them: `(delay, weights [N, K], group, target)`.
pub(crate) type LinkSource = (usize, Vec<f32>, Vec<usize>, Vec<usize>);

impl FusedNet {
    pub fn new(
        types: &[TypeSource],
        links: Vec<LinkSource>,
        synapses: &[(usize, usize, usize)],
        n: usize,
        nc: usize,
        max_delay: usize,
        n_groups: usize,
    ) -> Self {
        let types = types
            .iter()
            .map(|t| CellType {
                start: t.range.start,
                n: t.range.len(),
                model: Model::from_burn(t.model),
                scaling: t.meta.scaling.clone(),
                threshold: t.meta.spike_logit_threshold,
                width: t.meta.spike_width(),
            })
            .collect();
        let mut links: Vec<Link> = links
            .into_iter()
            .map(|(delay, w, group, target)| Link {
                delay,
                k: group.len(),
                w,
                col_entries: vec![Vec::new(); group.len()],
                group,
                target,
            })
            .collect();
        for (e, &(link, pre, col)) in synapses.iter().enumerate() {
            links[link].col_entries[col].push((pre, e));
        }
        FusedNet {
            types,
            links,
            n,
            nc,
            max_delay,
            n_groups,
        }
    }

    /// The network at rest (what the burn engine's `rest` holds), or a zero gradient of the state.
    pub fn rest(&self) -> FusedState {
        FusedState {
            types: self
                .types
                .iter()
                .map(|ty| {
                    let hd = ty.model.hidden;
                    TypeState {
                        tails: ty
                            .model
                            .series_shapes()
                            .iter()
                            .map(|&(w, pad)| vec![0f32; pad * w * ty.n])
                            .collect(),
                        h: vec![0f32; ty.n * hd],
                        c: vec![0f32; ty.n * hd],
                        soft: vec![0f32; ty.n],
                        hard: vec![0f32; ty.n],
                        rate: vec![0f32; ty.n],
                    }
                })
                .collect(),
            hist: vec![0f32; self.max_delay * self.n],
        }
    }

    /// The links' weights for a window, with `exp(log_w)` per synapse if given.
    pub fn weights(&self, log_w: Option<&[f32]>) -> LinkWeights {
        let n = self.n;
        let w: Vec<Vec<f32>> = self
            .links
            .iter()
            .map(|l| {
                let mut w = l.w.clone();
                if let Some(u) = log_w {
                    for (col, entries) in l.col_entries.iter().enumerate() {
                        for &(pre, e) in entries {
                            w[pre * l.k + col] *= u[e].exp();
                        }
                    }
                }
                w
            })
            .collect();
        let wt = self
            .links
            .iter()
            .zip(&w)
            .map(|(l, w)| {
                let mut wt = vec![0f32; l.k * n];
                for i in 0..n {
                    for j in 0..l.k {
                        wt[j * n + i] = w[i * l.k + j];
                    }
                }
                wt
            })
            .collect();
        LinkWeights { w, wt }
    }

    /// Each link's gain per column, from the log-gains of the groups.
    pub fn link_gains(&self, log_gain: &[f32]) -> Vec<Vec<f32>> {
        self.links
            .iter()
            .map(|l| l.group.iter().map(|&g| log_gain[g].exp()).collect())
            .collect()
    }

    /// Runs the bins of `drive` (one `[N * C]` per bin) from `st`: returns the chunk's tape and the
    /// state after it.
    pub fn forward(
        &self,
        st: &FusedState,
        drive: &[Vec<f32>],
        gains: &[Vec<f32>],
        lw: &LinkWeights,
        mode: SpikeMode,
        signal_w: &[f32],
    ) -> (Tape, FusedState) {
        let bins = drive.len();
        let (n_all, nc) = (self.n, self.nc);
        let mut hist = Series::new(self.max_delay, n_all, bins, &st.hist);
        let mut tapes: Vec<TypeTape> = self
            .types
            .iter()
            .zip(&st.types)
            .map(|(ty, ts)| ty.new_tape(ts, bins))
            .collect();
        let mut coupling: Vec<Vec<f32>> =
            self.links.iter().map(|l| vec![0f32; bins * l.k]).collect();
        let mut signal = vec![0f32; bins];
        let mut x = vec![0f32; n_all * nc];
        let mut scratch = Scratch::default();
        for t in 0..bins {
            x.copy_from_slice(&drive[t]);
            for (((l, a), g), w) in self.links.iter().zip(&mut coupling).zip(gains).zip(&lw.w) {
                let past = hist.row(hist.pad + t - l.delay);
                let a = &mut a[t * l.k..(t + 1) * l.k];
                for (i, &s) in past.iter().enumerate() {
                    if s != 0.0 {
                        for (a, w) in a.iter_mut().zip(&w[i * l.k..(i + 1) * l.k]) {
                            *a += s * w;
                        }
                    }
                }
                for ((&tgt, &a), &g) in l.target.iter().zip(a.iter()).zip(g) {
                    x[tgt] += a * g;
                }
            }
            let row = hist.pad + t;
            let s_row = hist.row_mut(row);
            for (ty, tape) in self.types.iter().zip(&mut tapes) {
                signal[t] += ty.forward_bin(
                    tape,
                    t,
                    &x[ty.start * nc..(ty.start + ty.n) * nc],
                    mode,
                    &mut s_row[ty.start..ty.start + ty.n],
                    &signal_w[ty.start..ty.start + ty.n],
                    &mut scratch,
                );
            }
        }
        let next = FusedState {
            types: self
                .types
                .iter()
                .zip(&tapes)
                .map(|(ty, tp)| ty.end_state(tp, bins))
                .collect(),
            hist: hist.tail(),
        };
        (
            Tape {
                types: tapes,
                hist,
                coupling,
                signal,
                bins,
            },
            next,
        )
    }

    /// Back-propagates one chunk: `d_end` is the gradient of the state after the chunk, `d_signal` of
    /// each bin's signal, `d_spike` of every cell's spikes in every bin (the spike-count terms).
    /// Adds the gains' gradient (per link column) to `d_gain`, and that of the per-synapse
    /// log-weights to `d_log_w` if given; returns the gradient of the state at the chunk's start.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        tape: &Tape,
        d_end: &FusedState,
        d_signal: &[f32],
        d_expected: &[f32],
        gains: &[Vec<f32>],
        lw: &LinkWeights,
        mode: SpikeMode,
        signal_w: &[f32],
        d_gain: &mut [Vec<f32>],
        mut d_log_w: Option<&mut [f32]>,
    ) -> FusedState {
        let bins = tape.bins;
        let (n_all, nc) = (self.n, self.nc);
        let mut dhist = Series::zeros(self.max_delay, n_all, bins);
        dhist.add_tail(&d_end.hist);
        let mut dtypes: Vec<TypeGrad> = self
            .types
            .iter()
            .zip(&tape.types)
            .zip(&d_end.types)
            .map(|((_, tp), de)| TypeGrad::new(tp, de, bins))
            .collect();
        let mut dx = vec![0f32; n_all * nc];
        let mut ds = vec![0f32; n_all];
        let mut scratch = Scratch::default();
        // The counts' gradient: with hard spikes it goes to the spike probability's onsets (see
        // `TypeTape::rate`); smooth spikes are their own counts.
        let smooth = matches!(mode, SpikeMode::Smooth { .. });
        let zeros = vec![0f32; n_all];
        let d_exp = if smooth { &zeros } else { d_expected };
        for t in (0..bins).rev() {
            ds.copy_from_slice(dhist.row(dhist.pad + t));
            if smooth {
                for (d, g) in ds.iter_mut().zip(d_expected) {
                    *d += g;
                }
            }
            for ((ty, tp), dg) in self.types.iter().zip(&tape.types).zip(&mut dtypes) {
                ty.backward_bin(
                    tp,
                    dg,
                    t,
                    &ds[ty.start..ty.start + ty.n],
                    &d_exp[ty.start..ty.start + ty.n],
                    d_signal[t],
                    &signal_w[ty.start..ty.start + ty.n],
                    mode,
                    &mut dx[ty.start * nc..(ty.start + ty.n) * nc],
                    &mut scratch,
                );
            }
            for ((((l, a), g), dg), (w, wt)) in self
                .links
                .iter()
                .zip(&tape.coupling)
                .zip(gains)
                .zip(d_gain.iter_mut())
                .zip(lw.w.iter().zip(&lw.wt))
            {
                let a = &a[t * l.k..(t + 1) * l.k];
                let r = dhist.pad + t - l.delay;
                let past = tape.hist.row(r);
                let dpast = dhist.row_mut(r);
                for k in 0..l.k {
                    let d = dx[l.target[k]];
                    if d != 0.0 {
                        dg[k] += d * a[k];
                        let coeff = d * g[k];
                        for (dp, w) in dpast.iter_mut().zip(&wt[k * n_all..(k + 1) * n_all]) {
                            *dp += coeff * w;
                        }
                        // d/du of w exp(u) is the weight itself.
                        if let Some(du) = d_log_w.as_deref_mut() {
                            for &(pre, e) in &l.col_entries[k] {
                                du[e] += past[pre] * coeff * w[pre * l.k + k];
                            }
                        }
                    }
                }
            }
        }
        FusedState {
            types: dtypes.into_iter().map(|d| d.into_start()).collect(),
            hist: dhist.head(),
        }
    }

    /// The log-gains' gradient from the per-column gradient of the gains.
    pub fn group_gradient(&self, d_gain: &[Vec<f32>], gains: &[Vec<f32>]) -> Vec<f32> {
        let mut out = vec![0f32; self.n_groups];
        for ((l, dg), g) in self.links.iter().zip(d_gain).zip(gains) {
            for k in 0..l.k {
                out[l.group[k]] += dg[k] * g[k];
            }
        }
        out
    }

    pub fn zero_gain_gradient(&self) -> Vec<Vec<f32>> {
        self.links.iter().map(|l| vec![0f32; l.k]).collect()
    }
}

/// Work buffers reused across bins.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

fn sized(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.resize(len, 0.0);
    &mut v[..len]
}

impl CellType {
    fn new_tape(&self, st: &TypeState, bins: usize) -> TypeTape {
        let n = self.n;
        let hd = self.model.hidden;
        let series = self
            .model
            .series_shapes()
            .iter()
            .zip(&st.tails)
            .map(|(&(w, pad), tail)| Series::new(pad, w * n, bins, tail))
            .collect();
        let mut c = vec![0f32; (bins + 1) * n * hd];
        c[..n * hd].copy_from_slice(&st.c);
        let mut h = vec![0f32; (bins + 1) * n * hd];
        h[..n * hd].copy_from_slice(&st.h);
        let mut soft = vec![0f32; (bins + 1) * n];
        soft[..n].copy_from_slice(&st.soft);
        let mut rate = vec![0f32; (bins + 1) * n];
        rate[..n].copy_from_slice(&st.rate);
        TypeTape {
            series,
            o: self
                .model
                .blocks
                .iter()
                .map(|b| vec![0f32; bins * n * b.conv2.c_out])
                .collect(),
            x_raw: vec![0f32; bins * n * self.model.n_inputs],
            gates: vec![0f32; bins * n * 4 * hd],
            c,
            h,
            tc: vec![0f32; bins * n * hd],
            soft,
            rate,
            hard_end: st.hard.clone(),
            v: vec![0f32; bins * n],
        }
    }

    fn end_state(&self, tp: &TypeTape, bins: usize) -> TypeState {
        let nh = self.n * self.model.hidden;
        TypeState {
            tails: tp.series.iter().map(Series::tail).collect(),
            h: tp.h[bins * nh..].to_vec(),
            c: tp.c[bins * nh..].to_vec(),
            soft: tp.soft[bins * self.n..].to_vec(),
            hard: tp.hard_end.clone(),
            rate: tp.rate[bins * self.n..].to_vec(),
        }
    }

    /// One bin: writes the spikes to `s_out` and returns this type's share of the signal.
    #[allow(clippy::too_many_arguments)]
    fn forward_bin(
        &self,
        tp: &mut TypeTape,
        t: usize,
        x: &[f32],
        mode: SpikeMode,
        s_out: &mut [f32],
        signal_w: &[f32],
        sc: &mut Scratch,
    ) -> f32 {
        let (n, m) = (self.n, &self.model);
        let nc = m.n_inputs;
        let hd = m.hidden;
        tp.x_raw[t * n * nc..(t + 1) * n * nc].copy_from_slice(x);
        {
            let y0 = &mut tp.series[0];
            let row = y0.pad + t;
            for (i, (y, &v)) in y0.row_mut(row).iter_mut().zip(x).enumerate() {
                *y = self.scaling.input(v, i % nc);
            }
        }
        for (b, blk) in m.blocks.iter().enumerate() {
            let (yin, z, yout) = (2 * b, 2 * b + 1, 2 * b + 2);
            let c1 = blk.conv1.c_out;
            let zb = sized(&mut sc.a, n * c1);
            blk.conv1.forward_bin(&tp.series[yin], t, n, zb);
            zb.iter_mut().for_each(|v| *v = v.max(0.0));
            let zr = tp.series[z].pad + t;
            tp.series[z].row_mut(zr).copy_from_slice(zb);
            let c2 = blk.conv2.c_out;
            let ob = sized(&mut sc.b, n * c2);
            blk.conv2.forward_bin(&tp.series[z], t, n, ob);
            ob.iter_mut().for_each(|v| *v = v.max(0.0));
            tp.o[b][t * n * c2..(t + 1) * n * c2].copy_from_slice(ob);
            let res = sized(&mut sc.c, n * c2);
            match &blk.skip {
                Some(s) => s.forward_bin(&tp.series[yin], t, n, res),
                None => {
                    let r = tp.series[yin].pad + t;
                    res.copy_from_slice(tp.series[yin].row(r));
                }
            }
            let yr = tp.series[yout].pad + t;
            for ((y, o), r) in tp.series[yout].row_mut(yr).iter_mut().zip(&*ob).zip(&*res) {
                *y = (o + r).max(0.0);
            }
        }
        // LSTM.
        let last = tp.series.len() - 1;
        let g4 = 4 * hd;
        let gates = &mut tp.gates[t * n * g4..(t + 1) * n * g4];
        mm(
            gates,
            tp.series[last].row(t),
            &m.w_in,
            n,
            m.tcn_out(),
            g4,
            false,
        );
        let (h_prev, h_next) = tp.h.split_at_mut((t + 1) * n * hd);
        let h_prev = &h_prev[t * n * hd..];
        mm(gates, h_prev, &m.w_rec, n, hd, g4, true);
        let (c_prev, c_next) = tp.c.split_at_mut((t + 1) * n * hd);
        let c_prev = &c_prev[t * n * hd..];
        let c_new = &mut c_next[..n * hd];
        let h_new = &mut h_next[..n * hd];
        let tc = &mut tp.tc[t * n * hd..(t + 1) * n * hd];
        lstm_cells(gates, &m.b_in, c_prev, c_new, tc, h_new, hd);
        // Heads, spikes and signal.
        let heads = sized(&mut sc.a, n * 2);
        mm(heads, h_new, &m.w_head, n, hd, 2, false);
        let beta = mode.beta() / self.width;
        let (soft_prev, soft_next) = tp.soft.split_at_mut((t + 1) * n);
        let soft_prev = &soft_prev[t * n..];
        let mut sig = 0f32;
        for i in 0..n {
            let v = (heads[2 * i] + m.b_head[0]) * self.scaling.v_std + self.scaling.v_mean;
            tp.v[t * n + i] = v;
            let logit = heads[2 * i + 1] + m.b_head[1] - self.threshold;
            sig += v * signal_w[i];
            let soft = 1.0 / (1.0 + exp(-(logit * beta)));
            soft_next[i] = soft;
            tp.rate[(t + 1) * n + i] = 1.0 / (1.0 + exp(-(logit / self.width)));
            match mode {
                SpikeMode::StraightThrough { .. } => {
                    let hard = if logit > 0.0 { 1.0 } else { 0.0 };
                    s_out[i] = onset(hard, tp.hard_end[i]);
                    tp.hard_end[i] = hard;
                }
                SpikeMode::Smooth { .. } => {
                    s_out[i] = onset(soft, soft_prev[i]);
                    tp.hard_end[i] = soft;
                }
            }
        }
        sig
    }

    /// One bin backward: `ds` is the gradient of this type's spikes, `d_sig` of the bin's signal;
    /// writes the gradient of the raw input to `dx`.
    #[allow(clippy::too_many_arguments)]
    fn backward_bin(
        &self,
        tp: &TypeTape,
        dg: &mut TypeGrad,
        t: usize,
        ds: &[f32],
        d_exp: &[f32],
        d_sig: f32,
        signal_w: &[f32],
        mode: SpikeMode,
        dx: &mut [f32],
        sc: &mut Scratch,
    ) {
        let (n, m) = (self.n, &self.model);
        let (hd, nc) = (m.hidden, m.n_inputs);
        let g4 = 4 * hd;
        let beta = mode.beta() / self.width;
        // Spikes -> logits; signal -> voltages.
        let dhead = sized(&mut sc.a, n * 2);
        for i in 0..n {
            let soft = tp.soft[(t + 1) * n + i];
            let soft_prev = tp.soft[t * n + i];
            let (d_now, d_prev) = onset_grad(soft, soft_prev, ds[i]);
            let dsoft = dg.soft[i] + d_now;
            dg.soft[i] = d_prev;
            let r = tp.rate[(t + 1) * n + i];
            let (d_now, d_prev) = onset_grad(r, tp.rate[t * n + i], d_exp[i]);
            let dr = dg.rate[i] + d_now;
            dg.rate[i] = d_prev;
            dhead[2 * i] = d_sig * signal_w[i] * self.scaling.v_std;
            dhead[2 * i + 1] = dsoft * beta * soft * (1.0 - soft) + dr * r * (1.0 - r) / self.width;
        }
        mm_bt(&mut dg.h, dhead, &m.w_head, n, 2, hd, true);
        // LSTM cell.
        let gates = &tp.gates[t * n * g4..(t + 1) * n * g4];
        let c_prev = &tp.c[t * n * hd..(t + 1) * n * hd];
        let tc = &tp.tc[t * n * hd..(t + 1) * n * hd];
        let dgates = sized(&mut sc.b, n * g4);
        dgates.copy_from_slice(gates);
        lstm_cells_backward(dgates, c_prev, tc, &dg.h, &mut dg.c, hd);
        mm_bt(&mut dg.h, dgates, &m.w_rec, n, g4, hd, false);
        let last = dg.series.len() - 1;
        mm_bt(
            dg.series[last].row_mut(t),
            dgates,
            &m.w_in,
            n,
            g4,
            m.tcn_out(),
            true,
        );
        // TCN blocks, last first.
        for (b, blk) in m.blocks.iter().enumerate().rev() {
            let (yin, z, yout) = (2 * b, 2 * b + 1, 2 * b + 2);
            let c2 = blk.conv2.c_out;
            let ry = tp.series[yout].pad + t;
            let y = tp.series[yout].row(ry);
            let o = &tp.o[b][t * n * c2..(t + 1) * n * c2];
            let d_pre = sized(&mut sc.a, n * c2);
            let d_o = sized(&mut sc.c, n * c2);
            let dy = dg.series[yout].row(ry);
            for j in 0..n * c2 {
                let v = if y[j] > 0.0 { dy[j] } else { 0.0 };
                d_pre[j] = v;
                d_o[j] = if o[j] > 0.0 { v } else { 0.0 };
            }
            blk.conv2.backward_bin(d_o, &mut dg.series[z], t, n);
            match &blk.skip {
                Some(s) => s.backward_bin(d_pre, &mut dg.series[yin], t, n),
                None => {
                    let r = dg.series[yin].pad + t;
                    for (d, p) in dg.series[yin].row_mut(r).iter_mut().zip(&*d_pre) {
                        *d += p;
                    }
                }
            }
            let rz = tp.series[z].pad + t;
            let dz = sized(&mut sc.c, n * blk.conv1.c_out);
            for ((d, &g), &zv) in dz
                .iter_mut()
                .zip(dg.series[z].row(rz))
                .zip(tp.series[z].row(rz))
            {
                *d = if zv > 0.0 { g } else { 0.0 };
            }
            blk.conv1.backward_bin(dz, &mut dg.series[yin], t, n);
        }
        // Input transform (its slope at x = 0 included).
        let r0 = dg.series[0].pad + t;
        let dy0 = dg.series[0].row(r0);
        let xr = &tp.x_raw[t * n * nc..(t + 1) * n * nc];
        for (j, ((d, &dy), &x)) in dx.iter_mut().zip(dy0).zip(xr).enumerate() {
            *d = dy * self.scaling.input_grad(x, j % nc);
        }
    }
}

/// The gradient of one cell type's state while a chunk is back-propagated.
struct TypeGrad {
    series: Vec<Series>,
    h: Vec<f32>,
    c: Vec<f32>,
    soft: Vec<f32>,
    rate: Vec<f32>,
}

impl TypeGrad {
    fn new(tp: &TypeTape, d_end: &TypeState, bins: usize) -> Self {
        let series = tp
            .series
            .iter()
            .zip(&d_end.tails)
            .map(|(s, tail)| {
                let mut g = Series::zeros(s.pad, s.width, bins);
                g.add_tail(tail);
                g
            })
            .collect();
        TypeGrad {
            series,
            h: d_end.h.clone(),
            c: d_end.c.clone(),
            soft: d_end.soft.clone(),
            rate: d_end.rate.clone(),
        }
    }
    fn into_start(self) -> TypeState {
        let soft = self.soft;
        TypeState {
            tails: self.series.iter().map(Series::head).collect(),
            hard: vec![0f32; soft.len()],
            h: self.h,
            c: self.c,
            soft,
            rate: self.rate,
        }
    }
}

/// One surrogate stepped for a batch of independent cells on the fused CPU path: streaming inference
/// without burn's per-operation overhead, with the outputs of [`crate::surrogate::SurrogateState`]
/// (a test holds them equal).
pub struct FusedStream {
    net: FusedNet,
    state: FusedState,
    batch: usize,
}

impl FusedStream {
    pub fn new(
        model: &Surrogate,
        meta: &crate::surrogate::train::SurrogateMeta,
        batch: usize,
    ) -> Self {
        let nc = meta.scaling.input_scale.len();
        let net = FusedNet::new(
            &[TypeSource {
                range: 0..batch,
                model,
                meta,
            }],
            Vec::new(),
            &[],
            batch,
            nc,
            1,
            0,
        );
        let state = net.rest();
        FusedStream { net, state, batch }
    }

    /// Advances every cell through `inputs` (per bin, the raw `[batch * C]` inputs as the datasets
    /// define them, scaled here); returns each bin's somatic voltages (mV), `[batch]` per bin.
    pub fn run(&mut self, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let none = LinkWeights {
            w: Vec::new(),
            wt: Vec::new(),
        };
        let b = self.batch;
        let mut out = Vec::with_capacity(inputs.len());
        // A few bins at a time: the tape of a piece stays small (nothing is back-propagated here).
        for piece in inputs.chunks(4) {
            let (tape, next) = self.net.forward(
                &self.state,
                piece,
                &[],
                &none,
                SpikeMode::StraightThrough { beta: 1.0 },
                &vec![0f32; b],
            );
            self.state = next;
            out.extend((0..tape.bins).map(|t| tape.types[0].v[t * b..(t + 1) * b].to_vec()));
        }
        out
    }
}
