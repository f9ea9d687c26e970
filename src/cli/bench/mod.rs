//! `surge bench`: speed of the hot loops on fixed seeds, one table (or JSON).

mod hnn;

use super::ui::{Backend, bar};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;
use surge::data::DatasetConfig;
use surge::spec::{Connectome, NetworkSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Which case (`optimize` ends with a whole optimisation beside CMA-ES on the exact engine, a few minutes).
    #[arg(value_enum, default_value_t = BenchCase::All)]
    case: BenchCase,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Simulated time of the Brunel and hnn cases (ms).
    #[arg(long, default_value_t = 1000.0)]
    duration_ms: f64,
    /// Seeds 1..=N of the hnn case (rates and spectra are compared as means over seeds).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Also time a reference implementation in the same run and print the ratio: brian2 (brunel
    /// case), nest (brunel case: NEST 3 running Surge's SONATA export), pytorch (train case),
    /// snntorch or norse (bptt case), hnn (hnn case: hnn-core with NEURON); the Python of all but
    /// brian2 is $SURGE_PYTHON, default python3.
    #[arg(long, value_enum)]
    reference: Option<Reference>,
    /// burn backend of the train, stream and optimize cases.
    #[arg(long, value_enum, default_value_t)]
    backend: Backend,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BenchCase {
    Brunel,
    Gen,
    Rls,
    Train,
    Stream,
    Optimize,
    /// Back-propagation through time in the exact engine: 1,000 current-based LIF cells x 1,000
    /// steps, and one iteration on the 270-cell column beside the fused surrogate engine's.
    Bptt,
    /// hnn-core's 270-cell column of multi-compartment cells (experiments/hnn_column.toml), one thread.
    Hnn,
    All,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Reference {
    Brian2,
    Pytorch,
    Snntorch,
    Norse,
    Hnn,
    Nest,
}

/// The name clap shows for a value.
fn name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

#[derive(Serialize)]
pub(crate) struct Row {
    case: String,
    /// One-time work before the timed part (building a connectome, loading a network, the first step).
    setup_s: f64,
    /// The timed part: one run, one loop, one step or one iteration, as the case says.
    wall_s: f64,
    /// Biological (simulated) seconds covered by the timed part.
    biological_s: f64,
    /// Wall-clock seconds per second of biological time (lower is faster; < 1 is faster than real time).
    realtime_factor: f64,
    throughput: f64,
    throughput_unit: &'static str,
    /// Peak resident set size while the case ran (the high-water mark is reset before each case).
    peak_rss_mb: Option<f64>,
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
    let pb = bar(spec.steps() as u64, "brunel");
    let t1 = Instant::now();
    let res = surge::exact::simulate(&spec, &conn, &mut |d, _| pb.set_position(d))?;
    let simulate_s = t1.elapsed().as_secs_f64();
    pb.finish_and_clear();
    Ok(Row {
        case: "brunel (10k LIF, 10M synapses, 1 thread)".into(),
        setup_s: build_s,
        wall_s: simulate_s,
        biological_s: duration_ms / 1000.0,
        realtime_factor: simulate_s / (duration_ms / 1000.0),
        throughput: res.synaptic_events as f64 / simulate_s,
        throughput_unit: "synaptic events/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// Dataset generation: the shipped conductance-LIF set, 512 traces of 1 s, all cores, written to a temporary file.
fn generation() -> Result<Row> {
    let mut cfg = DatasetConfig::from_toml_str(
        surge::shipped::DATASET_LIF,
        "shipped experiments/dataset_lif.toml",
    )?;
    cfg.dataset.traces = 512;
    let dir = std::env::temp_dir().join(format!("surge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("bench.h5");
    let pb = bar(cfg.dataset.traces as u64, "gen");
    let t0 = Instant::now();
    surge::data::generate_to_file(
        &cfg,
        surge::shipped::DATASET_LIF,
        &out,
        (0, 1),
        &mut |d, _| pb.set_position(d),
    )?;
    let secs = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let _ = std::fs::remove_dir_all(&dir);
    let cell_s = cfg.dataset.traces as f64 * cfg.dataset.duration_ms / 1000.0;
    Ok(Row {
        case: format!(
            "gen ({} traces x 1 s, conductance LIF, {} threads)",
            cfg.dataset.traces,
            rayon::current_num_threads()
        ),
        setup_s: 0.0,
        wall_s: secs,
        biological_s: cell_s,
        realtime_factor: secs / cell_s,
        throughput: cell_s / secs,
        throughput_unit: "cell-s simulated/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// Surrogate training step (forward + backward + Adam) for batch 32 x 1000 bins, default architecture, Flex.
fn train_step(backend: &str) -> Result<Row> {
    use burn::optim::{AdamConfig, GradientsParams};
    use burn::tensor::{Distribution, Tensor};
    let device = surge::surrogate::backend::device(backend)?.autodiff();
    device.seed(1);
    let model = surge::surrogate::SurrogateArch::new(4).init(&device);
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<3>::random([32, 1000, 4], Distribution::Uniform(0.0, 1.0), &device);
    let y = Tensor::<2>::random([32, 1000], Distribution::Normal(0.0, 1.0), &device);
    let mut model = model;
    let steps = 3;
    let mut times = Vec::new();
    for _ in 0..=steps {
        let t0 = Instant::now();
        let (v, _) = model.forward(x.clone());
        let loss = (v - y.clone()).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        times.push(t0.elapsed().as_secs_f64());
    }
    // The first step includes one-time allocation; report the mean of the rest.
    let mean = times[1..].iter().sum::<f64>() / steps as f64;
    Ok(train_row(
        format!("train step (batch 32 x 1000 bins, {backend})"),
        times[0],
        mean,
        surge::memory::peak_rss_mb(),
    ))
}

/// The same step as [`train_step`] on the fused CPU path (`surge train`'s default on the CPU): the
/// gradient from `surrogate::cpu::train_step`, the update from burn's Adam, the weights read back each step.
fn train_step_fused() -> Result<Row> {
    use burn::optim::AdamConfig;
    use rand::{Rng, SeedableRng};
    use surge::surrogate::cpu::train_step::{Batch, FusedTrainer, LossSpec};
    let device = surge::surrogate::backend::device("flex")?;
    let ad = device.clone().autodiff();
    ad.seed(1);
    let mut model = surge::surrogate::SurrogateArch::new(4).init(&ad);
    let mut optim = AdamConfig::new().init();
    let (b, w) = (32, 1000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let x: Vec<f32> = (0..b * w * 4).map(|_| rng.random::<f32>()).collect();
    let v: Vec<f32> = (0..b * w)
        .map(|_| rng.random::<f32>() * 2.0 - 1.0)
        .collect();
    let s = vec![0f32; b * w];
    // The reference's loss: voltage MSE over every bin.
    let spec = LossSpec {
        skip: 0,
        pos_weight: 1.0,
        lambda: 0.0,
    };
    let mut ft = FusedTrainer::new(&model);
    let steps = 3;
    let mut times = Vec::new();
    for _ in 0..=steps {
        let t0 = Instant::now();
        ft.load(&model);
        let batch = Batch {
            x: &x,
            v: &v,
            s: &s,
            b,
            w,
        };
        let (_, grads) = ft.step(&model, &batch, spec, &device);
        model = optim.step(1e-3, model, grads);
        times.push(t0.elapsed().as_secs_f64());
    }
    let mean = times[1..].iter().sum::<f64>() / steps as f64;
    Ok(train_row(
        "train step (batch 32 x 1000 bins, fused CPU)".into(),
        times[0],
        mean,
        surge::memory::peak_rss_mb(),
    ))
}

/// A row for one training step of batch 32 x 1000 bins of 0.5 ms (Surge's or the reference's).
fn train_row(case: String, first_s: f64, step_s: f64, peak_rss_mb: Option<f64>) -> Row {
    let (traces, bins, bin_s) = (32.0, 1000.0, 0.5e-3);
    Row {
        case,
        setup_s: first_s,
        wall_s: step_s,
        biological_s: traces * bins * bin_s,
        realtime_factor: step_s / (traces * bins * bin_s),
        throughput: traces * bins / step_s,
        throughput_unit: "trained bins/s",
        peak_rss_mb,
    }
}

/// Streaming inference: 1000 cells advanced 200 bins one at a time.
fn stream(backend: &str) -> Result<Row> {
    use burn::tensor::{Distribution, Tensor};
    let device = surge::surrogate::backend::device(backend)?;
    device.seed(1);
    let model = surge::surrogate::SurrogateArch::new(4).init(&device);
    let (cells, steps) = (1000, 200);
    let mut state = surge::surrogate::SurrogateState::new(&model, cells, &device);
    let x = Tensor::<2>::random([cells, 4], Distribution::Uniform(0.0, 1.0), &device);
    let t0 = Instant::now();
    for _ in 0..steps {
        let (v, _) = state.step(&model, x.clone());
        let _ = v.into_data();
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok(stream_row(backend, secs, cells, steps))
}

/// A streaming case's row: `cells` stepped `steps` bins of 0.5 ms in `secs`.
fn stream_row(how: &str, secs: f64, cells: usize, steps: usize) -> Row {
    Row {
        case: format!("stream ({cells} cells x {steps} bins, {how})"),
        setup_s: 0.0,
        wall_s: secs,
        biological_s: (cells * steps) as f64,
        realtime_factor: secs / (steps as f64 * 0.5e-3),
        throughput: (cells * steps) as f64 / secs,
        throughput_unit: "cell-bins/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    }
}

/// The same stream on the fused CPU path (`netopt::FusedStream`), raw inputs scaled inside.
fn stream_fused() -> Result<Row> {
    use burn::tensor::{Distribution, Tensor};
    let device = burn::tensor::Device::flex();
    device.seed(1);
    let arch = surge::surrogate::SurrogateArch::new(4);
    let model = arch.init(&device);
    let (cells, steps) = (1000, 200);
    let meta = surge::surrogate::train::SurrogateMeta::untrained(
        arch,
        ["ampa", "nmda", "gabaa", "gabab"]
            .map(String::from)
            .to_vec(),
        surge::surrogate::train::Scaling {
            input_scale: vec![1.0; 4],
            v_mean: 0.0,
            v_std: 1.0,
        },
        0.5,
    );
    let x: Vec<f32> = Tensor::<2>::random([cells, 4], Distribution::Uniform(0.0, 1.0), &device)
        .into_data()
        .try_to_vec()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let inputs = vec![x; steps];
    let mut stream = surge::netopt::FusedStream::new(&model, &meta, cells);
    let t0 = Instant::now();
    let v = stream.run(&inputs);
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(v.len() == steps, "the stream returned {} bins", v.len());
    Ok(stream_row("fused CPU", secs, cells, steps))
}

/// Textbook FORCE (N = 500 tanh units, tau 10 ms, dt 1 ms, g 1.5, shared P, update every 2 steps): one 1 s training loop.
fn force() -> Result<Row> {
    let mut net = surge::rls::force::Force::new(surge::rls::force::ForceConfig::default());
    net.run(1000.0, true);
    let loops = 5;
    let t0 = Instant::now();
    for _ in 0..loops {
        net.run(1000.0, true);
    }
    let per = t0.elapsed().as_secs_f64() / loops as f64;
    Ok(Row {
        case: "rls: textbook FORCE, 1 s training loop".into(),
        setup_s: 0.0,
        wall_s: per,
        biological_s: 1.0,
        realtime_factor: per,
        throughput: 500.0 * 1000.0 / per,
        throughput_unit: "unit-steps/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// Kim et al. 2023 Part 3 at full size (5000 neurons, 1824 trained to ALM rates): seconds per training
/// loop (both trial types; biological time counts the trained span of each), after building the
/// network; 200 loops is the full run.
fn balanced_loops(loops: usize) -> Result<Row> {
    let (cfg, _) = surge::rls::balanced_files::load_config(Some(Path::new("experiments/rls_part3.toml")), Some(loops))
        .context("the balanced-RLS benchmark reads experiments/rls_part3.toml and its ALM targets; run it from the root of the sources")?;
    let targets = surge::rls::balanced_files::read_targets(Path::new(&cfg.targets))?;
    let updates = 2.0 * targets.n as f64 * (cfg.train_ms / cfg.update_every_ms).round();
    let t0 = Instant::now();
    let mut tr = surge::rls::balanced::Trainer::new(&cfg, targets, &mut |_| {})?;
    let build_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for _ in 0..loops {
        tr.train_loop()?;
    }
    let per = t1.elapsed().as_secs_f64() / loops as f64;
    let trial_s = 2.0 * cfg.train_ms / 1000.0;
    Ok(Row {
        case: format!("rls: balanced Part 3, s per loop ({loops} loops)"),
        setup_s: build_s,
        wall_s: per,
        biological_s: trial_s,
        realtime_factor: per / trial_s,
        throughput: updates / per,
        throughput_unit: "RLS updates/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// A script under benches/reference/, from the working directory or the source tree.
fn reference_script(name: &str) -> std::path::PathBuf {
    let rel = Path::new("benches/reference").join(name);
    if rel.is_file() {
        rel
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }
}

/// Runs a reference script under benches/reference/ with `python` and parses the JSON line it prints
/// last; `install` says what the script needs, for the error a user sees when it fails.
fn python_reference(
    python: &str,
    name: &str,
    args: &[String],
    install: &str,
) -> Result<serde_json::Value> {
    let script = reference_script(name);
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("cannot start `{python}`. Fix: {install}"))?;
    if !out.status.success() {
        bail!(
            "the reference {} failed. Fix: {install}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .with_context(|| format!("unexpected output of {}: {line}", script.display()))
}

/// The same training step in PyTorch (benches/reference/train_step_torch.py), run by `$SURGE_PYTHON`
/// (default `python3`), so that a PyTorch kept in its own virtual environment can be used.
fn torch_train_step() -> Result<Row> {
    let python = std::env::var("SURGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let v = python_reference(
        &python,
        "train_step_torch.py",
        &[],
        &format!(
            "install torch for `{python}` (`pip install torch`), or set SURGE_PYTHON to a Python that has it"
        ),
    )?;
    Ok(train_row(
        format!(
            "PyTorch {} train step ({} threads)",
            v["torch"].as_str().unwrap_or("?"),
            v["threads"]
        ),
        v["first_s"].as_f64().unwrap_or(f64::NAN),
        v["step_s"].as_f64().unwrap_or(f64::NAN),
        None,
    ))
}

/// The bptt case's layer: 1,000 current-based LIF cells (exponential synaptic current) with 10%
/// recurrent connectivity and Poisson input, 1,000 steps of 1 ms; the loss is the mean membrane
/// potential plus 1e-3 times the spike count, as in `benches/reference/lif_bptt.py`.
const BPTT_LAYER: &str = r#"
name = "bptt_layer"
[simulation]
dt_ms = 1.0
duration_ms = 1000.0
seed = 1
[[populations]]
name = "N"
size = 1000
v_init_mv = 0.0
[populations.neuron]
model = "lif_current"
tau_m_ms = 20.0
v_threshold_mv = 1.0
v_reset_mv = 0.0
t_ref_ms = 0.0
channels = [{ name = "syn", tau_ms = 5.0 }]
[[connections]]
pre = "N"
post = "N"
channel = "syn"
rule = "probability"
p = 0.1
weight = 0.002
delay_ms = 1.0
autapses = true
[[drives]]
name = "poisson"
kind = "poisson"
targets = ["N"]
channel = "syn"
rate_hz = 50.0
weight = 0.85
"#;

/// One forward and backward pass of the differentiable exact engine, one thread (the best of
/// two after a warm-up pass, as the reference is timed).
fn bptt_layer() -> Result<Row> {
    let spec = NetworkSpec::from_toml_str(BPTT_LAYER, "bptt layer")?;
    let t0 = Instant::now();
    let conn = Connectome::build(&spec);
    let weights = conn.weights.iter().map(|&w| w as f64).collect();
    let cfg = surge::bptt::BpttConfig {
        surrogate: surge::bptt::Surrogate {
            shape: surge::bptt::SpikeShape::FastSigmoid,
            width_mv: 0.04,
        },
        ..surge::bptt::BpttConfig::default()
    };
    let net = surge::bptt::net::ExactNet::new(&spec, &conn, weights, vec![0], 0, cfg)?;
    let setup_s = t0.elapsed().as_secs_f64();
    let steps = net.steps();
    let d_signal = vec![1.0 / steps as f64; steps];
    // As the reference script times it: the best of two runs after a warm-up run.
    let mut wall = f64::INFINITY;
    let mut fwd = net.forward()?;
    for _ in 0..2 {
        let t = Instant::now();
        fwd = net.forward()?;
        let d_w = net.backward(&fwd, &d_signal, &[1e-3])?;
        wall = wall.min(t.elapsed().as_secs_f64());
        anyhow::ensure!(d_w.iter().all(|g| g.is_finite()), "non-finite gradient");
    }
    Ok(Row {
        case: format!(
            "exact BPTT 1000 LIF x 1000 steps ({:.0} spikes)",
            fwd.counts[0]
        ),
        setup_s,
        wall_s: wall,
        biological_s: spec.simulation.duration_ms / 1000.0,
        realtime_factor: wall / (spec.simulation.duration_ms / 1000.0),
        throughput: 1000.0 * steps as f64 / wall,
        throughput_unit: "cell-steps/s fwd+bwd",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// One optimisation iteration of the shipped alpha-to-beta experiment through the exact engine:
/// a 500 ms scored window after 100 ms of warm-up, forward and backward, gradient of every gain.
fn bptt_column() -> Result<Row> {
    let config = Path::new("experiments/alpha_to_beta.toml");
    let (mut cfg, spec, _) = surge::netopt::optimize::OptimizeConfig::load(config).context(
        "the bptt benchmark runs the shipped experiment. Fix: run it from the repository root",
    )?;
    cfg.optimizer.window_ms = 500.0;
    let t0 = Instant::now();
    let conn = Connectome::build(&spec);
    let zeros = vec![0f32; spec.connections.len()];
    let setup_s = t0.elapsed().as_secs_f64();
    let t = Instant::now();
    let ev = surge::bptt::objective::evaluate(
        &spec,
        &conn,
        &cfg,
        &cfg.optimizer.bptt_config_at(spec.simulation.dt_ms),
        &surge::bptt::objective::Params {
            log_gains: &zeros,
            log_w: None,
        },
        cfg.optimizer.warmup_ms,
        cfg.optimizer.window_ms,
    )?;
    let wall = t.elapsed().as_secs_f64();
    anyhow::ensure!(ev.d_log_gain.iter().all(|g| g.is_finite()), "non-finite gradient");
    let bio = (cfg.optimizer.warmup_ms + cfg.optimizer.window_ms) / 1000.0;
    Ok(Row {
        case: "exact BPTT iteration, 270-cell column, 500 ms".into(),
        setup_s,
        wall_s: wall,
        biological_s: bio,
        realtime_factor: wall / bio,
        throughput: 1.0 / wall,
        throughput_unit: "iterations/s",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// The bptt layer in snnTorch or Norse (benches/reference/lif_bptt.py), run by `$SURGE_PYTHON`.
fn torch_bptt(library: &str) -> Result<Row> {
    let python = std::env::var("SURGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let v = python_reference(
        &python,
        "lif_bptt.py",
        &[format!("--library={library}")],
        &format!(
            "install torch and {library} for `{python}` (`pip install torch {library}`), or set SURGE_PYTHON to a Python that has them"
        ),
    )?;
    let total = v["total_s"].as_f64().unwrap_or(f64::NAN);
    Ok(Row {
        case: format!(
            "{library} {} BPTT 1000 LIF x 1000 steps ({} spikes, {} thread)",
            v["version"].as_str().unwrap_or("?"),
            v["spikes"],
            v["threads"]
        ),
        setup_s: 0.0,
        wall_s: total,
        biological_s: 1.0,
        realtime_factor: total,
        throughput: 1e6 / total,
        throughput_unit: "cell-steps/s fwd+bwd",
        peak_rss_mb: None,
    })
}

/// The shipped Brunel network exported to SONATA and run by NEST on one thread (the export's
/// run_nest.py under `$SURGE_PYTHON`): the same connectome, drive and initial voltages.
fn nest_brunel(duration_ms: f64) -> Result<Row> {
    let mut spec =
        NetworkSpec::from_toml_str(surge::shipped::BRUNEL, "shipped experiments/brunel.toml")?;
    spec.simulation.duration_ms = duration_ms;
    spec.validate()?;
    let conn = Connectome::build(&spec);
    let tmp = std::env::temp_dir().join(format!("surge-bench-nest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let dir = tmp.join("brunel");
    let t0 = Instant::now();
    surge::sonata::export(&spec, &conn, &dir, false)?;
    let export_s = t0.elapsed().as_secs_f64();
    let python = std::env::var("SURGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .arg(dir.join("run_nest.py"))
        .args(["--threads", "1"])
        .output()
        .with_context(|| format!("cannot start `{python}`"))?;
    let _ = std::fs::remove_dir_all(&tmp);
    if !out.status.success() {
        bail!(
            "NEST failed. Fix: point SURGE_PYTHON at a Python with nest-simulator and h5py \
             (`pip install nest-simulator h5py`)\n{}",
            String::from_utf8_lossy(&out.stderr).lines().rev().take(5).collect::<Vec<_>>().join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .context("unexpected output of run_nest.py")?;
    let simulate_s = v["simulate_s"].as_f64().unwrap_or(f64::NAN);
    let spikes: usize = ["E", "I"]
        .iter()
        .map(|p| v["populations"][p]["times_ms"].as_array().map_or(0, |a| a.len()))
        .sum();
    Ok(brunel_reference_row(
        format!("NEST {} from the SONATA export (setup = export)", v["nest"].as_str().unwrap_or("?")),
        export_s,
        simulate_s,
        spikes,
        duration_ms,
    ))
}

/// A reference simulator's row for the Brunel network: every spike reaches 1,000 targets.
fn brunel_reference_row(
    case: String,
    setup_s: f64,
    simulate_s: f64,
    spikes: usize,
    duration_ms: f64,
) -> Row {
    Row {
        case,
        setup_s,
        wall_s: simulate_s,
        biological_s: duration_ms / 1000.0,
        realtime_factor: simulate_s / (duration_ms / 1000.0),
        throughput: spikes as f64 * 1000.0 / simulate_s,
        throughput_unit: "synaptic events/s",
        peak_rss_mb: None,
    }
}

/// Runs the Brian2 C++-standalone version of the Brunel network (benches/reference/brunel_brian2.py).
fn brian2(duration_ms: f64) -> Result<Row> {
    let v = python_reference(
        "python3",
        "brunel_brian2.py",
        &[format!("--duration-ms={duration_ms}")],
        "install Python 3 with brian2 and a C++ compiler (`pip install brian2 'numpy<2.2'`)",
    )?;
    let simulate_s = v["simulate_s"].as_f64().unwrap_or(f64::NAN);
    let spikes = v["spikes"].as_u64().unwrap_or(0) as usize;
    Ok(brunel_reference_row(
        "Brian2 C++ standalone (build = numpy draw)".into(),
        v["python_draw_s"].as_f64().unwrap_or(f64::NAN),
        simulate_s,
        spikes,
        duration_ms,
    ))
}

/// One optimisation iteration (forward + backward through the surrogate column) of the shipped
/// alpha-to-beta experiment for a scored window of `window_ms` (plus its 100 ms warm-up), back-propagated
/// in chunks of `chunk_ms` (0: the whole window as one graph, the reference). The peak memory shows how
/// back-propagation through time grows with the window.
fn optimize_iteration(
    window_ms: f64,
    chunk_ms: f64,
    backend: &str,
    engine: Option<surge::netopt::Engine>,
) -> Result<Row> {
    use surge::netopt::optimize::{self, OptimizeConfig};
    let path = Path::new("experiments/alpha_to_beta.toml");
    let (mut cfg, spec, _) = OptimizeConfig::load(path).context(
        "the optimize benchmark runs the shipped experiment. Fix: run it from the repository root",
    )?;
    cfg.optimizer.window_ms = window_ms;
    cfg.optimizer.bptt_chunk_ms = chunk_ms;
    let device = surge::surrogate::backend::device(backend)?.autodiff();
    let t0 = Instant::now();
    let conn = Connectome::build(&spec);
    let mut net = optimize::build_network(
        &cfg,
        &spec,
        &conn,
        Path::new("checkpoints/lif-default"),
        &device,
    )?;
    if let Some(e) = engine {
        net.set_engine(e)?;
    }
    let build_s = t0.elapsed().as_secs_f64();
    let gains = surge::netopt::Gains::new(&vec![0.0; spec.connections.len()], &device);
    let t1 = Instant::now();
    // The first half of the progress is the forward pass.
    let mut forward_s = None;
    let (rec, _, grads) =
        optimize::evaluate_with_gradient(&net, &cfg, &gains, 0, &device, &mut |done, total| {
            if chunk_ms > 0.0 && forward_s.is_none() && 2 * done > total {
                forward_s = Some(t1.elapsed().as_secs_f64());
            }
        });
    drop(grads);
    let simulate_s = t1.elapsed().as_secs_f64();
    let bio = (window_ms + cfg.optimizer.warmup_ms) / 1000.0;
    if rec.replay_error_mv > 1e-3 {
        bail!(
            "the chunked back-propagation strayed {} mV from its forward pass",
            rec.replay_error_mv
        );
    }
    let engine = match net.engine() {
        surge::netopt::Engine::Fused => "fused",
        surge::netopt::Engine::Burn => "burn",
    };
    let how = if chunk_ms > 0.0 {
        format!(
            "{engine}, {chunk_ms:.0} ms chunks; fwd {:.1} s, re-run + bwd {:.1} s",
            forward_s.unwrap_or(0.0),
            simulate_s - forward_s.unwrap_or(0.0)
        )
    } else {
        format!("{engine}, one piece")
    };
    Ok(Row {
        case: format!("optimize iteration ({window_ms:.0} ms; {how})"),
        setup_s: build_s,
        wall_s: simulate_s,
        biological_s: bio,
        realtime_factor: simulate_s / bio,
        throughput: bio / simulate_s,
        throughput_unit: "simulated s/s (fwd+bwd)",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    })
}

/// A whole run of the shipped optimisation (`experiments/alpha_to_beta.toml` through
/// `checkpoints/lif-default`, its re-check on 10 held-out instances included), then CMA-ES on the
/// exact engine with as many exact runs as the gradient simulates windows, re-checked the same way.
fn whole_optimisation(backend: &str) -> Result<Vec<Row>> {
    use surge::netopt::job::{self, Job};
    use surge::netopt::optimize::{OptimizeConfig, exact_check, heldout_seeds};
    use surge::netopt::search::{CmaesConfig, cmaes_exact};
    let config = Path::new("experiments/alpha_to_beta.toml");
    let (mut cfg, spec, _) = OptimizeConfig::load(config).context(
        "the optimize benchmark runs the shipped experiment. Fix: run it from the repository root",
    )?;
    let out = std::env::temp_dir().join(format!("surge-bench-optimize-{}", std::process::id()));
    let pb = bar(cfg.optimizer.iterations as u64, "optimize");
    let t0 = Instant::now();
    let run = job::run(
        &Job {
            config: config.to_path_buf(),
            checkpoint: "checkpoints/lif-default".into(),
            backend: backend.into(),
            out: out.clone(),
            iterations: None,
            control: None,
            seed: None,
            heldout: Some((2026, 10)),
            spike_beta: None,
            engine: None,
            resume: false,
            force: true,
        },
        &mut |e| {
            if let job::Event::Iteration(r) = e {
                pb.set_position(r.iteration as u64 + 1)
            }
        },
    );
    pb.finish_and_clear();
    let _ = std::fs::remove_dir_all(&out);
    let run = run?;
    let wall = t0.elapsed().as_secs_f64();
    let windows = cfg.optimizer.iterations * cfg.optimizer.batch.max(1);
    let window_s = (cfg.optimizer.window_ms + cfg.optimizer.warmup_ms) / 1000.0;
    let gradient = Row {
        case: format!(
            "whole optimisation, gradient ({} steps x {} windows; exact re-check {:.0} s incl.)",
            cfg.optimizer.iterations, cfg.optimizer.batch, run.exact_s
        ),
        setup_s: 0.0,
        wall_s: wall,
        biological_s: windows as f64 * window_s,
        realtime_factor: wall / (windows as f64 * window_s),
        throughput: windows as f64 * window_s / wall,
        throughput_unit: "simulated s/s (surrogate)",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    };
    cfg.recheck.seeds = heldout_seeds(2026, 10);
    let t1 = Instant::now();
    let budget = CmaesConfig {
        evaluations: windows,
        sigma0: 0.5,
        population: None,
        seed: 1,
    };
    let (gains, _) = cmaes_exact(&spec, &cfg, &budget, &mut |_| {})?;
    let search_s = t1.elapsed().as_secs_f64();
    for &seed in &cfg.recheck.seeds {
        exact_check(&spec, &cfg, &gains, seed)?;
    }
    let wall = t1.elapsed().as_secs_f64();
    let cmaes = Row {
        case: format!(
            "whole optimisation, CMA-ES on the exact engine ({windows} exact runs; re-check {:.0} s incl.)",
            wall - search_s
        ),
        setup_s: 0.0,
        wall_s: wall,
        biological_s: windows as f64 * window_s,
        realtime_factor: wall / (windows as f64 * window_s),
        throughput: windows as f64 * window_s / wall,
        throughput_unit: "simulated s/s (exact)",
        peak_rss_mb: surge::memory::peak_rss_mb(),
    };
    Ok(vec![gradient, cmaes])
}

pub fn run(args: Args) -> Result<()> {
    let Args {
        case,
        json,
        duration_ms,
        seeds,
        reference,
        backend,
    } = args;
    let backend = backend.name();
    type Case<'a> = Box<dyn Fn() -> Result<Row> + 'a>;
    let brunel_case = || brunel(duration_ms);
    match (case, reference) {
        (_, None)
        | (BenchCase::Brunel, Some(Reference::Brian2 | Reference::Nest))
        | (BenchCase::Train, Some(Reference::Pytorch))
        | (BenchCase::Bptt, Some(Reference::Snntorch | Reference::Norse))
        | (BenchCase::Hnn, Some(Reference::Hnn)) => {}
        (_, Some(r)) => bail!(
            "there is no reference `{}` for the {} case. Fix: run `surge bench brunel \
             --reference brian2` (or nest), `surge bench train --reference pytorch`, `surge bench bptt \
             --reference snntorch` (or norse) or `surge bench hnn --reference hnn`",
            name(r),
            name(case)
        ),
    }
    if seeds == 0 {
        bail!("--seeds 0 runs nothing. Fix: give --seeds 1 or more");
    }
    if case == BenchCase::Hnn {
        let (rows, report) = hnn::run(duration_ms, seeds, reference.is_some())?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(());
        }
        print_rows(&rows);
        hnn::print_comparison(&report);
        if let [ours, theirs] = rows.as_slice() {
            println!(
                "Surge's column runs at {:.1}x the speed of hnn-core/NEURON measured in this run \
                 ({:.1} s vs {:.1} s per {:.0} ms, mean over {seeds} seed(s)).",
                theirs.wall_s / ours.wall_s,
                ours.wall_s,
                theirs.wall_s,
                duration_ms
            );
        }
        return Ok(());
    }
    let cases: Vec<Case> = match case {
        BenchCase::Brunel => vec![Box::new(brunel_case)],
        BenchCase::Gen => vec![Box::new(generation)],
        // On the CPU, the fused step `surge train` uses, then burn's autodiff on the backend.
        BenchCase::Train if matches!(backend, "flex" | "ndarray") => {
            vec![Box::new(train_step_fused), Box::new(|| train_step(backend))]
        }
        BenchCase::Train => vec![Box::new(|| train_step(backend))],
        BenchCase::Stream => vec![Box::new(|| stream(backend)), Box::new(stream_fused)],
        BenchCase::Rls => vec![Box::new(force), Box::new(|| balanced_loops(2))],
        BenchCase::Optimize => {
            use surge::netopt::Engine::Burn;
            // The backend's default engine (fused on the CPU), then burn's autodiff for comparison.
            [
                (250.0, 50.0, None),
                (500.0, 50.0, None),
                (1000.0, 50.0, None),
                (1000.0, 50.0, Some(Burn)),
                (1000.0, 0.0, Some(Burn)),
            ]
            .into_iter()
            .map(|(w, c, e)| Box::new(move || optimize_iteration(w, c, backend, e)) as Case)
            .collect()
        }
        BenchCase::Hnn => unreachable!("handled above"),
        BenchCase::Bptt => vec![
            Box::new(bptt_layer),
            Box::new(bptt_column),
            Box::new(|| optimize_iteration(500.0, 50.0, backend, None)),
        ],
        BenchCase::All => vec![
            Box::new(brunel_case),
            Box::new(generation),
            Box::new(force),
            Box::new(|| balanced_loops(2)),
            Box::new(train_step_fused),
            Box::new(|| train_step(backend)),
            Box::new(|| stream(backend)),
            Box::new(stream_fused),
            Box::new(|| optimize_iteration(500.0, 50.0, backend, None)),
        ],
    };
    let mut rows = Vec::new();
    for case in &cases {
        surge::memory::reset_peak_rss();
        rows.push(case()?);
    }
    if case == BenchCase::Optimize {
        surge::memory::reset_peak_rss();
        rows.extend(whole_optimisation(backend)?);
    }
    match reference {
        None => {}
        Some(Reference::Brian2) => rows.push(brian2(duration_ms)?),
        Some(Reference::Nest) => rows.push(nest_brunel(duration_ms)?),
        Some(Reference::Pytorch) => rows.push(torch_train_step()?),
        Some(r @ (Reference::Snntorch | Reference::Norse)) => rows.push(torch_bptt(&name(r))?),
        Some(Reference::Hnn) => unreachable!("checked above"),
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print_rows(&rows);
    if let (Some(_), Some(ours), Some(theirs)) = (reference, rows.first(), rows.last()) {
        let what = match case {
            BenchCase::Train => "training step",
            BenchCase::Bptt => "forward and backward pass (1,000 LIF x 1,000 steps)",
            _ => "Brunel loop",
        };
        println!(
            "Surge's {what} runs at {:.2}x the speed of the reference measured in this run ({:.3} s vs {:.3} s).",
            theirs.wall_s / ours.wall_s,
            ours.wall_s,
            theirs.wall_s
        );
    }
    Ok(())
}

/// The timing table.
fn print_rows(rows: &[Row]) {
    println!(
        "{:<52} {:>8} {:>9} {:>11} {:>34} {:>8}",
        "case", "setup s", "wall s", "wall/bio s", "throughput", "peak MB"
    );
    for r in rows {
        println!(
            "{:<52} {:>8.3} {:>9.3} {:>11.3} {:>34} {:>8}",
            r.case,
            r.setup_s,
            r.wall_s,
            r.realtime_factor,
            format!("{:.3e} {}", r.throughput, r.throughput_unit),
            r.peak_rss_mb.map_or("-".into(), |m| format!("{m:.0}"))
        );
    }
}
