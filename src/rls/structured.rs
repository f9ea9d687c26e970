//! Recursive least squares for many neurons whose plastic inputs are `[own (m); shared (n)]`: each
//! neuron has `m` private presynaptic inputs, and all neurons see the same `n` shared (feedforward)
//! inputs. A full per-neuron `P` is `(m + n)^2`; here the shared block of the correlation matrix is one
//! matrix for everyone and each neuron keeps only `m x m + m x n` numbers, with the same result.
//!
//! With the correlation matrix `R = [[A, B], [B^T, S]]` (`S` shared) and `G = B S^-1`,
//! `M = A - G B^T` (the Schur complement), `P = R^-1` is
//! `[[M^-1, -M^-1 G], [-G^T M^-1, S^-1 + G^T M^-1 G]]`. For an input `x = [r; s]`:
//! `u = S^-1 s`, `(P x)_r = M^-1 (r - G s)`, `(P x)_s = u - G^T (P x)_r`,
//! `x.P x = (r - G s).(P x)_r + s.u`; after `R += x x^T`:
//! `M^-1 -= c (P x)_r (P x)_r^T`, `G += (r - G s) u^T / (1 + s.u)`, `S^-1 -= u u^T / (1 + s.u)`.
//! The cost per neuron is two passes over its `m x n` block `G` instead of two over `(m + n)^2`.

use rayon::prelude::*;

/// The shared block: inverse correlation of the shared inputs, identical for every neuron.
#[derive(Debug, Clone)]
pub struct SharedBlock {
    pub n: usize,
    /// `S^-1`, row-major `n x n`.
    pub s_inv: Vec<f64>,
    /// Steps absorbed so far.
    steps: u64,
    /// The shared input the last absorbed step announced for the next one.
    announced: Option<Vec<f64>>,
}

/// One neuron's private part.
#[derive(Debug, Clone)]
pub struct NeuronBlock {
    pub m: usize,
    /// `M^-1`, row-major `m x m`.
    pub m_inv: Vec<f64>,
    /// `G = B S^-1`, row-major `m x n`.
    pub g: GBlock,
    /// `G s` for the shared input announced for step `gs_step` (computed ahead, see [`SharedBlock::prepare`]).
    gs: Vec<f64>,
    gs_step: u64,
}

/// Storage of `G`. Updating thousands of neurons is limited by memory bandwidth, not arithmetic, so
/// `G` may be kept in f32 (arithmetic stays f64); `M^-1` and `S^-1`, which must stay positive
/// definite, are always f64.
#[derive(Debug, Clone)]
pub enum GBlock {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

impl GBlock {
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            GBlock::F64(v) => v.clone(),
            GBlock::F32(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }
    /// Overwrites the values, keeping the storage type.
    pub fn set(&mut self, values: &[f64]) {
        match self {
            GBlock::F64(v) => v.copy_from_slice(values),
            GBlock::F32(v) => v.iter_mut().zip(values).for_each(|(a, &b)| *a = b as f32),
        }
    }
}

/// An element of `G`'s storage.
trait Elem: Copy + Send + Sync {
    fn get(self) -> f64;
    fn put(x: f64) -> Self;
}
impl Elem for f64 {
    fn get(self) -> f64 {
        self
    }
    fn put(x: f64) -> Self {
        x
    }
}
impl Elem for f32 {
    fn get(self) -> f64 {
        self as f64
    }
    fn put(x: f64) -> Self {
        x as f32
    }
}

/// `d -= G s`.
#[inline(always)]
fn sub_g_s<T: Elem>(g: &[T], n: usize, s: &[f64], d: &mut [f64]) {
    for (a, row) in d.iter_mut().zip(g.chunks_exact(n)) {
        *a -= dot_elems(row, s);
    }
}

/// Independent partial sums in a dot product. With four, each vector add waited for the previous
/// one (an add takes four cycles), and the read-only pass over `G` ran at half the speed of the
/// read-write one; sixteen keep the adder busy so the pass is limited by memory.
const LANES: usize = 16;

#[inline(always)]
fn dot_elems<T: Elem>(a: &[T], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut ia = a.chunks_exact(LANES);
    let mut ib = b.chunks_exact(LANES);
    for (x, y) in (&mut ia).zip(&mut ib) {
        for l in 0..LANES {
            acc[l] += x[l].get() * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ia.remainder().iter().zip(ib.remainder()) {
        tail += x.get() * y;
    }
    // Pairwise, in a fixed order: the same rounding on every machine and thread count.
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            acc[l] += acc[l + width];
        }
        width /= 2;
    }
    acc[0] + tail
}

/// `z_s -= G^T z_r` and `G += gamma d u^T` in one pass.
#[inline(always)]
fn fused_pass<T: Elem>(
    g: &mut [T],
    n: usize,
    z_r: &[f64],
    d: &[f64],
    gamma: f64,
    u: &[f64],
    z_s: &mut [f64],
) {
    for ((row, &zi), &di) in g.chunks_exact_mut(n).zip(z_r).zip(d) {
        let gd = gamma * di;
        for ((gj, zs), &uj) in row.iter_mut().zip(z_s.iter_mut()).zip(u) {
            let x = gj.get();
            *zs -= zi * x;
            *gj = T::put(x + gd * uj);
        }
    }
}

/// [`fused_pass`] that also computes `G_new s_next` for the next step while each row of `G` is at hand,
/// so that step need not read `G` again (the read is what bounds Part 3). The sums run in the lanes and
/// order of [`dot_elems`], so the result is bit for bit what the next step would compute itself.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fused_pass_ahead<T: Elem>(
    g: &mut [T],
    n: usize,
    z_r: &[f64],
    d: &[f64],
    gamma: f64,
    u: &[f64],
    z_s: &mut [f64],
    s_next: &[f64],
    gs_next: &mut [f64],
) {
    for (((row, &zi), &di), gs) in g.chunks_exact_mut(n).zip(z_r).zip(d).zip(gs_next) {
        let gd = gamma * di;
        let mut acc = [0.0f64; LANES];
        let mut rows = row.chunks_exact_mut(LANES);
        let mut zss = z_s.chunks_exact_mut(LANES);
        let mut us = u.chunks_exact(LANES);
        let mut ss = s_next.chunks_exact(LANES);
        for (((gr, zr), ur), sr) in (&mut rows).zip(&mut zss).zip(&mut us).zip(&mut ss) {
            for l in 0..LANES {
                let x = gr[l].get();
                zr[l] -= zi * x;
                let xn = T::put(x + gd * ur[l]);
                gr[l] = xn;
                acc[l] += xn.get() * sr[l];
            }
        }
        let mut tail = 0.0;
        for (((gj, zs), &uj), &sj) in rows
            .into_remainder()
            .iter_mut()
            .zip(zss.into_remainder())
            .zip(us.remainder())
            .zip(ss.remainder())
        {
            let x = gj.get();
            *zs -= zi * x;
            let xn = T::put(x + gd * uj);
            *gj = xn;
            tail += xn.get() * sj;
        }
        let mut width = LANES / 2;
        while width > 0 {
            for l in 0..width {
                acc[l] += acc[l + width];
            }
            width /= 2;
        }
        *gs = acc[0] + tail;
    }
}

/// What one update step needs to know about the shared input, computed once per step.
pub struct SharedStep {
    /// `S^-1 s`.
    pub u: Vec<f64>,
    /// `s . S^-1 s`.
    pub su: f64,
    /// Which step this is (steps absorbed before it).
    index: u64,
    /// Whether `s` is the input the previous step announced, so neurons may use the `G s` they
    /// computed for it ahead of time.
    announced: bool,
    /// The next step's shared input, when the caller knows it.
    next: Option<Vec<f64>>,
}

impl SharedBlock {
    /// `S^-1 = I / lambda` (an L2 prior of strength `lambda` on the shared weights).
    pub fn new(n: usize, lambda: f64) -> Self {
        let mut s_inv = vec![0.0; n * n];
        for i in 0..n {
            s_inv[i * n + i] = 1.0 / lambda;
        }
        SharedBlock {
            n,
            s_inv,
            steps: 0,
            announced: None,
        }
    }

    /// Prepares a step with shared input `s` (before any neuron is updated). `next`, when the caller
    /// already knows the next step's shared input (Part 3's feedforward spikes do not depend on the
    /// network), lets every neuron compute its next `G s` in the pass that updates `G`; a step whose
    /// input differs from what was announced falls back to reading `G`, so a wrong announcement costs
    /// time, never correctness.
    pub fn prepare(&self, s: &[f64], next: Option<&[f64]>) -> SharedStep {
        let n = self.n;
        let u: Vec<f64> = (0..n)
            .map(|i| dot(&self.s_inv[i * n..(i + 1) * n], s))
            .collect();
        let su = dot(s, &u);
        SharedStep {
            u,
            su,
            index: self.steps,
            announced: self.announced.as_deref() == Some(s),
            next: next.filter(|x| x.len() == n).map(<[f64]>::to_vec),
        }
    }

    /// Absorbs `s` into `S^-1` (after every neuron has been updated with the same step).
    pub fn absorb(&mut self, step: &SharedStep) {
        let n = self.n;
        self.steps += 1;
        self.announced = step.next.clone();
        if n == 0 {
            return;
        }
        let gamma = 1.0 / (1.0 + step.su);
        for (i, row) in self.s_inv.chunks_exact_mut(n).enumerate() {
            let ui = gamma * step.u[i];
            for (p, &uj) in row.iter_mut().zip(&step.u) {
                *p -= ui * uj;
            }
        }
    }
}

impl NeuronBlock {
    /// Prior inverse `M^-1` given as the (symmetric, positive definite) precision of the private
    /// weights `prec` (row-major `m x m`); `B = 0` at the start.
    pub fn new(m: usize, n: usize, prec: &[f64], g_f32: bool) -> Result<Self, String> {
        let m_inv = invert_spd(prec, m)?;
        let g = if g_f32 {
            GBlock::F32(vec![0.0; m * n])
        } else {
            GBlock::F64(vec![0.0; m * n])
        };
        Ok(NeuronBlock {
            m,
            m_inv,
            g,
            gs: vec![0.0; m],
            gs_step: u64::MAX,
        })
    }

    /// One RLS step with private input `r`, shared input `s` (prepared in `step`), and error `e`
    /// of the readout before the step. Moves the private weights `w_r` and shared weights `w_s` and
    /// updates the blocks. Returns `c = 1 / (1 + x.P x)` (in (0, 1] while `P` stays positive definite).
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        r: &[f64],
        s: &[f64],
        step: &SharedStep,
        e: f64,
        w_r: &mut [f64],
        w_s: &mut [f64],
        scratch: &mut Scratch,
    ) -> f64 {
        update_wide(self, r, s, step, e, w_r, w_s, scratch)
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn update_impl(
    block: &mut NeuronBlock,
    r: &[f64],
    s: &[f64],
    step: &SharedStep,
    e: f64,
    w_r: &mut [f64],
    w_s: &mut [f64],
    scratch: &mut Scratch,
) -> f64 {
    let (m, n) = (block.m, s.len());
    let Scratch { d, z_r, z_s } = scratch;
    d.resize(m, 0.0);
    z_r.resize(m, 0.0);
    z_s.resize(n, 0.0);
    // d = r - G s
    d.copy_from_slice(r);
    if n > 0 {
        if step.announced && block.gs_step == step.index {
            for (a, &b) in d.iter_mut().zip(&block.gs) {
                *a -= b;
            }
        } else {
            match &block.g {
                GBlock::F64(g) => sub_g_s(g, n, s, d),
                GBlock::F32(g) => sub_g_s(g, n, s, d),
            }
        }
    }
    for (zi, row) in z_r.iter_mut().zip(block.m_inv.chunks_exact(m)) {
        *zi = dot_elems(row, d);
    }
    let c = 1.0 / (1.0 + dot_elems(d, z_r) + step.su);
    let gamma = 1.0 / (1.0 + step.su);
    // z_s = u - G^T z_r, and G += gamma d u^T, in one pass over G (with the next step's G s when known).
    z_s.copy_from_slice(&step.u);
    if n > 0 {
        match (&mut block.g, step.next.as_deref()) {
            (GBlock::F64(g), None) => fused_pass(g, n, z_r, d, gamma, &step.u, z_s),
            (GBlock::F32(g), None) => fused_pass(g, n, z_r, d, gamma, &step.u, z_s),
            (GBlock::F64(g), Some(sn)) => {
                fused_pass_ahead(g, n, z_r, d, gamma, &step.u, z_s, sn, &mut block.gs)
            }
            (GBlock::F32(g), Some(sn)) => {
                fused_pass_ahead(g, n, z_r, d, gamma, &step.u, z_s, sn, &mut block.gs)
            }
        }
        block.gs_step = if step.next.is_some() {
            step.index + 1
        } else {
            u64::MAX
        };
    }
    for (i, row) in block.m_inv.chunks_exact_mut(m).enumerate() {
        let zi = c * z_r[i];
        for (p, &zj) in row.iter_mut().zip(z_r.iter()) {
            *p -= zi * zj;
        }
    }
    let ec = e * c;
    for (w, &z) in w_r.iter_mut().zip(z_r.iter()) {
        *w -= ec * z;
    }
    for (w, &z) in w_s.iter_mut().zip(z_s.iter()) {
        *w -= ec * z;
    }
    c
}

avx2_dispatch! {
    /// [`update_impl`] compiled for AVX2 where the CPU has it: these loops are where Part 3 spends its time.
    fn update_wide(
        block: &mut NeuronBlock,
        r: &[f64],
        s: &[f64],
        step: &SharedStep,
        e: f64,
        w_r: &mut [f64],
        w_s: &mut [f64],
        scratch: &mut Scratch,
    ) -> f64 = update_impl;
}

/// Work vectors reused across updates (one per thread).
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    d: Vec<f64>,
    z_r: Vec<f64>,
    z_s: Vec<f64>,
}

/// Updates many neurons with the same shared input in parallel: `items` yields, per neuron, its block,
/// private input, error and weights; `next` is the next step's shared input when it is already known.
/// Returns the smallest gain `c` seen (a diagnostic of conditioning).
pub fn update_all<'a, I>(shared: &mut SharedBlock, s: &[f64], next: Option<&[f64]>, items: I) -> f64
where
    I: IndexedParallelIterator<Item = Item<'a>>,
{
    let step = shared.prepare(s, next);
    let c_min = items
        .map_init(Scratch::default, |scratch, it| {
            it.block
                .update(it.r, s, &step, it.e, it.w_r, it.w_s, scratch)
        })
        .reduce(|| f64::INFINITY, f64::min);
    shared.absorb(&step);
    c_min
}

/// One neuron's share of a parallel update.
pub struct Item<'a> {
    pub block: &'a mut NeuronBlock,
    pub r: &'a [f64],
    pub e: f64,
    pub w_r: &'a mut [f64],
    pub w_s: &'a mut [f64],
}

/// A dot product with many independent partial sums (see [`LANES`]), summed in a fixed order.
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    dot_elems(a, b)
}

/// Inverse of a symmetric positive-definite matrix by Cholesky; an error if it is not positive definite.
pub fn invert_spd(a: &[f64], n: usize) -> Result<Vec<f64>, String> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = a[i * n + j];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if sum <= 0.0 || !sum.is_finite() {
                    return Err(format!(
                        "matrix is not positive definite (pivot {i} is {sum:e})"
                    ));
                }
                l[i * n + i] = sum.sqrt();
            } else {
                l[i * n + j] = sum / l[j * n + j];
            }
        }
    }
    // Solve L L^T X = I column by column.
    let mut inv = vec![0.0; n * n];
    let mut y = vec![0.0; n];
    for col in 0..n {
        for i in 0..n {
            let mut sum = if i == col { 1.0 } else { 0.0 };
            for k in 0..i {
                sum -= l[i * n + k] * y[k];
            }
            y[i] = sum / l[i * n + i];
        }
        for i in (0..n).rev() {
            let mut sum = y[i];
            for k in i + 1..n {
                sum -= l[k * n + i] * inv[k * n + col];
            }
            inv[i * n + col] = sum / l[i * n + i];
        }
    }
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rls::force::RlsLearner;
    use rand::{Rng, SeedableRng};

    /// A full `(m + n)^2` RLS with a block-diagonal prior, the reference the structured form must equal.
    fn full_rls_step(p: &mut [f64], x: &[f64], w: &mut [f64], target: f64) {
        let dim = x.len();
        let k: Vec<f64> = (0..dim)
            .map(|i| dot(&p[i * dim..(i + 1) * dim], x))
            .collect();
        let c = 1.0 / (1.0 + dot(x, &k));
        let e = dot(w, x) - target;
        for i in 0..dim {
            for j in 0..dim {
                p[i * dim + j] -= c * k[i] * k[j];
            }
        }
        for (wi, ki) in w.iter_mut().zip(&k) {
            *wi -= e * c * ki;
        }
    }

    #[test]
    fn update_avx2_and_baseline_builds_agree_bit_for_bit() {
        let (m, n) = (9, 14);
        let prec: Vec<f64> = (0..m * m)
            .map(|i| if i % (m + 1) == 0 { 2.0 } else { 0.1 })
            .collect();
        let block = NeuronBlock::new(m, n, &prec, false).unwrap();
        let shared = SharedBlock::new(n, 1.5);
        let r: Vec<f64> = (0..m).map(|i| (i as f64 * 0.37).sin()).collect();
        let s: Vec<f64> = (0..n).map(|i| (i as f64 * 0.11).cos()).collect();
        let run = |f: UpdateFn, steps: usize| {
            let (mut b, mut sh) = (block.clone(), shared.clone());
            let (mut w_r, mut w_s) = (vec![0.1; m], vec![-0.2; n]);
            let mut scratch = Scratch::default();
            let mut cs = Vec::new();
            for k in 0..steps {
                let step = sh.prepare(&s, None);
                cs.push(
                    f(
                        &mut b,
                        &r,
                        &s,
                        &step,
                        0.3 - 0.01 * k as f64,
                        &mut w_r,
                        &mut w_s,
                        &mut scratch,
                    )
                    .to_bits(),
                );
                sh.absorb(&step);
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            (cs, bits(&w_r), bits(&w_s))
        };
        assert_eq!(
            run(update_wide, 5),
            run(update_impl, 5),
            "avx2: {}",
            crate::simd::has_avx2()
        );
    }

    type UpdateFn = fn(
        &mut NeuronBlock,
        &[f64],
        &[f64],
        &SharedStep,
        f64,
        &mut [f64],
        &mut [f64],
        &mut Scratch,
    ) -> f64;

    #[test]
    fn structured_update_equals_full_p_update() {
        let (m, n, neurons, steps) = (6, 9, 3, 200);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Private prior: L2 plus a penalty on the summed weights of two halves (the balance prior).
        let (lam, mu, lam_s) = (0.5, 3.0, 2.0);
        let mut prec = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..m {
                let same = (i < m / 2) == (j < m / 2);
                prec[i * m + j] = if same { mu } else { 0.0 } + if i == j { lam } else { 0.0 };
            }
        }
        let dim = m + n;
        let mut p_full: Vec<Vec<f64>> = (0..neurons)
            .map(|_| {
                let inv = invert_spd(&prec, m).unwrap();
                let mut p = vec![0.0; dim * dim];
                for i in 0..m {
                    for j in 0..m {
                        p[i * dim + j] = inv[i * m + j];
                    }
                }
                for i in m..dim {
                    p[i * dim + i] = 1.0 / lam_s;
                }
                p
            })
            .collect();
        let mut w_full = vec![vec![0.1; dim]; neurons];
        let mut shared = SharedBlock::new(n, lam_s);
        // Neurons 0..neurons keep G in f64, the copies after them in f32.
        let mut blocks: Vec<NeuronBlock> = (0..2 * neurons)
            .map(|i| NeuronBlock::new(m, n, &prec, i >= neurons).unwrap())
            .collect();
        let mut w_r = vec![vec![0.1; m]; 2 * neurons];
        let mut w_s = vec![vec![0.1; n]; 2 * neurons];
        // The same learners again, told each next shared input ahead of time (except every seventh
        // step, whose announcement is wrong): they must not differ in a single bit.
        let mut shared_ahead = SharedBlock::new(n, lam_s);
        let mut blocks_ahead = blocks.clone();
        let (mut w_r_ahead, mut w_s_ahead) = (w_r.clone(), w_s.clone());
        let mut scratch = Scratch::default();
        let inputs: Vec<Vec<f64>> = (0..=steps)
            .map(|_| (0..n).map(|_| rng.random::<f64>()).collect())
            .collect();
        let wrong = vec![0.5; n];
        let mut announced = 0;
        for (t, s) in inputs.iter().take(steps).enumerate() {
            let step = shared.prepare(s, None);
            let next = if t % 7 == 3 { &wrong } else { &inputs[t + 1] };
            let step_ahead = shared_ahead.prepare(s, Some(next));
            announced += step_ahead.announced as usize;
            for i in 0..neurons {
                let r: Vec<f64> = (0..m).map(|_| rng.random::<f64>() * 2.0).collect();
                let target = rng.random::<f64>() * 4.0 - 2.0;
                let x: Vec<f64> = r.iter().chain(s).copied().collect();
                full_rls_step(&mut p_full[i], &x, &mut w_full[i], target);
                for k in [i, i + neurons] {
                    let e = dot(&w_r[k], &r) + dot(&w_s[k], s) - target;
                    blocks[k].update(&r, s, &step, e, &mut w_r[k], &mut w_s[k], &mut scratch);
                    let e = dot(&w_r_ahead[k], &r) + dot(&w_s_ahead[k], s) - target;
                    blocks_ahead[k].update(
                        &r,
                        s,
                        &step_ahead,
                        e,
                        &mut w_r_ahead[k],
                        &mut w_s_ahead[k],
                        &mut scratch,
                    );
                }
            }
            shared.absorb(&step);
            shared_ahead.absorb(&step_ahead);
        }
        for k in 0..2 * neurons {
            assert_eq!(w_r[k], w_r_ahead[k], "private weights, neuron {k}");
            assert_eq!(w_s[k], w_s_ahead[k], "shared weights, neuron {k}");
            assert_eq!(
                blocks[k].g.to_f64(),
                blocks_ahead[k].g.to_f64(),
                "G, neuron {k}"
            );
            assert_eq!(blocks[k].m_inv, blocks_ahead[k].m_inv, "M^-1, neuron {k}");
        }
        assert_eq!(shared.s_inv, shared_ahead.s_inv);
        // The look-ahead was used: every step but the first and those after a wrong announcement.
        assert_eq!(
            announced,
            steps - 1 - (0..steps - 1).filter(|t| t % 7 == 3).count()
        );
        assert!(blocks_ahead.iter().all(|b| b.gs_step == steps as u64));
        let mut worst: f64 = 0.0;
        for i in 0..neurons {
            let w: Vec<f64> = w_r[i].iter().chain(&w_s[i]).copied().collect();
            for (a, b) in w.iter().zip(&w_full[i]) {
                worst = worst.max((a - b).abs());
            }
            // P itself: the private block is M^-1.
            for a in 0..m {
                for b in 0..m {
                    worst = worst.max((blocks[i].m_inv[a * m + b] - p_full[i][a * dim + b]).abs());
                }
            }
        }
        assert!(
            worst < 1e-9,
            "structured RLS differs from full P by {worst:e}"
        );
        // With G stored in f32 the weights agree to single precision.
        let mut worst32: f64 = 0.0;
        for i in 0..neurons {
            let w: Vec<f64> = w_r[i + neurons]
                .iter()
                .chain(&w_s[i + neurons])
                .copied()
                .collect();
            for (a, b) in w.iter().zip(&w_full[i]) {
                worst32 = worst32.max((a - b).abs() / b.abs().max(1.0));
            }
        }
        assert!(worst32 < 1e-4, "f32 G differs from full P by {worst32:e}");
        assert!(worst32 > 0.0, "f32 storage must actually round");
    }

    #[test]
    fn structured_update_with_identity_prior_equals_plain_learner() {
        // With no shared inputs the structured form is plain RLS.
        let m = 5;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let alpha = 0.7;
        let mut prec = vec![0.0; m * m];
        for i in 0..m {
            prec[i * m + i] = alpha;
        }
        let mut block = NeuronBlock::new(m, 0, &prec, false).unwrap();
        let mut shared = SharedBlock::new(0, 1.0);
        let mut plain = RlsLearner::new(m, alpha, &[]);
        let (mut w1, mut w2, mut ws) = (vec![0.0; m], vec![0.0; m], vec![]);
        let mut scratch = Scratch::default();
        for _ in 0..100 {
            let r: Vec<f64> = (0..m).map(|_| rng.random::<f64>()).collect();
            let f = rng.random::<f64>();
            plain.update(&mut w1, &r, f);
            let step = shared.prepare(&[], None);
            let e = dot(&w2, &r) - f;
            block.update(&r, &[], &step, e, &mut w2, &mut ws, &mut scratch);
            shared.absorb(&step);
        }
        for (a, b) in w1.iter().zip(&w2) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
    }

    #[test]
    fn cholesky_inverse_and_refusal() {
        let a = [4.0, 1.0, 1.0, 3.0];
        let inv = invert_spd(&a, 2).unwrap();
        let det = 11.0;
        let want = [3.0 / det, -1.0 / det, -1.0 / det, 4.0 / det];
        for (x, y) in inv.iter().zip(&want) {
            assert!((x - y).abs() < 1e-14);
        }
        assert!(invert_spd(&[1.0, 2.0, 2.0, 1.0], 2).is_err());
    }
}
