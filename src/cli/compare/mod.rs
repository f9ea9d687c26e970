//! `surge compare`: the surrogate against the exact engine, for one cell, one network, or as a route to
//! a target against CMA-ES and RLS.

pub mod cell;
pub mod methods;
pub mod network;
pub mod synapses;

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// A surrogate checkpoint vs the exact neuron on a data file's inputs.
    Cell(cell::Args),
    /// Surrogate vs exact engine on the same network and connectome.
    Network(network::Args),
    /// The surrogate gradient vs CMA-ES and RLS on the exact engine, same target, judged on held-out seeds.
    Methods(methods::Args),
}

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Cell(a) => cell::run(a),
        What::Network(a) => network::run(a).map(drop),
        What::Methods(a) => methods::run(a).map(drop),
    }
}
