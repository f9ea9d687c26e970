//! Every malformed experiment is refused with a message that names the offending field.

use surge::spec::NetworkSpec;

const BASE: &str = r#"
name = "base"
[simulation]
dt_ms = 0.1
duration_ms = 100.0
seed = 1

[[populations]]
name = "E"
size = 10
[populations.neuron]
model = "lif_current"
v_threshold_mv = 20.0
v_reset_mv = 10.0

[[populations]]
name = "G"
size = 5
[populations.neuron]
model = "lif_conductance"

[[connections]]
pre = "E"
post = "E"
channel = "syn"
rule = "fixed_indegree"
k = 3
weight = 0.5
delay_ms = 1.5

[[drives]]
name = "noise"
kind = "poisson"
targets = ["E"]
channel = "syn"
rate_hz = 100.0
weight = 0.2

[recording]
voltages = [{ population = "E", cells = [0] }]
"#;

/// (description, text to replace, replacement, substring the error must contain)
const CASES: &[(&str, &str, &str, &str)] = &[
    ("syntax error", "seed = 1", "seed = = 1", "base"),
    (
        "unknown key",
        "dt_ms = 0.1",
        "dt_ms = 0.1\nsteps = 5",
        "steps",
    ),
    ("missing seed", "seed = 1", "", "simulation.seed"),
    (
        "negative dt",
        "dt_ms = 0.1",
        "dt_ms = -0.1",
        "simulation.dt_ms",
    ),
    (
        "zero duration",
        "duration_ms = 100.0",
        "duration_ms = 0.0",
        "simulation.duration_ms",
    ),
    (
        "empty population",
        "size = 10",
        "size = 0",
        "populations[0] (E).size",
    ),
    (
        "unknown neuron model",
        "model = \"lif_current\"",
        "model = \"hodgkin\"",
        "hodgkin",
    ),
    (
        "reset above threshold",
        "v_reset_mv = 10.0",
        "v_reset_mv = 25.0",
        "v_reset_mv",
    ),
    (
        "negative tau",
        "v_threshold_mv = 20.0\n",
        "v_threshold_mv = 20.0\ntau_m_ms = -5.0\n",
        "tau_m_ms",
    ),
    (
        "unknown pre",
        "pre = \"E\"",
        "pre = \"X\"",
        "connections[0] (X->E).pre",
    ),
    (
        "unknown channel",
        "channel = \"syn\"\nrule",
        "channel = \"ampa\"\nrule",
        "connections[0] (E->E).channel",
    ),
    ("k too large", "k = 3", "k = 10", "connections[0] (E->E).k"),
    ("k missing", "k = 3\n", "", "connections[0] (E->E).k"),
    (
        "p with fixed in-degree",
        "k = 3",
        "k = 3\np = 0.1",
        "connections[0] (E->E).p",
    ),
    (
        "bad rule",
        "rule = \"fixed_indegree\"",
        "rule = \"random\"",
        "random",
    ),
    (
        "zero delay",
        "delay_ms = 1.5",
        "delay_ms = 0.0",
        "connections[0] (E->E).delay_ms",
    ),
    (
        "negative gain",
        "delay_ms = 1.5",
        "delay_ms = 1.5\ngain = -1.0",
        "connections[0] (E->E).gain",
    ),
    (
        "negative rate",
        "rate_hz = 100.0",
        "rate_hz = -5.0",
        "drives[0] (noise).rate_hz",
    ),
    (
        "missing rate",
        "rate_hz = 100.0\n",
        "",
        "drives[0] (noise).rate_hz",
    ),
    (
        "unknown drive target",
        "targets = [\"E\"]",
        "targets = [\"Q\"]",
        "drives[0] (noise).targets",
    ),
    (
        "drive channel missing",
        "channel = \"syn\"\nrate_hz",
        "rate_hz",
        "drives[0] (noise).channel",
    ),
    (
        "fraction above one",
        "weight = 0.2",
        "weight = 0.2\nfraction = 1.5",
        "drives[0] (noise).fraction",
    ),
    (
        "stop before start",
        "weight = 0.2",
        "weight = 0.2\nstart_ms = 50.0\nstop_ms = 10.0",
        "drives[0] (noise).stop_ms",
    ),
    (
        "recorded cell out of range",
        "cells = [0]",
        "cells = [10]",
        "recording.voltages[0].cells",
    ),
    (
        "recording unknown population",
        "population = \"E\"",
        "population = \"Z\"",
        "recording.voltages[0].population",
    ),
];

#[test]
fn base_spec_is_valid() {
    NetworkSpec::from_toml_str(BASE, "base").expect("the base case is valid");
}

#[test]
fn every_bad_spec_names_its_field() {
    for (what, from, to, needle) in CASES {
        assert!(BASE.contains(from), "case `{what}`: pattern not in base");
        let text = BASE.replacen(from, to, 1);
        match NetworkSpec::from_toml_str(&text, "base") {
            Ok(_) => panic!("case `{what}` was accepted"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(needle),
                    "case `{what}`: error `{msg}` does not name `{needle}`"
                );
            }
        }
    }
}

#[test]
fn negative_conductance_is_refused_with_a_fix() {
    let text = format!(
        "{BASE}\n[[connections]]\npre = \"E\"\npost = \"G\"\nchannel = \"gabaa\"\nrule = \"all_to_all\"\nweight = -1.0\ndelay_ms = 1.0\n"
    );
    let msg = NetworkSpec::from_toml_str(&text, "base")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("connections[1] (E->G).weight") && msg.contains("reversal"),
        "{msg}"
    );
}
