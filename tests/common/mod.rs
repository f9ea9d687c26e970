//! What the integration tests share: Python with h5py, the independent reader and writer of HDF5.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Checks once that `python3` imports h5py and numpy; otherwise panics with the fix in its first line.
pub fn require_h5py() {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    let probe = PROBE.get_or_init(|| {
        match Command::new("python3")
            .args(["-c", "import h5py, numpy"])
            .output()
        {
            Err(e) => Err(format!(
                "python3 is missing ({e}). Fix: install Python 3, then `python3 -m pip install h5py`"
            )),
            Ok(o) if !o.status.success() => Err(format!(
                "h5py is missing (the tests read and write HDF5 with it, independently of Surge). \
                 Fix: `python3 -m pip install h5py` (Debian/Ubuntu: `sudo apt install python3-h5py`)\n{}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Ok(_) => Ok(()),
        }
    });
    if let Err(e) = probe {
        panic!("{e}");
    }
}

/// Runs a Python script that uses h5py with the given arguments.
pub fn h5py<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Output {
    require_h5py();
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs")
}

/// `text` with the first `from` replaced by `to`; panics if `from` is not there, so a test that
/// edits a shipped file fails when the file changes instead of testing the unedited text.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the text to edit no longer holds `{from}`"
    );
    text.replacen(from, to, 1)
}

/// The shipped Brunel network at a tenth of its size (1,000 cells, in-degrees 80 and 20).
pub fn brunel_small() -> String {
    let mut t = std::fs::read_to_string("experiments/brunel.toml").unwrap();
    for (a, b) in [
        ("size = 8000", "size = 800"),
        ("size = 2000", "size = 200"),
        ("k = 800", "k = 80"),
        ("k = 800", "k = 80"),
        ("k = 200", "k = 20"),
        ("k = 200", "k = 20"),
    ] {
        t = edit(&t, a, b);
    }
    t
}

/// The small E-I network of conductance-based cells with the NMDA magnesium block off (as NEST
/// runs it).
pub fn ei_without_block() -> String {
    std::fs::read_to_string("experiments/ei_small.toml")
        .unwrap()
        .replace(
            "model = \"lif_conductance\"",
            "model = \"lif_conductance\"\nmg_mm = 0.0",
        )
}
