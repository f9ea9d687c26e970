//! Memory: this process's peak use (reported by benchmarks and long runs), and the up-front check that
//! a run's recording or state fits before it starts, so a too large run is refused with an estimate
//! instead of aborting in an allocation.

use crate::error::{Result, SurgeError};

/// Peak resident set size of this process (Linux), MB.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak-RSS high-water mark to the current RSS (Linux >= 4.0), so consecutive measurements
/// report their own peak instead of the largest so far. Elsewhere it does nothing.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Physical memory of this machine (Linux), bytes.
pub fn total_bytes() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// The most a single run may plan to hold: the machine's memory where it is known, else 64 GiB.
pub fn budget_bytes() -> f64 {
    total_bytes().unwrap_or(64.0 * 1024f64.powi(3))
}

/// Refuses a run whose estimated memory (`bytes`, for `what`) exceeds [`budget_bytes`], naming the
/// field that sets it and the estimate.
pub fn check_fits(bytes: f64, what: &str, field: &str, fix: &str) -> Result<()> {
    let budget = budget_bytes();
    if bytes.is_finite() && bytes <= budget {
        return Ok(());
    }
    Err(SurgeError::spec(
        field,
        format!(
            "{what} would need about {} but this machine has {}",
            human(bytes),
            human(budget)
        ),
        fix,
    ))
}

/// Bytes as a short human figure (`3.2 GiB`).
pub fn human(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "an unbounded amount".into();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_carry_their_unit() {
        assert_eq!(human(512.0), "512.0 B");
        assert_eq!(human(3.0 * 1024f64.powi(3)), "3.0 GiB");
    }

    #[test]
    fn a_run_larger_than_the_machine_is_refused_with_its_estimate() {
        let e = check_fits(
            1e30,
            "the recording",
            "simulation.duration_ms",
            "shorten it",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("simulation.duration_ms"), "{e}");
        assert!(e.contains("would need about"), "{e}");
        assert!(check_fits(1024.0, "x", "y", "z").is_ok());
    }
}
