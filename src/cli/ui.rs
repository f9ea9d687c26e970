//! What every command shows and shares: progress bars, tables, output files and folders, typed
//! options. Imports no command.

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use surge::data::h5::DatasetInfo;

/// The burn backend a command runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's Flex CPU backend.
    #[default]
    Flex,
    /// burn's ndarray CPU backend (cargo feature `ndarray`).
    Ndarray,
    /// GPU through wgpu (cargo feature `wgpu`).
    Wgpu,
    /// NVIDIA CUDA (cargo feature `cuda`).
    Cuda,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether the fused CPU kernels can stand in for burn's autodiff on this backend.
    pub fn is_cpu(self) -> bool {
        matches!(self, Backend::Flex | Backend::Ndarray)
    }

    pub fn device(self) -> surge::Result<burn::tensor::Device> {
        surge::surrogate::backend::device(self.name())
    }
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

/// An output folder that disappears again if the command fails: it is removed on drop unless
/// [`OutDir::keep`] was called, and only if this command created it.
pub struct OutDir {
    path: PathBuf,
    created: bool,
    kept: bool,
}

impl OutDir {
    /// Creates `path` (and its parents) unless it exists.
    pub fn create(path: &Path) -> Result<Self> {
        let created = !path.exists();
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create output folder {}", path.display()))?;
        Ok(OutDir {
            path: path.to_path_buf(),
            created,
            kept: false,
        })
    }

    /// Guards a folder a library call will create: removed on failure if it does not exist yet.
    pub fn guard(path: &Path) -> Self {
        OutDir {
            path: path.to_path_buf(),
            created: !path.exists(),
            kept: false,
        }
    }

    /// The command succeeded (or left something worth resuming): keep the folder.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if self.created && !self.kept {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Runs `f`, which writes into the folder `path`. If it fails and the folder did not exist before,
/// the folder is removed, unless `worth_keeping` says it holds a state to resume from.
pub fn in_out_dir<T>(
    path: &Path,
    worth_keeping: impl Fn(&Path) -> bool,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let guard = OutDir::guard(path);
    let r = f();
    if r.is_ok() || worth_keeping(path) {
        guard.keep();
    }
    r
}

/// The folder a report command writes (`out`, or `default`), refused if it holds a `report.json`
/// and `force` is not given.
pub fn report_dir(out: Option<&Path>, default: &str, force: bool) -> Result<PathBuf> {
    let dir = out.map_or_else(|| PathBuf::from(default), Path::to_path_buf);
    anyhow::ensure!(
        force || !dir.join("report.json").exists(),
        "{} already holds a report. Fix: --force or another --out",
        dir.display()
    );
    Ok(dir)
}

/// Refuses to overwrite `out` without `--force`; creates its parent folder.
pub fn refuse_existing(out: &Path, force: bool) -> Result<()> {
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

/// Where a comparison's report went, and the PNG of each figure (the SVG lies beside it).
pub fn print_outputs(report: &Path, figures: &[PathBuf]) {
    println!("report: {}", report.display());
    for f in figures
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
    {
        println!("figure: {}", f.display());
    }
}

/// A frequency as `12 Hz`, or `-` for none.
pub fn hz(p: Option<f64>) -> String {
    p.map_or("-".into(), |p| format!("{p:.0} Hz"))
}

/// An optional number with `digits` decimals, or `-`.
pub fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// Counts, regimes, rates, voltage range and channel statistics of a dataset, as a table.
pub fn print_dataset_info(info: &DatasetInfo) {
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

/// The exchange formats `surge export` writes and `surge import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExchangeFormat {
    Sonata,
}
