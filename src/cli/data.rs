//! `surge data`: look into and merge dataset files.

use super::ui::{self, refuse_existing};
use anyhow::Result;
use std::path::PathBuf;
use surge::data::DatasetReader;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand)]
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

pub fn run(args: Args) -> Result<()> {
    match args.command {
        DataCommand::Info { files, json } => {
            let info = DatasetReader::open_unchecked(&files)?.info()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                ui::print_dataset_info(&info);
            }
            Ok(())
        }
        DataCommand::Merge { files, out, force } => {
            refuse_existing(&out, force)?;
            let path = surge::data::merge(&files, &out)?;
            println!("merged {} files into {}", files.len(), path.display());
            ui::print_dataset_info(&DatasetReader::open_unchecked(&[path])?.info()?);
            Ok(())
        }
    }
}
