//! `surge bench`: speed of the hot loops on fixed seeds, one table (or JSON).

use anyhow::{Result, bail};
use serde::Serialize;
use std::time::Instant;
use surge::spec::{Connectome, NetworkSpec};

#[derive(Serialize)]
struct Row {
    case: String,
    build_s: f64,
    simulate_s: f64,
    biological_s: f64,
    /// Wall-clock seconds per second of biological time (lower is faster; < 1 is faster than real time).
    realtime_factor: f64,
    synaptic_events_per_s: f64,
    spikes: usize,
    peak_rss_mb: Option<f64>,
}

/// Peak resident set size of this process (Linux), MB.
fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn brunel(duration_ms: f64) -> Result<Row> {
    let mut spec =
        NetworkSpec::from_toml_str(surge::shipped::BRUNEL, "shipped experiments/brunel.toml")?;
    spec.simulation.duration_ms = duration_ms;
    spec.recording.voltages.clear();
    spec.validate()?;
    let t0 = Instant::now();
    let conn = Connectome::build(&spec);
    let build_s = t0.elapsed().as_secs_f64();
    let pb = crate::cli::bar(spec.steps() as u64, "brunel");
    let t1 = Instant::now();
    let res = surge::exact::simulate(&spec, &conn, &mut |d, _| pb.set_position(d))?;
    let simulate_s = t1.elapsed().as_secs_f64();
    pb.finish_and_clear();
    Ok(Row {
        case: "brunel (10k LIF, 10M synapses, 1 thread)".into(),
        build_s,
        simulate_s,
        biological_s: duration_ms / 1000.0,
        realtime_factor: simulate_s / (duration_ms / 1000.0),
        synaptic_events_per_s: res.synaptic_events as f64 / simulate_s,
        spikes: res.spike_times_ms.len(),
        peak_rss_mb: peak_rss_mb(),
    })
}

pub fn run(case: &str, json: bool, duration_ms: f64) -> Result<()> {
    let rows = match case {
        "brunel" | "all" => vec![brunel(duration_ms)?],
        other => bail!("unknown benchmark case `{other}`. Fix: use one of brunel, all"),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<42} {:>8} {:>10} {:>9} {:>14} {:>9} {:>9}",
        "case", "build s", "simulate s", "x realtime", "syn events/s", "spikes", "peak MB"
    );
    for r in &rows {
        println!(
            "{:<42} {:>8.3} {:>10.3} {:>9.3} {:>14.3e} {:>9} {:>9}",
            r.case,
            r.build_s,
            r.simulate_s,
            r.realtime_factor,
            r.synaptic_events_per_s,
            r.spikes,
            r.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}"))
        );
    }
    Ok(())
}
