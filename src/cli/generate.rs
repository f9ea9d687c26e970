//! `surge gen`: a surrogate training set (HDF5) of single-neuron responses, from the dataset's own
//! input statistics or from what a network's cells receive.

use super::ui::{self, bar, refuse_existing};
use anyhow::{Context, Result};
use std::path::PathBuf;
use surge::data::{DatasetConfig, DatasetReader};
use surge::spec::NetworkSpec;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(args: Args) -> Result<()> {
    let Args {
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
    } = args;
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
        println!("figure: {}", surge::plot::reports::dataset_traces(&path)?.display());
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
    ui::print_dataset_info(&DatasetReader::open_unchecked(std::slice::from_ref(&path))?.info()?);
    println!("figure: {}", surge::plot::reports::dataset_traces(&path)?.display());
    Ok(())
}

fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let parsed = s
        .split_once('/')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    parsed.with_context(|| format!("--shard `{s}` is not of the form i/n (e.g. 0/4)"))
}

