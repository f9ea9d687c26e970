//! Kill-and-resume: generation, surrogate training and balanced RLS are killed with SIGKILL mid-run, then
//! resumed; the result equals an uninterrupted run, compared dataset by dataset by an independent reader
//! (h5py) or byte for byte (the checkpoint). Also: the same seed and config give the same data on 1 and
//! on 2 threads.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("surge")
}

/// One test at a time: HDF5 opens files without close-on-exec, and each case times its own kill.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_ok(args: &[&dyn AsRef<std::ffi::OsStr>], threads: Option<usize>) -> String {
    let mut c = Proc::new(bin());
    c.args(args);
    if let Some(t) = threads {
        c.env("RAYON_NUM_THREADS", t.to_string());
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `args` and SIGKILLs it as soon as `ready()` holds (polled every 10 ms). Returns false when
/// the run finished by itself first.
fn kill_when(args: &[&dyn AsRef<std::ffi::OsStr>], ready: impl Fn() -> bool) -> bool {
    let mut child: Child = Proc::new(bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if ready() {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            return true;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "the run never reached the point to kill it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every dataset and every root attribute of two HDF5 files are equal (NaN equal to NaN), says h5py.
fn same_hdf5(a: &Path, b: &Path, skip_attrs: &[&str]) {
    let script = r#"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
skip = set(sys.argv[3:])
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
other = []
b.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
assert sorted(names) == sorted(other), (names, other)
for n in names:
    x, y = a[n][()], b[n][()]
    if x.dtype.kind == "f":
        assert np.array_equal(x, y, equal_nan=True), n
    else:
        assert np.array_equal(x, y), n
ka = {k for k in a.attrs if k not in skip}
assert ka == {k for k in b.attrs if k not in skip}, "attributes differ"
for k in ka:
    assert np.array_equal(np.asarray(a.attrs[k]), np.asarray(b.attrs[k])), k
print(len(names))
"#;
    let mut args: Vec<&std::ffi::OsStr> = vec![a.as_os_str(), b.as_os_str()];
    args.extend(skip_attrs.iter().map(std::ffi::OsStr::new));
    let out = common::h5py(script, &args);
    assert!(
        out.status.success(),
        "{} and {} differ: {}",
        a.display(),
        b.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn generation_killed_mid_run_resumes_to_the_same_file() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/dataset_lif.toml");
    let full = dir.path().join("full.h5");
    let killed = dir.path().join("killed.h5");
    let partial = dir.path().join("killed.partial.h5");
    run_ok(
        &[
            &"gen",
            &"--config",
            &cfg,
            &"--traces",
            &"3000",
            &"--out",
            &full,
        ],
        None,
    );
    let args: [&dyn AsRef<std::ffi::OsStr>; 7] = [
        &"gen",
        &"--config",
        &cfg,
        &"--traces",
        &"3000",
        &"--out",
        &killed,
    ];
    // Killed once a few batches are on disk.
    assert!(
        kill_when(&args, || size(&partial) > 4_000_000),
        "the run ended before it could be killed"
    );
    assert!(!killed.exists() && partial.exists());
    let mut resume = args.to_vec();
    resume.push(&"--resume");
    let out = run_ok(&resume, None);
    let line = out.lines().find(|l| l.starts_with("resuming")).unwrap();
    let done: usize = line
        .split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(done > 0 && done < 3000, "{line}");
    assert!(!partial.exists());
    same_hdf5(&full, &killed, &[]);
    // Resuming a finished file, or with another config, is refused.
    let again = Proc::new(bin()).args(&resume).output().unwrap();
    assert!(!again.status.success());
}

#[test]
fn generation_gives_the_same_bytes_of_data_on_one_and_two_threads() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/dataset_lif.toml");
    let (one, two) = (dir.path().join("one.h5"), dir.path().join("two.h5"));
    run_ok(
        &[
            &"gen",
            &"--config",
            &cfg,
            &"--traces",
            &"200",
            &"--out",
            &one,
        ],
        Some(1),
    );
    run_ok(
        &[
            &"gen",
            &"--config",
            &cfg,
            &"--traces",
            &"200",
            &"--out",
            &two,
        ],
        Some(2),
    );
    same_hdf5(&one, &two, &[]);
    // The exact network engine too: a simulated E-I network, spikes and voltages.
    let net = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/ei_small.toml");
    let (a, b) = (dir.path().join("sim1"), dir.path().join("sim2"));
    for (out, t) in [(&a, 1), (&b, 2)] {
        run_ok(
            &[
                &"simulate",
                &"--config",
                &net,
                &"--duration-ms",
                &"300",
                &"--out",
                out,
            ],
            Some(t),
        );
    }
    same_hdf5(&a.join("results.h5"), &b.join("results.h5"), &[]);
}

const SURROGATE: &str = r#"
name = "tiny"
[arch]
tcn_channels = 8
kernel = 3
dilations = [1, 2]
lstm_hidden = 16
[training]
window = 300
burn_in = 100
batch = 4
epochs = 6
steps_per_epoch = 15
lr = 3e-3
lr_min = 3e-4
patience = 10
seed = 5
"#;

/// All float parameters of a checkpoint, in module order, as bit patterns.
fn weights(dir: &Path) -> Vec<u32> {
    use burn::module::{Module, ModuleVisitor, Param};
    use burn::tensor::Tensor;
    struct Collect(Vec<u32>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let v = param.val().into_data().try_to_vec::<f32>().unwrap();
            self.0.extend(v.iter().map(|x| x.to_bits()));
        }
    }
    let device = surge::surrogate::backend::device("flex").unwrap();
    let (model, _) = surge::surrogate::train::load_checkpoint(dir, &device).unwrap();
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    assert!(c.0.len() > 1000, "{} parameters", c.0.len());
    c.0
}

#[test]
fn training_killed_mid_run_resumes_to_the_same_checkpoint() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data.h5");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/dataset_lif.toml");
    run_ok(
        &[
            &"gen",
            &"--config",
            &cfg,
            &"--traces",
            &"16",
            &"--out",
            &data,
        ],
        None,
    );
    let sur = d.join("tiny.toml");
    std::fs::write(&sur, SURROGATE).unwrap();
    let (full, killed) = (d.join("full"), d.join("killed"));
    run_ok(
        &[
            &"train",
            &"--data",
            &data,
            &"--config",
            &sur,
            &"--out",
            &full,
        ],
        None,
    );
    let args: [&dyn AsRef<std::ffi::OsStr>; 7] = [
        &"train",
        &"--data",
        &data,
        &"--config",
        &sur,
        &"--out",
        &killed,
    ];
    // Killed right after the first epoch's state is on disk.
    let state = killed.join("train_state.json");
    assert!(
        kill_when(&args, || state.exists()),
        "the run ended before it could be killed"
    );
    let meta = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join("surrogate.json")).unwrap()).unwrap()
    };
    let epochs_at_kill = meta(&killed)["epochs"].as_array().unwrap().len();
    assert!(epochs_at_kill < 6, "killed after {epochs_at_kill} epochs");
    let mut resume = args.to_vec();
    resume.push(&"--resume");
    run_ok(&resume, None);
    let (a, b) = (meta(&full), meta(&killed));
    assert_eq!(a["epochs"], b["epochs"], "per-epoch losses differ");
    assert_eq!(a["best_epoch"], b["best_epoch"]);
    // Every weight, bit for bit (the files themselves differ: burnpack stores each run's random
    // parameter ids).
    assert_eq!(
        weights(&full),
        weights(&killed),
        "the resumed model's weights differ from the uninterrupted one's"
    );
}

#[test]
fn balanced_rls_killed_mid_run_resumes_to_the_same_weights() {
    let _s = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let targets = d.join("targets.h5");
    // Synthetic rates and drives: 40 neurons, 51 bins of 20 ms, two trial types.
    let script = r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "w")
f.attrs["bin_ms"] = 20.0
t = np.arange(51) * 20.0
for k, name in enumerate(["lickright", "lickleft"]):
    x = np.sin(2 * np.pi * t[None, :] / 800.0 + 0.37 * np.arange(40)[:, None] + 1.3 * k)
    f["utarg_" + name] = 0.5 + 0.15 * x
    f["rate_hz_" + name] = 6.0 + 4.0 * x
f.close()
"#;
    let out = common::h5py(script, &[&targets]);
    assert!(out.status.success());
    let cfg = d.join("small.toml");
    std::fs::write(
        &cfg,
        format!(
            "targets = \"{}\"\nn_e = 200\nn_i = 200\nk = 40\nplastic_e = 5\nplastic_i = 5\nffwd = 10\ntrain_ms = 400.0\nloops = 8\ncheckpoint_every = 2\nseed = 9\n",
            targets.display()
        ),
    )
    .unwrap();
    let (full, killed) = (d.join("full"), d.join("killed"));
    run_ok(
        &[&"rls", &"balanced", &"--config", &cfg, &"--out", &full],
        Some(2),
    );
    let args: [&dyn AsRef<std::ffi::OsStr>; 6] =
        [&"rls", &"balanced", &"--config", &cfg, &"--out", &killed];
    let state = killed.join("state.h5");
    assert!(
        kill_when(&args, || state.exists()),
        "the run ended before it could be killed"
    );
    assert!(!killed.join("trained.h5").exists());
    run_ok(
        &[&"rls", &"balanced", &"--config", &cfg, &"--resume", &killed],
        None,
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(killed.join("metrics.json")).unwrap())
            .unwrap();
    assert!(
        m["loops_this_run"].as_u64().unwrap() < 8,
        "the resumed run started over"
    );
    // Weights, feedforward weights, test inputs: all equal.
    same_hdf5(
        &full.join("trained.h5"),
        &killed.join("trained.h5"),
        &["wall_clock_s"],
    );
    // And the same weights on one thread.
    let one = d.join("one_thread");
    run_ok(
        &[&"rls", &"balanced", &"--config", &cfg, &"--out", &one],
        Some(1),
    );
    same_hdf5(
        &full.join("trained.h5"),
        &one.join("trained.h5"),
        &["wall_clock_s"],
    );
}
