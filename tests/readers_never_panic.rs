//! Property tests of the readers: generated experiment files (shipped ones with lines dropped,
//! repeated, cut or given other values, and arbitrary text) and damaged dataset files (truncated,
//! bytes overwritten) must give a value or an error, never a panic.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use surge::data::{DatasetConfig, DatasetReader};
use surge::spec::NetworkSpec;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(repo(name)).unwrap()
}

/// Values a field might be given by mistake.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("\"\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("true".to_string()),
        Just("18446744073709551615".to_string()),
        "[a-z_]{1,8}".prop_map(|s| format!("\"{s}\"")),
        (-1e6f64..1e6).prop_map(|x| format!("{x}")),
    ]
}

/// A shipped file changed the way people change files.
fn mutated(text: String) -> impl Strategy<Value = String> {
    let n = text.lines().count().max(1);
    (0..n, 0..4usize, token(), 0..text.len().max(1)).prop_map(move |(line, how, tok, cut)| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        match how {
            0 => {
                lines.remove(line);
            }
            1 => {
                let l = lines[line].clone();
                lines.insert(line, l);
            }
            2 => {
                if let Some((k, _)) = lines[line].split_once('=') {
                    lines[line] = format!("{k}= {tok}");
                }
            }
            _ => {
                let mut t = lines.join("\n");
                let mut c = cut.min(t.len());
                while !t.is_char_boundary(c) {
                    c -= 1;
                }
                t.truncate(c);
                return t;
            }
        }
        lines.join("\n")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn network_files_are_read_or_refused(text in prop_oneof![mutated(shipped("experiments/ei_small.toml")), mutated(shipped("experiments/hnn_alpha.toml")), ".{0,200}"]) {
        let _ = NetworkSpec::from_toml_str(&text, "generated.toml");
    }

    #[test]
    fn dataset_files_are_read_or_refused(text in prop_oneof![mutated(shipped("experiments/dataset_pyramidal.toml")), mutated(shipped("experiments/dataset_lif.toml")), ".{0,200}"]) {
        let _ = DatasetConfig::from_toml_str(&text, "generated.toml");
    }
}

/// The bytes of a small set, written once for the HDF5 cases.
fn small_set_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::read(small_set(dir.path())).unwrap()
    })
}

fn small_set(dir: &Path) -> PathBuf {
    let text = shipped("experiments/dataset_lif.toml");
    let mut cfg = DatasetConfig::from_toml_str(&text, "dataset_lif.toml").unwrap();
    cfg.dataset.traces = 2;
    cfg.dataset.duration_ms = 100.0;
    cfg.dataset.chunk_traces = 1;
    cfg.validate().unwrap();
    let path = dir.join("small.h5");
    surge::data::generate_to_file(&cfg, &text, &path, (0, 1), &mut |_, _| {}).unwrap();
    path
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn damaged_dataset_files_are_read_or_refused(cut in 0.0f64..1.0, at in 0.0f64..1.0, junk in proptest::collection::vec(any::<u8>(), 1..64)) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = small_set_bytes().to_vec();
        let start = (at * bytes.len() as f64) as usize;
        for (b, j) in bytes[start..].iter_mut().zip(&junk) {
            *b = *j;
        }
        bytes.truncate(((1.0 - 0.5 * cut) * bytes.len() as f64) as usize);
        let path = dir.path().join("damaged.h5");
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(r) = DatasetReader::open(std::slice::from_ref(&path)) {
            for i in 0..r.n_traces() {
                let _ = r.read(i);
            }
        }
    }
}
