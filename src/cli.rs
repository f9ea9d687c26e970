//! Subcommands, progress bars and output folders. No science in here.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use surge::data::{DatasetConfig, DatasetReader, h5::DatasetInfo};
use surge::experiment::{self, Metrics};
use surge::spec::NetworkSpec;

pub mod gradcheck;
pub mod sweep;

#[derive(Parser)]
#[command(
    name = "surge",
    version,
    about = "Differentiable surrogate models of spiking neural networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Controls of `surge optimize`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Control {
    /// Steps of the same size in random directions.
    RandomSign,
}

impl Control {
    pub fn name(self) -> &'static str {
        match self {
            Control::RandomSign => "random_sign",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment in the exact engine; writes results.h5, metrics.json and figures.
    Simulate {
        /// Experiment file (TOML).
        #[arg(long, required_unless_present = "weights")]
        config: Option<PathBuf>,
        /// Re-run a network trained by `surge rls balanced` from its trained.h5 (config and weights
        /// come from the file): test trials of both types, correlation with the targets, rates.
        #[arg(long, conflicts_with = "config")]
        weights: Option<PathBuf>,
        /// Output folder [default: experiments/out/<name>/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the experiment's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the simulated duration (ms).
        #[arg(long)]
        duration_ms: Option<f64>,
        /// Overwrite the results of a previous run in the output folder.
        #[arg(long)]
        force: bool,
    },
    /// Check an experiment file and print what it describes, without running it.
    Validate {
        #[arg(long)]
        config: PathBuf,
    },
    /// The whole loop on shipped defaults in a few minutes: training sets, fine-tune and evaluate a surrogate,
    /// the alpha column in both engines, a short alpha -> 15-60 Hz optimisation with its exact re-check, RLS.
    /// Run it from the root of the sources (it uses checkpoints/ and experiments/).
    Demo {
        /// Output folder (its previous demo results are replaced).
        #[arg(long, default_value = "experiments/out/demo")]
        out: PathBuf,
    },
    /// Generate a surrogate training set (HDF5) of single-neuron responses.
    Gen {
        /// Dataset experiment file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Output file (.h5).
        #[arg(long)]
        out: PathBuf,
        /// Override the number of traces of the whole set.
        #[arg(long)]
        traces: Option<usize>,
        /// Override the seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Write only shard i of n (disjoint, reproducible pieces of the same set), e.g. 0/4.
        #[arg(long)]
        shard: Option<String>,
        /// Draw the inputs from the cells of a network instead (run in the exact engine with random
        /// connection gains, each cell's arriving input binned, replayed through the dataset's neuron).
        #[arg(
            long,
            value_name = "NETWORK.toml",
            requires = "populations",
            conflicts_with = "shard"
        )]
        from_network: Option<PathBuf>,
        /// (with --from-network) Populations whose cells are recorded, comma-separated.
        #[arg(long, value_delimiter = ',')]
        populations: Vec<String>,
        /// (with --from-network) Log-gains per connection group are drawn uniformly in +-this.
        #[arg(long, default_value_t = 1.0)]
        max_abs_log_gain: f64,
        /// (with --from-network) Cells recorded per network run.
        #[arg(long, default_value_t = 32)]
        per_run: usize,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
        /// Continue an interrupted run (same config and options) from the traces its `*.partial.h5` holds.
        #[arg(long, conflicts_with_all = ["force", "from_network"])]
        resume: bool,
    },
    /// Train a TCN-LSTM surrogate on one or more dataset files.
    Train {
        /// Dataset files, read as one set.
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Checkpoint folder to write (model.bpk, surrogate.json, learning curve).
        #[arg(long)]
        out: PathBuf,
        /// Surrogate experiment file ([arch], [training]) [default: built-in defaults, seed 1].
        #[arg(long)]
        config: Option<PathBuf>,
        /// flex (CPU, default), ndarray or wgpu (when built with those features).
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Override the number of epochs.
        #[arg(long)]
        epochs: Option<usize>,
        /// Overwrite an existing checkpoint folder.
        #[arg(long)]
        force: bool,
        /// Continue an interrupted run in --out from its last finished epoch.
        #[arg(long)]
        resume: bool,
        /// Fine-tune this checkpoint folder (its architecture, scaling and weights) instead of starting
        /// from a fresh model; the data must have its channels and bin width.
        #[arg(long)]
        init: Option<PathBuf>,
        /// On a CPU backend, take each step's gradient from burn's autodiff instead of the fused
        /// CPU step (same loss and gradient, several times slower; GPU backends always use autodiff).
        #[arg(long)]
        autodiff: bool,
    },
    /// Measure a checkpoint on held-out traces (voltage RMSE and r, spike F1 and coincidence factor).
    Eval {
        #[arg(long)]
        checkpoint: PathBuf,
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// Folder for metrics.json and figures [default: <checkpoint>/eval].
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        backend: String,
    },
    /// Train a network by recursive least squares (Kim & Chow): `rate` (Part 1), `spiking` (Part 2) or
    /// `balanced` (Part 3: a balanced E-I network trained to recorded ALM activity).
    Rls {
        /// rate, spiking or balanced.
        part: String,
        /// TOML file with the part's parameters (any omitted take the published defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Output folder [default: experiments/out/rls-<part>/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the number of training loops.
        #[arg(long)]
        loops: Option<usize>,
        /// (balanced) Continue the interrupted run saved in this folder (its state.h5).
        #[arg(long, value_name = "DIR")]
        resume: Option<PathBuf>,
        /// (balanced) Start over even if the output folder holds a run.
        #[arg(long)]
        force: bool,
    },
    /// Turn recorded rates into RLS targets: copies `rate_hz_<type>` and adds the LIF drive
    /// `utarg_<type>` = Siegert inverse of each rate, for `surge rls balanced` (`targets = "OUT"`).
    Targets {
        /// HDF5 file with rate_hz_lickright, rate_hz_lickleft (neurons x bins, Hz) and attribute bin_ms.
        #[arg(long)]
        rates: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Std of the white-noise input assumed by the transfer function (threshold 1, reset 0 units).
        #[arg(long, default_value_t = 0.31)]
        sigma: f64,
        #[arg(long, default_value_t = 10.0)]
        tau_m_ms: f64,
        #[arg(long, default_value_t = 0.0)]
        t_ref_ms: f64,
        /// Rates below this are raised to it (the inverse of a zero rate is minus infinity).
        #[arg(long, default_value_t = 0.1)]
        min_rate_hz: f64,
        #[arg(long)]
        force: bool,
    },
    /// Fit connection gains by gradient descent through surrogate neurons to a target band, then re-check
    /// the result in the exact engine on held-out seeds.
    /// How well the surrogate network's gradient of the optimisation objective matches the exact
    /// engine's (central differences with common random numbers over network instances): cosine
    /// similarity with its standard error, sign agreement per group; report.json and a figure.
    Gradcheck {
        #[arg(long)]
        config: PathBuf,
        /// One or more checkpoint folders (`<checkpoint>/<type>/` per cell type).
        #[arg(long, num_args = 1.., default_value = "checkpoints/lif-accurate")]
        checkpoint: Vec<PathBuf>,
        /// Network instances (connectome, drive noise) both gradients are averaged over.
        #[arg(long, default_value_t = 16)]
        instances: usize,
        /// Instance k has seed `seed + k`.
        #[arg(long, default_value_t = 900)]
        seed: u64,
        /// gains.json written by `surge optimize` [default: the initial gains, all log-gains 0].
        #[arg(long)]
        gains: Option<PathBuf>,
        /// Spike-surrogate scales to measure (calibrated logit widths).
        #[arg(long, value_delimiter = ',', default_value = "1")]
        spike_beta: Vec<f32>,
        /// Scored window lengths (ms) [default: the experiment's].
        #[arg(long, value_delimiter = ',')]
        window_ms: Vec<f64>,
        /// The exact engine's scored window for its finite differences (ms): longer windows resolve
        /// its gradient with fewer instances [default: each surrogate window].
        #[arg(long)]
        exact_ms: Option<f64>,
        /// Finite-difference step in log-gain.
        #[arg(long, default_value_t = 0.2)]
        h: f64,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Output folder [default: experiments/out/gradcheck/].
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        force: bool,
    },
    /// Optimiser seeds x held-out instances for several routes to one target (gradient through
    /// checkpoints, its random-sign control, CMA-ES on the exact engine); one table, a figure and
    /// sweep.json. Finished runs are read back, so a stopped sweep continues.
    Sweep {
        #[arg(long)]
        config: PathBuf,
        /// Routes: gradient:<checkpoint>, random-sign:<checkpoint>, cmaes.
        #[arg(long, value_delimiter = ',', required = true)]
        arms: Vec<String>,
        /// Optimiser seeds per route.
        #[arg(long, default_value_t = 10)]
        seeds: usize,
        /// The first optimiser seed.
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// Held-out instances are drawn from this seed.
        #[arg(long)]
        heldout_seed: u64,
        #[arg(long, default_value_t = 10)]
        heldout: usize,
        /// Override the experiment's iterations.
        #[arg(long)]
        iterations: Option<usize>,
        /// CMA-ES's exact-run budget [default: the gradient's windows, iterations x batch].
        #[arg(long)]
        cmaes_evals: Option<usize>,
        /// Output folder [default: experiments/out/sweep/].
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        backend: String,
    },
    Optimize {
        /// Optimisation experiment (network, cell types, objective, optimizer, re-check).
        #[arg(long)]
        config: PathBuf,
        /// Folder with one surrogate checkpoint per cell type (`<checkpoint>/<type>/`).
        #[arg(long, default_value = "checkpoints/lif-default")]
        checkpoint: PathBuf,
        /// flex (CPU, default), ndarray or wgpu (when built with those features).
        #[arg(long, default_value = "flex")]
        backend: String,
        /// Output folder [default: experiments/out/<config name>/].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override the number of iterations.
        #[arg(long)]
        iterations: Option<usize>,
        /// Continue the run in --out from its last iteration.
        #[arg(long)]
        resume: bool,
        /// Start over even if --out holds a run.
        #[arg(long)]
        force: bool,
        /// `random-sign`: the control run. Same loop, windows, step sizes and selection, but every
        /// parameter steps in a random direction; it must do clearly worse than the gradient.
        #[arg(long, value_enum)]
        control: Option<Control>,
        /// Optimiser seed (the iterations' drive noise and the control's signs) [default: the file's].
        #[arg(long)]
        seed: Option<u64>,
        /// Draw the held-out instances of the exact re-check from this seed (instead of the file's
        /// recheck.seeds): fresh instances, never seen while choosing settings.
        #[arg(long)]
        heldout_seed: Option<u64>,
        /// How many held-out instances --heldout-seed draws.
        #[arg(long, default_value_t = 10, requires = "heldout_seed")]
        heldout: usize,
        /// Override optimizer.spike_beta (the surrogate gradient's scale, in calibrated logit widths).
        #[arg(long)]
        spike_beta: Option<f32>,
    },
    /// Set a checkpoint's spike threshold so that it calls as many spikes as the exact neuron on
    /// training data (the class-weighted loss biases the spike logit upwards).
    Calibrate {
        #[arg(long)]
        checkpoint: PathBuf,
        /// Training data (not the held-out set).
        #[arg(long, num_args = 1.., required = true)]
        data: Vec<PathBuf>,
        /// At most this many traces are used.
        #[arg(long, default_value_t = 256)]
        traces: usize,
        /// Keep the stored threshold; only measure the logit's width at it.
        #[arg(long)]
        keep_threshold: bool,
        #[arg(long, default_value = "flex")]
        backend: String,
    },
    /// `cell`: a surrogate checkpoint vs the exact neuron on a data file's inputs. `network`: surrogate
    /// vs exact engine on the same network and connectome. `methods`: the surrogate gradient vs CMA-ES
    /// and RLS on the exact engine, same target, judged on held-out seeds.
    Compare {
        /// `cell`, `network` or `methods`.
        what: String,
        /// network, methods: optimisation experiment naming the network and its cell types.
        #[arg(long)]
        config: Option<PathBuf>,
        /// cell: data file(s) written by `surge gen` (held-out traces).
        #[arg(long, num_args = 1..)]
        data: Vec<PathBuf>,
        /// cell: how many traces (from the first).
        #[arg(long, default_value_t = 64)]
        traces: usize,
        #[arg(long, default_value = "checkpoints/lif-default")]
        checkpoint: PathBuf,
        /// network: gains.json written by `surge optimize` [default: the network as written].
        #[arg(long)]
        gains: Option<PathBuf>,
        #[arg(long, default_value = "flex")]
        backend: String,
        /// methods: a finished `surge optimize` folder to take the surrogate result from [default: run it].
        #[arg(long)]
        surrogate_run: Option<PathBuf>,
        /// methods: exact-engine evaluations CMA-ES may spend.
        #[arg(long, default_value_t = 400)]
        evals: usize,
        /// methods: CMA-ES's initial step in log-gain units.
        #[arg(long, default_value_t = 0.5)]
        sigma0: f64,
        /// methods: CMA-ES candidates per generation [default: 4 + 3 ln(groups)].
        #[arg(long)]
        population: Option<usize>,
        /// methods: CMA-ES seed [default: the experiment's optimizer seed].
        #[arg(long)]
        seed: Option<u64>,
        /// Output folder [default: experiments/out/compare-network/ or compare-methods/<config>/].
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        force: bool,
    },
    /// Work with dataset files.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Measure speed on fixed seeds and print one table.
    Bench {
        /// Which case: brunel, gen, rls, train, stream, optimize or all.
        #[arg(default_value = "all")]
        case: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Simulated time of the Brunel case (ms).
        #[arg(long, default_value_t = 1000.0)]
        duration_ms: f64,
        /// Also time a reference implementation in the same run and print the ratio: brian2 (brunel
        /// case) or pytorch (train case; the Python is $SURGE_PYTHON, default python3).
        #[arg(long)]
        reference: Option<String>,
        /// burn backend of the train, stream and optimize cases: flex, ndarray (cargo feature) or wgpu.
        #[arg(long, default_value = "flex")]
        backend: String,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Print counts, regimes, firing rates, voltage range and channel statistics of one or more files.
    Info {
        files: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge shards of one set into one file.
    Merge {
        files: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate {
            config,
            weights,
            out,
            seed,
            duration_ms,
            force,
        } => {
            if let Some(w) = weights {
                anyhow::ensure!(
                    seed.is_none() && duration_ms.is_none(),
                    "--seed and --duration-ms do not apply to --weights (the trained network's config is fixed). Fix: drop them"
                );
                return crate::rls_balanced::rerun(&w, out, force);
            }
            let config = config.expect("clap requires --config without --weights");
            let (spec, text) = load(&config, seed, duration_ms)?;
            let dir = out.unwrap_or_else(|| Path::new("experiments/out").join(&spec.name));
            run_experiment(&spec, &text, &dir, force)
        }
        Command::Validate { config } => {
            let (spec, _) = load(&config, None, None)?;
            let conn = surge::spec::Connectome::build(&spec);
            println!(
                "{}: {} populations, {} cells, {} connection groups, {} synapses, {} drives, {} steps of {} ms; seed {}",
                spec.name,
                spec.populations.len(),
                conn.n_cells,
                spec.connections.len(),
                conn.n_synapses(),
                spec.drives.len(),
                spec.steps(),
                spec.simulation.dt_ms,
                spec.seed()
            );
            Ok(())
        }
        Command::Demo { out } => crate::demo::run(&out),
        Command::Gen {
            config,
            out,
            traces,
            seed,
            shard,
            from_network,
            populations,
            max_abs_log_gain,
            per_run,
            force,
            resume,
        } => {
            let (mut cfg, _) = DatasetConfig::load(&config)?;
            if let Some(t) = traces {
                cfg.dataset.traces = t;
            }
            if let Some(s) = seed {
                cfg.dataset.seed = Some(s);
            }
            cfg.validate()
                .context("after applying command-line overrides")?;
            let shard = match shard {
                None => (0, 1),
                Some(s) => parse_shard(&s)?,
            };
            refuse_existing(&out, force)?;
            let text = toml::to_string(&cfg).context("serialising the dataset config")?;
            if let Some(net) = from_network {
                let (spec, net_text) = NetworkSpec::load(&net)?;
                let stored = format!(
                    "{text}\n# ---- inputs from network {} (populations {:?}, log-gains +-{max_abs_log_gain}, {per_run} cells per run) ----\n# {}\n",
                    net.display(),
                    populations,
                    net_text.replace('\n', "\n# ")
                );
                let pb = bar(cfg.dataset.traces as u64, "gen");
                let path = surge::data::network::generate_from_network(
                    &cfg,
                    &stored,
                    &spec,
                    &populations,
                    max_abs_log_gain,
                    per_run,
                    &out,
                    &mut |d, _| pb.set_position(d),
                )?;
                pb.finish_and_clear();
                println!(
                    "wrote {} traces drawn from {} to {}",
                    cfg.dataset.traces,
                    net.display(),
                    path.display()
                );
                println!("figure: {}", dataset_figure(&path)?.display());
                return Ok(());
            }
            let (first, end) = {
                let total = cfg.dataset.traces as u64;
                (
                    total * shard.0 as u64 / shard.1 as u64,
                    total * (shard.0 as u64 + 1) / shard.1 as u64,
                )
            };
            let pb = bar(end.saturating_sub(first), "gen");
            let t0 = std::time::Instant::now();
            let mut first_call = true;
            let path =
                surge::data::generate_resumable(&cfg, &text, &out, shard, resume, &mut |d, t| {
                    if first_call && resume {
                        println!(
                            "resuming {}: {d} of {t} traces already written",
                            out.display()
                        );
                    }
                    first_call = false;
                    pb.set_position(d)
                })?;
            pb.finish_and_clear();
            let secs = t0.elapsed().as_secs_f64();
            let cell_s = (end - first) as f64 * cfg.dataset.duration_ms / 1000.0;
            println!(
                "wrote {} traces (shard {}/{}) to {} in {:.1} s ({:.0} simulated cell-seconds per second)",
                end - first,
                shard.0,
                shard.1,
                path.display(),
                secs,
                cell_s / secs
            );
            print_info(&DatasetReader::open_unchecked(std::slice::from_ref(&path))?.info()?);
            println!("figure: {}", dataset_figure(&path)?.display());
            Ok(())
        }
        Command::Train {
            data,
            out,
            config,
            backend,
            epochs,
            init,
            force,
            resume,
            autodiff,
        } => train_command(
            data, out, config, backend, epochs, init, force, resume, autodiff,
        )
        .map(|_| ()),
        Command::Eval {
            checkpoint,
            data,
            out,
            backend,
        } => eval_command(checkpoint, data, out, backend).map(|_| ()),
        Command::Calibrate {
            checkpoint,
            data,
            traces,
            keep_threshold,
            backend,
        } => {
            let device = surge::surrogate::backend::device(&backend)?;
            let c = surge::surrogate::eval::calibrate(
                &checkpoint,
                &data,
                traces,
                keep_threshold,
                &device,
            )?;
            println!(
                "spike-logit threshold {:.3}{}: {} exact spikes; at threshold 0 the surrogate called {}. \
                 Logit rise per bin at threshold crossings (median): {:.3}. Saved in {}",
                c.threshold,
                if keep_threshold { " (kept)" } else { "" },
                c.exact_spikes,
                c.at_zero,
                c.width,
                checkpoint.join("surrogate.json").display()
            );
            Ok(())
        }
        Command::Compare {
            what,
            config,
            data,
            traces,
            checkpoint,
            gains,
            backend,
            surrogate_run,
            evals,
            sigma0,
            population,
            seed,
            out,
            force,
        } => {
            anyhow::ensure!(
                ["cell", "network", "methods"].contains(&what.as_str()),
                "unknown comparison `{what}`. Fix: use `surge compare cell`, `surge compare network` or `surge compare methods`"
            );
            if what == "cell" {
                anyhow::ensure!(
                    !data.is_empty(),
                    "`compare cell` needs --data FILE (traces written by `surge gen`)"
                );
                return crate::cell_cli::run(crate::cell_cli::Args {
                    checkpoint,
                    data,
                    traces,
                    backend,
                    out,
                    force,
                });
            }
            let config = config.with_context(|| {
                format!("`compare {what}` needs --config FILE (an optimisation experiment, e.g. experiments/alpha_to_beta.toml)")
            })?;
            if what == "methods" {
                let seed = match seed {
                    Some(s) => s,
                    None => {
                        surge::netopt::optimize::OptimizeConfig::load(&config)?
                            .0
                            .optimizer
                            .seed
                    }
                };
                return crate::methods_cli::run(crate::methods_cli::Args {
                    config,
                    checkpoint,
                    backend,
                    surrogate_run,
                    cmaes: surge::netopt::search::CmaesConfig {
                        evaluations: evals,
                        sigma0,
                        population,
                        seed,
                    },
                    out,
                    force,
                })
                .map(|_| ());
            }
            crate::optimize_cli::compare_network(
                &config,
                &checkpoint,
                &backend,
                gains.as_deref(),
                out,
                force,
            )
            .map(|_| ())
        }
        Command::Gradcheck {
            config,
            checkpoint,
            instances,
            seed,
            gains,
            spike_beta,
            window_ms,
            exact_ms,
            h,
            backend,
            out,
            force,
        } => {
            let windows_ms = if window_ms.is_empty() {
                let (cfg, _, _) = surge::netopt::optimize::OptimizeConfig::load(&config)?;
                vec![cfg.optimizer.window_ms]
            } else {
                window_ms
            };
            gradcheck::run(gradcheck::Args {
                config,
                checkpoints: checkpoint,
                instances,
                seed,
                gains,
                spike_betas: spike_beta,
                windows_ms,
                exact_ms,
                h,
                backend,
                out,
                force,
            })
            .map(|_| ())
        }
        Command::Sweep {
            config,
            arms,
            seeds,
            first_seed,
            heldout_seed,
            heldout,
            iterations,
            cmaes_evals,
            out,
            backend,
        } => sweep::run(sweep::Args {
            config,
            arms: arms
                .iter()
                .map(|a| sweep::Arm::parse(a))
                .collect::<Result<_>>()?,
            seeds,
            first_seed,
            heldout_seed,
            heldout,
            iterations,
            cmaes_evals,
            out,
            backend,
        })
        .map(|_| ()),
        Command::Optimize {
            config,
            checkpoint,
            backend,
            out,
            iterations,
            resume,
            force,
            control,
            seed,
            heldout_seed,
            heldout,
            spike_beta,
        } => crate::optimize_cli::run(crate::optimize_cli::Args {
            config,
            checkpoint,
            backend,
            out,
            iterations,
            resume,
            force,
            control: control.map(|c| c.name().to_string()),
            seed,
            heldout_seed,
            heldout,
            spike_beta,
        })
        .map(|_| ()),
        Command::Targets {
            rates,
            out,
            sigma,
            tau_m_ms,
            t_ref_ms,
            min_rate_hz,
            force,
        } => {
            refuse_existing(&out, force)?;
            let how = surge::exact::balanced_files::DriveFromRate {
                sigma,
                tau_m_ms,
                t_ref_ms,
                min_rate_hz,
            };
            let (n, bins) = surge::exact::balanced_files::targets_from_rates(&rates, &out, &how)?;
            println!(
                "wrote {} targets for {n} neurons x {bins} bins (u = f^-1(rate), sigma {sigma}, tau_m {tau_m_ms} ms)",
                out.display()
            );
            Ok(())
        }
        Command::Rls {
            part,
            config,
            out,
            loops,
            resume,
            force,
        } => {
            if part == "balanced" {
                let out = resume
                    .clone()
                    .or(out)
                    .unwrap_or_else(|| Path::new("experiments/out").join("rls-balanced"));
                return crate::rls_balanced::run(crate::rls_balanced::Args {
                    config,
                    out,
                    loops,
                    resume: resume.is_some(),
                    force,
                });
            }
            anyhow::ensure!(
                resume.is_none(),
                "--resume applies to `surge rls balanced` only. Fix: drop --resume (parts 1 and 2 run in seconds)"
            );
            rls_small(&part, config, out, loops).map(|_| ())
        }
        Command::Data { command } => match command {
            DataCommand::Info { files, json } => {
                let info = DatasetReader::open_unchecked(&files)?.info()?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&info)?);
                } else {
                    print_info(&info);
                }
                Ok(())
            }
            DataCommand::Merge { files, out, force } => {
                refuse_existing(&out, force)?;
                let path = surge::data::merge(&files, &out)?;
                println!("merged {} files into {}", files.len(), path.display());
                print_info(&DatasetReader::open_unchecked(&[path])?.info()?);
                Ok(())
            }
        },
        Command::Bench {
            case,
            json,
            duration_ms,
            reference,
            backend,
        } => crate::bench::run(&case, json, duration_ms, reference.as_deref(), &backend),
    }
}

fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let parsed = s
        .split_once('/')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed.with_context(|| format!("--shard `{s}` is not of the form i/n (e.g. 0/4)"))
}

fn refuse_existing(out: &Path, force: bool) -> Result<()> {
    if out.exists() && !force {
        anyhow::bail!(
            "{} already exists. Fix: choose another output path or pass --force to overwrite it",
            out.display()
        );
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    }
    Ok(())
}

/// One trace of each regime found among the first traces of a set, voltage over its first 300 ms, drawn
/// beside the file as `<stem>_traces.{svg,png}`.
fn dataset_figure(path: &Path) -> Result<PathBuf> {
    let reader = DatasetReader::open_unchecked(&[path.to_path_buf()])?;
    let mut picked: Vec<surge::data::h5::TraceData> = Vec::new();
    for i in 0..reader.n_traces().min(64) {
        let t = reader.read(i)?;
        if !picked.iter().any(|p| p.regime == t.regime) {
            picked.push(t);
        }
    }
    // The first 300 ms: a whole second of a suprathreshold trace hides the others.
    let shown = reader.bins.min((300.0 / reader.bin_ms).ceil() as usize);
    let xs: Vec<f64> = (0..shown)
        .map(|b| (b as f64 + 1.0) * reader.bin_ms)
        .collect();
    let ys: Vec<Vec<f64>> = picked
        .iter()
        .map(|t| t.voltage.iter().take(shown).map(|&v| v as f64).collect())
        .collect();
    let stem = path
        .file_stem()
        .map_or("dataset".into(), |s| s.to_string_lossy().into_owned());
    let figs = surge::plot::save(
        &surge::plot::Lines {
            title: format!("{stem}: one trace per regime (exact neuron)"),
            x_desc: "time (ms)".into(),
            y_desc: "voltage (mV)".into(),
            series: picked
                .iter()
                .zip(&ys)
                .map(|(t, y)| {
                    (
                        format!("{:?} #{}", t.regime, t.index),
                        xs.as_slice(),
                        y.as_slice(),
                    )
                })
                .collect(),
            log_y: false,
            x_range: None,
        },
        &path.with_file_name(format!("{stem}_traces")),
    )?;
    Ok(figs.last().cloned().unwrap_or_default())
}

fn print_info(info: &DatasetInfo) {
    println!(
        "{} traces x {} bins of {} ms, seed {}, channels {}",
        info.traces,
        info.bins,
        info.bin_ms,
        info.seed,
        info.channels
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{:<15} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "regime", "traces", "mean Hz", "p10", "median", "p90", "silent"
    );
    for r in &info.regimes {
        println!(
            "{:<15} {:>7} {:>10.2} {:>8.2} {:>8.2} {:>8.2} {:>7.0}%",
            r.regime,
            r.traces,
            r.mean_rate_hz,
            r.p10_rate_hz,
            r.median_rate_hz,
            r.p90_rate_hz,
            100.0 * r.silent_fraction
        );
    }
    println!(
        "voltage range {:.2} .. {:.2} mV",
        info.voltage_min_mv, info.voltage_max_mv
    );
    for c in &info.channels {
        println!(
            "channel {:<8} mean input per bin {:>9.4}, max {:>8.3}, non-zero in {:>5.1}% of bins",
            c.name,
            c.mean_per_bin,
            c.max_per_bin,
            100.0 * c.nonzero_fraction
        );
    }
}

/// Loads an experiment and applies command-line overrides, re-validating the result.
fn load(path: &Path, seed: Option<u64>, duration_ms: Option<f64>) -> Result<(NetworkSpec, String)> {
    let (mut spec, text) = NetworkSpec::load(path)?;
    if let Some(s) = seed {
        spec.simulation.seed = Some(s);
    }
    if let Some(d) = duration_ms {
        spec.simulation.duration_ms = d;
    }
    spec.validate()
        .context("after applying command-line overrides")?;
    Ok((spec, text))
}

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40.cyan/blue}] {percent:>3}% {elapsed_precise} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn run_experiment(spec: &NetworkSpec, source_text: &str, dir: &Path, force: bool) -> Result<()> {
    experiment::prepare_out_dir(dir, force)?;
    // The stored config is the effective one (overrides applied), followed by the file as written.
    let effective = toml::to_string(spec).context("serialising the experiment")?;
    let stored = format!(
        "{effective}\n# ---- source file as written ----\n# {}\n",
        source_text.replace('\n', "\n# ")
    );
    let pb = bar(spec.steps() as u64, "simulate");
    let (conn, res, build_s, sim_s) =
        experiment::build_and_simulate(spec, &mut |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    let mut metrics = experiment::analyse(spec, &conn, &res, build_s, sim_s);
    let outputs = experiment::write_outputs(dir, spec, &stored, &conn, &res, &mut metrics)?;
    print_summary(&metrics);
    println!("results: {}", outputs.results.display());
    println!("metrics: {}", outputs.metrics.display());
    for f in &outputs.figures {
        println!("figure:  {}", f.display());
    }
    Ok(())
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_summary(m: &Metrics) {
    println!(
        "{}: {} cells, {} synapses, {:.0} ms; build {:.2} s, simulate {:.2} s ({:.2e} synaptic events/s), write {:.2} s",
        m.name,
        m.n_cells,
        m.n_synapses,
        m.duration_ms,
        m.wall_clock.build_s,
        m.wall_clock.simulate_s,
        m.synaptic_events as f64 / m.wall_clock.simulate_s.max(1e-9),
        m.wall_clock.write_s
    );
    println!(
        "{:<12} {:>7} {:>9} {:>8} {:>8} {:>9} {:>12}",
        "population", "cells", "rate Hz", "CV ISI", "Fano", "peak Hz", "mean-field Hz"
    );
    for p in &m.populations {
        println!(
            "{:<12} {:>7} {:>9.2} {:>8} {:>8} {:>9} {:>12}",
            p.name,
            p.size,
            p.rate_hz,
            opt(p.cv_isi, 2),
            opt(p.fano_100ms, 2),
            opt(p.rate_peak_hz, 1),
            opt(p.mean_field_rate_hz, 2)
        );
    }
    for s in &m.signals {
        println!(
            "signal {:<14} mean {:>10.3}  peak {:>6} Hz  alpha {:.2} beta {:.2} gamma {:.2}",
            s.name,
            s.mean,
            opt(s.peak_hz, 1),
            s.band_fraction.alpha_8_12,
            s.band_fraction.beta_15_30,
            s.band_fraction.gamma_30_60
        );
    }
}

/// `surge train`: trains (or fine-tunes) a surrogate, prints the learning curve, draws it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_command(
    data: Vec<PathBuf>,
    out: PathBuf,
    config: Option<PathBuf>,
    backend: String,
    epochs: Option<usize>,
    init: Option<PathBuf>,
    force: bool,
    resume: bool,
    autodiff: bool,
) -> Result<surge::surrogate::train::SurrogateMeta> {
    let (arch, mut tc) = match &config {
        Some(p) => {
            let e = surge::surrogate::train::SurrogateExperiment::load(p)?;
            (e.arch, e.training)
        }
        None => (None, surge::surrogate::train::TrainConfig::new(1)),
    };
    if let Some(e) = epochs {
        tc.epochs = e;
    }
    if init.is_some() {
        tc.init = init;
    }
    tc.validate()?;
    if out.join("model.bpk").exists() && !force && !resume {
        anyhow::bail!(
            "{} already holds a checkpoint. Fix: choose another --out or pass --force",
            out.display()
        );
    }
    let device = surge::surrogate::backend::device(&backend)?;
    let pb = bar(tc.epochs as u64, "train");
    let meta = surge::surrogate::train::train(
        &data,
        arch,
        &tc,
        &out,
        &device,
        !autodiff && matches!(backend.as_str(), "flex" | "ndarray"),
        resume,
        &mut |e, _, vl| {
            pb.set_position(e as u64);
            pb.set_message(format!("val {vl:.4}"));
            true
        },
    )?;
    pb.finish_and_clear();
    let xs: Vec<f64> = meta.epochs.iter().map(|e| e.epoch as f64).collect();
    let tr: Vec<f64> = meta.epochs.iter().map(|e| e.train_loss).collect();
    let va: Vec<f64> = meta.epochs.iter().map(|e| e.val_loss).collect();
    let figs = surge::plot::save(
        &surge::plot::Lines {
            title: "surrogate learning curve".into(),
            x_desc: "epoch".into(),
            y_desc: "loss (MSE + lambda BCE)".into(),
            series: vec![
                ("train".into(), xs.as_slice(), tr.as_slice()),
                ("validation".into(), xs.as_slice(), va.as_slice()),
            ],
            log_y: true,
            x_range: None,
        },
        &out.join("learning_curve"),
    )?;
    println!(
        "{:>6} {:>11} {:>11} {:>13} {:>13}",
        "epoch", "train loss", "val loss", "val V MSE", "val spike BCE"
    );
    for e in &meta.epochs {
        println!(
            "{:>6} {:>11.4} {:>11.4} {:>13.4} {:>13.4}",
            e.epoch, e.train_loss, e.val_loss, e.val_voltage_mse, e.val_spike_bce
        );
    }
    println!(
        "best epoch {}; checkpoint {}",
        meta.best_epoch,
        out.display()
    );
    for f in figs {
        println!("figure: {}", f.display());
    }
    Ok(meta)
}

/// `surge eval`: held-out metrics of a checkpoint, written to metrics.json, with trace figures.
/// Where a comparison's report went, and the PNG of each figure (the SVG lies beside it).
pub(crate) fn print_outputs(report: &Path, figures: &[PathBuf]) {
    println!("report: {}", report.display());
    for f in figures
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
    {
        println!("figure: {}", f.display());
    }
}

/// Exact against predicted voltage of one trace, as `<stem>.{svg,png}`; returns the PNG.
pub(crate) fn trace_figure(
    stem: &Path,
    t: &surge::data::h5::TraceData,
    p: &surge::surrogate::eval::Prediction,
    bin_ms: f64,
) -> Result<PathBuf> {
    let xs: Vec<f64> = (0..t.voltage.len())
        .map(|b| (b as f64 + 1.0) * bin_ms)
        .collect();
    let ex: Vec<f64> = t.voltage.iter().map(|&x| x as f64).collect();
    let pr: Vec<f64> = p.voltage.iter().map(|&x| x as f64).collect();
    let figs = surge::plot::save(
        &surge::plot::Lines {
            title: format!("trace {} ({:?}): exact vs surrogate", t.index, t.regime),
            x_desc: "time (ms)".into(),
            y_desc: "voltage (mV)".into(),
            series: vec![
                ("exact".into(), xs.as_slice(), ex.as_slice()),
                ("surrogate".into(), xs.as_slice(), pr.as_slice()),
            ],
            log_y: false,
            x_range: None,
        },
        stem,
    )?;
    Ok(figs.last().cloned().unwrap_or_default())
}

pub(crate) fn eval_command(
    checkpoint: PathBuf,
    data: Vec<PathBuf>,
    out: Option<PathBuf>,
    backend: String,
) -> Result<surge::surrogate::eval::EvalMetrics> {
    let device = surge::surrogate::backend::device(&backend)?;
    let (m, examples) = surge::surrogate::eval::evaluate(&checkpoint, &data, &device)?;
    let dir = out.unwrap_or_else(|| checkpoint.join("eval"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    surge::results::atomic_write(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&m)?.as_bytes(),
    )?;
    println!("{} held-out traces", m.traces);
    println!(
        "voltage RMSE {:.3} mV (subthreshold bins {:.3} mV), r {:.4}",
        m.voltage_rmse_mv, m.subthreshold_rmse_mv, m.voltage_r
    );
    println!(
        "spikes: precision {:.3}, recall {:.3}, F1 {:.3} at +-{} ms; coincidence factor {:.3}",
        m.spike_precision,
        m.spike_recall,
        m.spike_f1,
        surge::surrogate::eval::SPIKE_TOL_MS,
        m.coincidence_gamma
    );
    println!(
        "rate: exact {:.2} Hz, predicted {:.2} Hz, mean |error| {:.2} Hz",
        m.rate_exact_hz, m.rate_predicted_hz, m.rate_abs_error_hz
    );
    for (k, (t, p)) in examples.iter().enumerate() {
        let fig = trace_figure(&dir.join(format!("trace_{k}")), t, p, m.bin_ms)?;
        println!("figure: {}", fig.display());
    }
    println!("metrics: {}", dir.join("metrics.json").display());
    Ok(m)
}

/// `surge rls rate|spiking`: Kim & Chow Parts 1 and 2; returns the test-trial mean Pearson r.
pub(crate) fn rls_small(
    part: &str,
    config: Option<PathBuf>,
    out: Option<PathBuf>,
    loops: Option<usize>,
) -> Result<f64> {
    use surge::exact::rls;
    let text = match &config {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => String::new(),
    };
    let origin = config
        .as_ref()
        .map_or("defaults".to_string(), |p| p.display().to_string());
    let dir = out.unwrap_or_else(|| Path::new("experiments/out").join(format!("rls-{part}")));
    let t0 = std::time::Instant::now();
    let (json, per_loop, test_r) = match part {
        "rate" => {
            let mut c: rls::RateRnnConfig =
                toml::from_str(&text).with_context(|| format!("cannot parse {origin}"))?;
            if let Some(l) = loops {
                c.loops = l;
            }
            anyhow::ensure!(
                c.n >= 2 && c.loops >= 1 && c.dt_ms > 0.0 && c.tau_ms > 0.0,
                "invalid rate-network parameters in {origin}. Fix: n >= 2, loops >= 1, dt_ms > 0, tau_ms > 0"
            );
            let pb = bar(c.loops as u64, "rls rate");
            let r = rls::train_rate_rnn(&c, &mut |d, _| pb.set_position(d));
            pb.finish_and_clear();
            (
                serde_json::json!({ "config": c, "result": r }),
                Vec::new(),
                r.mean_test_r,
            )
        }
        "spiking" => {
            let mut c: rls::SpikingRlsConfig =
                toml::from_str(&text).with_context(|| format!("cannot parse {origin}"))?;
            if let Some(l) = loops {
                c.loops = l;
            }
            anyhow::ensure!(
                c.n >= 2 && c.loops >= 1 && c.dt_ms > 0.0 && c.bin_ms >= c.dt_ms,
                "invalid spiking-network parameters in {origin}. Fix: n >= 2, loops >= 1, 0 < dt_ms <= bin_ms"
            );
            let pb = bar(c.loops as u64, "rls spiking");
            let r = rls::train_spiking(&c, &mut |d, _| pb.set_position(d));
            pb.finish_and_clear();
            let per = r.train_r.clone();
            (
                serde_json::json!({ "config": c, "result": r }),
                per,
                r.mean_test_r,
            )
        }
        other => anyhow::bail!(
            "unknown RLS part `{other}`. Fix: use `rate` (Part 1), `spiking` (Part 2) or `balanced` (Part 3)"
        ),
    };
    let wall = t0.elapsed().as_secs_f64();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut json = json;
    json["wall_clock_s"] = serde_json::json!(wall);
    surge::results::atomic_write(
        &dir.join("metrics.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    println!("RLS {part}: test-trial mean Pearson r {test_r:.4} ({wall:.1} s)");
    if !per_loop.is_empty() {
        let xs: Vec<f64> = (1..=per_loop.len()).map(|i| i as f64).collect();
        let figs = surge::plot::save(
            &surge::plot::Lines {
                title: format!("RLS {part}: training-trial correlation per loop"),
                x_desc: "loop".into(),
                y_desc: "mean Pearson r".into(),
                series: vec![("training trials".into(), xs.as_slice(), per_loop.as_slice())],
                log_y: false,
                x_range: None,
            },
            &dir.join("correlation"),
        )?;
        println!("figure:  {}", figs[1].display());
    }
    println!("metrics: {}", dir.join("metrics.json").display());
    Ok(test_r)
}
