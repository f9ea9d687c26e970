//! The exact, non-surrogate route: recursive least squares (FORCE; Sussillo & Abbott 2009) as in
//! Kim & Chow's tutorial. [`force`]: the learner and Parts 1 (rate network) and 2 (spiking
//! network); [`balanced`] and [`balanced_files`]: Part 3 (a balanced E-I network trained to
//! recorded ALM activity, Kim et al. 2023) with the block-structured update of [`structured`];
//! [`band`]: RLS on the exact engine's network towards a target band, compared with the gradient.

pub mod balanced;
pub mod balanced_files;
pub mod band;
pub mod force;
pub mod structured;
