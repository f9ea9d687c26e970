//! A spec instantiated into concrete synapses. Stored by presynaptic cell (CSR) because both engines
//! deliver spikes pre -> post; within a cell the synapses are grouped into segments that share a
//! connection group, delay and channel, so the delivery loop touches only targets and weights.

use super::{NetworkSpec, Rule};
use crate::seed::{rng_for, stream};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

/// A run of synapses of one presynaptic cell that share connection group, delay and channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index range into [`Connectome::targets`] / [`Connectome::weights`].
    pub start: usize,
    pub end: usize,
    /// Delay in integration steps (>= 1).
    pub delay_steps: u16,
    /// Index of the connection in `NetworkSpec::connections`.
    pub group: u16,
    /// Channel index in the post population's neuron model.
    pub channel: u16,
}

/// Concrete synapses and drive targets of a spec for one seed. Identical for every engine and thread count.
#[derive(Debug, Clone, PartialEq)]
pub struct Connectome {
    pub n_cells: usize,
    /// Global index of each population's first cell; `pop_offsets[npop] == n_cells`.
    pub pop_offsets: Vec<usize>,
    /// Segments of cell `i` are `segments[seg_ptr[i]..seg_ptr[i + 1]]`.
    pub seg_ptr: Vec<usize>,
    pub segments: Vec<Segment>,
    /// Global index of the postsynaptic cell of each synapse.
    pub targets: Vec<u32>,
    /// Weight of each synapse, gain included (units of the connection's `weight`).
    pub weights: Vec<f32>,
    /// For each drive, the global indices of the cells it reaches (sorted).
    pub drive_targets: Vec<Vec<u32>>,
}

impl Connectome {
    /// Draws the connectome of `spec` with its seed. Parallel over postsynaptic cells; each cell draws
    /// from its own stream, so the result does not depend on the number of threads.
    pub fn build(spec: &NetworkSpec) -> Self {
        let seed = spec.seed();
        let dt = spec.simulation.dt_ms;
        let mut pop_offsets = vec![0usize];
        for p in &spec.populations {
            pop_offsets.push(pop_offsets.last().unwrap() + p.size);
        }
        let n_cells = *pop_offsets.last().unwrap();

        // Incoming synapses per connection group and post cell: (pre global, weight, delay steps).
        let mut incoming: Vec<Vec<Vec<(u32, f32, u16)>>> =
            Vec::with_capacity(spec.connections.len());
        for (g, c) in spec.connections.iter().enumerate() {
            let pre = spec.population_index(&c.pre).expect("validated");
            let post = spec.population_index(&c.post).expect("validated");
            let n_pre = spec.populations[pre].size;
            let pre0 = pop_offsets[pre] as u32;
            let same = pre == post && !c.autapses;
            let candidates = if same { n_pre - 1 } else { n_pre };
            if let Some(e) = &c.synapses {
                // Explicit synapses: each post cell's row in file order.
                let mut rows = vec![Vec::new(); spec.populations[post].size];
                for k in 0..e.len() {
                    rows[e.target[k] as usize].push((
                        pre0 + e.source[k],
                        (e.weight[k] * c.gain) as f32,
                        spec.delay_steps(e.delay_ms[k]),
                    ));
                }
                incoming.push(rows);
                continue;
            }
            let weight = c.weight.expect("validated");
            let delay_ms = c.delay_ms.expect("validated");
            let weight_dist = (c.weight_sd > 0.0)
                .then(|| Normal::new(weight, c.weight_sd).expect("validated sd"));
            let delay_dist = (c.delay_sd_ms > 0.0)
                .then(|| Normal::new(delay_ms, c.delay_sd_ms).expect("validated sd"));
            let fixed_delay = spec.delay_steps(delay_ms);
            let positions = (c.rule == Rule::Gaussian).then(|| {
                let at = |pi: usize| spec.populations[pi].layout.expect("validated").positions();
                (at(pre), at(post), c.lamtha.expect("validated"))
            });
            let max_delay_ms = u16::MAX as f64 / 2.0 * dt;
            let rows: Vec<Vec<(u32, f32, u16)>> = (0..spec.populations[post].size)
                .into_par_iter()
                .map(|j| {
                    let mut rng = rng_for(seed, &[stream::CONNECTOME, g as u64, j as u64]);
                    let mut chosen: Vec<u32> = match c.rule {
                        Rule::AllToAll | Rule::Gaussian => (0..candidates as u32).collect(),
                        Rule::File => unreachable!("explicit synapses are taken above"),
                        Rule::FixedIndegree => {
                            let mut v: Vec<u32> = rand::seq::index::sample(
                                &mut rng,
                                candidates,
                                c.k.expect("validated"),
                            )
                            .into_iter()
                            .map(|i| i as u32)
                            .collect();
                            v.sort_unstable();
                            v
                        }
                        Rule::Probability => {
                            bernoulli_indices(&mut rng, candidates, c.p.expect("validated"))
                        }
                    };
                    if same {
                        // Candidate indices skip the cell itself.
                        for i in chosen.iter_mut() {
                            if *i as usize >= j {
                                *i += 1;
                            }
                        }
                    }
                    if let Some((from, to, lamtha)) = &positions {
                        // Weight and delay from distance; delays the engine cannot hold are left out.
                        return chosen
                            .into_iter()
                            .filter_map(|i| {
                                let (a, b) = (from[i as usize], to[j]);
                                let d2 = (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
                                let f = (-d2 / (lamtha * lamtha)).exp();
                                let delay = delay_ms / f;
                                (delay <= max_delay_ms).then(|| {
                                    let w = weight * f * c.gain;
                                    (pre0 + i, w as f32, spec.delay_steps(delay))
                                })
                            })
                            .collect();
                    }
                    chosen
                        .into_iter()
                        .map(|i| {
                            let w = match &weight_dist {
                                None => weight,
                                Some(d) => {
                                    let x: f64 = d.sample(&mut rng);
                                    if weight >= 0.0 {
                                        x.max(0.0)
                                    } else {
                                        x.min(0.0)
                                    }
                                }
                            };
                            let delay = match &delay_dist {
                                None => fixed_delay,
                                Some(d) => spec.delay_steps(d.sample(&mut rng).max(dt)),
                            };
                            (pre0 + i, (w * c.gain) as f32, delay)
                        })
                        .collect()
                })
                .collect();
            incoming.push(rows);
        }

        // Counting sort by presynaptic cell; stable, so within a cell synapses stay in (group, post) order.
        let mut counts = vec![0usize; n_cells + 1];
        for rows in &incoming {
            for row in rows {
                for &(pre, _, _) in row {
                    counts[pre as usize + 1] += 1;
                }
            }
        }
        for i in 0..n_cells {
            counts[i + 1] += counts[i];
        }
        let total = counts[n_cells];
        let mut cursor = counts.clone();
        let mut targets = vec![0u32; total];
        let mut weights = vec![0f32; total];
        let mut keys = vec![(0u16, 0u16); total];
        for (g, c) in spec.connections.iter().enumerate() {
            let post0 = pop_offsets[spec.population_index(&c.post).expect("validated")] as u32;
            for (j, row) in incoming[g].iter().enumerate() {
                for &(pre, w, d) in row {
                    let slot = &mut cursor[pre as usize];
                    targets[*slot] = post0 + j as u32;
                    weights[*slot] = w;
                    keys[*slot] = (g as u16, d);
                    *slot += 1;
                }
            }
        }
        drop(incoming);
        let varied_delays = spec
            .connections
            .iter()
            .any(|c| c.delay_sd_ms > 0.0 || matches!(c.rule, Rule::Gaussian | Rule::File));
        let channels: Vec<u16> = spec
            .connections
            .iter()
            .map(|c| {
                let post = spec.population_index(&c.post).expect("validated");
                spec.populations[post]
                    .neuron
                    .channel_index(&c.channel)
                    .expect("validated") as u16
            })
            .collect();

        let mut seg_ptr = Vec::with_capacity(n_cells + 1);
        let mut segments = Vec::new();
        seg_ptr.push(0);
        for i in 0..n_cells {
            let (a, b) = (counts[i], counts[i + 1]);
            if varied_delays && b > a {
                let mut order: Vec<usize> = (a..b).collect();
                order.sort_by_key(|&s| keys[s]);
                let t: Vec<u32> = order.iter().map(|&s| targets[s]).collect();
                let w: Vec<f32> = order.iter().map(|&s| weights[s]).collect();
                let k: Vec<(u16, u16)> = order.iter().map(|&s| keys[s]).collect();
                targets[a..b].copy_from_slice(&t);
                weights[a..b].copy_from_slice(&w);
                keys[a..b].copy_from_slice(&k);
            }
            let mut s = a;
            while s < b {
                let key = keys[s];
                let mut e = s + 1;
                while e < b && keys[e] == key {
                    e += 1;
                }
                segments.push(Segment {
                    start: s,
                    end: e,
                    delay_steps: key.1,
                    group: key.0,
                    channel: channels[key.0 as usize],
                });
                s = e;
            }
            seg_ptr.push(segments.len());
        }

        let drive_targets = spec
            .drives
            .iter()
            .enumerate()
            .map(|(d, drive)| {
                let mut cells = Vec::new();
                for t in &drive.targets {
                    let p = spec.population_index(t).expect("validated");
                    let size = spec.populations[p].size;
                    let off = pop_offsets[p] as u32;
                    if drive.fraction >= 1.0 {
                        cells.extend((0..size as u32).map(|i| off + i));
                    } else {
                        let n = ((drive.fraction * size as f64).round() as usize).clamp(1, size);
                        let mut rng = rng_for(seed, &[stream::DRIVE_TARGETS, d as u64, p as u64]);
                        let mut idx: Vec<u32> = rand::seq::index::sample(&mut rng, size, n)
                            .into_iter()
                            .map(|i| off + i as u32)
                            .collect();
                        idx.sort_unstable();
                        cells.extend(idx);
                    }
                }
                cells.sort_unstable();
                cells.dedup();
                cells
            })
            .collect();

        Connectome {
            n_cells,
            pop_offsets,
            seg_ptr,
            segments,
            targets,
            weights,
            drive_targets,
        }
    }

    /// Number of synapses.
    pub fn n_synapses(&self) -> usize {
        self.targets.len()
    }

    /// Largest delay in steps (0 without synapses).
    pub fn max_delay_steps(&self) -> u16 {
        self.segments
            .iter()
            .map(|s| s.delay_steps)
            .max()
            .unwrap_or(0)
    }

    /// Population index of a global cell index.
    pub fn population_of(&self, cell: usize) -> usize {
        self.pop_offsets.partition_point(|&o| o <= cell) - 1
    }

    /// In-degree of every cell from connection group `group`.
    pub fn in_degrees(&self, group: u16) -> Vec<usize> {
        let mut deg = vec![0usize; self.n_cells];
        for seg in self.segments.iter().filter(|s| s.group == group) {
            for &t in &self.targets[seg.start..seg.end] {
                deg[t as usize] += 1;
            }
        }
        deg
    }
}

/// Indices in `0..n` each kept with probability `p`, by geometric skipping (O(kept), not O(n)).
fn bernoulli_indices(rng: &mut impl Rng, n: usize, p: f64) -> Vec<u32> {
    let mut out = Vec::new();
    if p <= 0.0 {
        return out;
    }
    if p >= 1.0 {
        return (0..n as u32).collect();
    }
    let log_q = (1.0 - p).ln();
    let mut i: f64 = -1.0;
    loop {
        let u: f64 = rng.random::<f64>();
        // 1 - u lies in (0, 1], so the logarithm is finite.
        i += 1.0 + ((1.0 - u).ln() / log_q).floor();
        if i >= n as f64 {
            return out;
        }
        out.push(i as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernoulli_skipping_keeps_fraction_p() {
        let mut rng = rng_for(1, &[0]);
        let n = 200_000;
        let kept = bernoulli_indices(&mut rng, n, 0.1).len() as f64;
        // Binomial sd = sqrt(n p q) ~ 134; allow 5 sd.
        assert!((kept - 20_000.0).abs() < 5.0 * 134.2, "kept {kept}");
    }
}
