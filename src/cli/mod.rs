//! The command line: one file per command, each with its `Args` and `run(Args)`; [`ui`] holds what
//! they share. A command is added by a file and one line in the registry below.

pub mod ui;

/// Declares each command's module, the `Command` enum clap parses, and its dispatch.
macro_rules! commands {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident ),* $(,)?) => {
        $( pub mod $module; )*

        #[derive(clap::Subcommand)]
        pub enum Command {
            $( $(#[$doc])* $variant($module::Args), )*
        }

        impl Command {
            pub fn run(self) -> anyhow::Result<()> {
                match self {
                    $( Command::$variant(args) => $module::run(args).map(drop), )*
                }
            }
        }
    };
}

commands! {
    /// Run an experiment in the exact engine; writes results.h5, metrics.json and figures.
    Simulate => simulate,
    /// Check an experiment file and print what it describes, without running it.
    Validate => validate,
    /// The whole loop on shipped defaults in a few minutes: training sets, fine-tune and evaluate a surrogate,
    /// the alpha column in both engines, a short alpha -> 15-60 Hz optimisation with its exact re-check, RLS.
    /// Run it from the root of the sources (it uses checkpoints/ and experiments/).
    Demo => demo,
    /// Generate a surrogate training set (HDF5) of single-neuron responses.
    Gen => generate,
    /// Train a TCN-LSTM surrogate on one or more dataset files.
    Train => train,
    /// Measure a checkpoint on held-out traces (voltage RMSE and r, spike F1 and coincidence factor).
    Eval => eval,
    /// Train a network by recursive least squares (Kim & Chow): `rate` (Part 1), `spiking` (Part 2) or
    /// `balanced` (Part 3: a balanced E-I network trained to recorded ALM activity).
    Rls => rls,
    /// Turn recorded rates into RLS targets: copies `rate_hz_<type>` and adds the LIF drive
    /// `utarg_<type>` = Siegert inverse of each rate, for `surge rls balanced` (`targets = "OUT"`).
    Targets => targets,
    /// How well the surrogate network's gradient of the optimisation objective matches the exact
    /// engine's (central differences with common random numbers over network instances): cosine
    /// similarity with its standard error, sign agreement per group; report.json and a figure.
    Gradcheck => gradcheck,
    /// Optimiser seeds x held-out instances for several routes to one target (gradient through
    /// checkpoints or the exact engine, its random-sign control, CMA-ES on the exact engine); one
    /// table, a figure and sweep.json. Finished runs are read back, so a stopped sweep continues.
    Sweep => sweep,
    /// The band fraction along the line from one set of group gains to another (say, the initial
    /// gains to a CMA-ES result), in the exact engine and through surrogates: can a gradient at the
    /// start see the way? report.json and a figure.
    Landscape => landscape,
    /// Fit connection gains by gradient descent through surrogate neurons to a target band, then re-check
    /// the result in the exact engine on held-out seeds.
    Optimize => optimize,
    /// Set a checkpoint's spike threshold so that it calls as many spikes as the exact neuron on
    /// training data (the class-weighted loss biases the spike logit upwards).
    Calibrate => calibrate,
    /// `cell`: a surrogate checkpoint vs the exact neuron on a data file's inputs. `network`: surrogate
    /// vs exact engine on the same network and connectome. `methods`: the surrogate gradient vs CMA-ES
    /// and RLS on the exact engine, same target, judged on held-out seeds.
    Compare => compare,
    /// Work with dataset files.
    Data => data,
    /// Measure speed on fixed seeds and print one table.
    Bench => bench,
    /// Write the network instance Surge would simulate in an exchange format: `sonata` (nodes and
    /// edges in HDF5, types in CSV, NEST model parameters in JSON).
    Export => export,
    /// Read a network from an exchange format: `sonata` (a circuit of NEST point neurons) becomes an
    /// experiment file and the connectome file it names.
    Import => import,
}

#[derive(clap::Parser)]
#[command(
    name = "surge",
    version,
    about = "Differentiable surrogate models of spiking neural networks"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}
