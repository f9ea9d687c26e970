//! Seed derivation. Every random stream in Surge is a ChaCha8 generator keyed by the experiment seed
//! and a path of integers (what it is for, which group, which cell), so results do not depend on the
//! order in which threads run and one stream never overlaps another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Stream domains; one per use of randomness.
pub mod stream {
    pub const CONNECTOME: u64 = 1;
    pub const DRIVE_TARGETS: u64 = 2;
    pub const INITIAL_STATE: u64 = 3;
    pub const DRIVE_NOISE: u64 = 4;
    pub const DATASET: u64 = 5;
}

/// SplitMix64 finaliser: a bijective mixer with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for the stream `path` of experiment seed `seed`.
pub fn rng_for(seed: u64, path: &[u64]) -> ChaCha8Rng {
    let mut h = mix(seed);
    for &p in path {
        h = mix(h ^ mix(p));
    }
    ChaCha8Rng::seed_from_u64(h)
}
