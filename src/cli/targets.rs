//! `surge targets`: recorded rates turned into RLS targets for `surge rls balanced`.

use super::ui::refuse_existing;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        rates,
        out,
        sigma,
        tau_m_ms,
        t_ref_ms,
        min_rate_hz,
        force,
    } = args;
    refuse_existing(&out, force)?;
    let how = surge::rls::balanced_files::DriveFromRate {
        sigma,
        tau_m_ms,
        t_ref_ms,
        min_rate_hz,
    };
    let (n, bins) = surge::rls::balanced_files::targets_from_rates(&rates, &out, &how)?;
    println!(
        "wrote {} targets for {n} neurons x {bins} bins (u = f^-1(rate), sigma {sigma}, tau_m {tau_m_ms} ms)",
        out.display()
    );
    Ok(())
}
