//! The dataset experiment file: neuron model, input channels and the regime mix.

use crate::error::{Result, SurgeError};
use crate::spec::CellSpec;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Input regimes of a trace.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// Weights that rarely make the cell fire.
    Subthreshold = 0,
    /// Weights up to strongly driving.
    Suprathreshold = 1,
    /// Rhythmically modulated (2-80 Hz), bursty rates with excitation and inhibition co-fluctuating.
    Network = 2,
}

impl Regime {
    pub const ALL: [Regime; 3] = [
        Regime::Subthreshold,
        Regime::Suprathreshold,
        Regime::Network,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Regime::Subthreshold => "subthreshold",
            Regime::Suprathreshold => "suprathreshold",
            Regime::Network => "network",
        }
    }

    pub fn from_code(c: u8) -> Option<Regime> {
        Regime::ALL.get(c as usize).copied()
    }
}

/// A complete, seeded dataset description.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    pub name: String,
    pub dataset: DatasetSpec,
    pub neuron: CellSpec,
    /// Presynaptic sources per receptor channel of the neuron.
    pub channels: Vec<ChannelSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub traces: usize,
    #[serde(default = "d_duration")]
    pub duration_ms: f64,
    #[serde(default = "d_bin")]
    pub bin_ms: f64,
    #[serde(default = "d_dt")]
    pub dt_ms: f64,
    pub seed: Option<u64>,
    /// Traces simulated together and written as one HDF5 chunk; memory holds one chunk per thread.
    #[serde(default = "d_chunk")]
    pub chunk_traces: usize,
    /// Fraction of traces per regime (normalised).
    pub mix: Mix,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    #[serde(default)]
    pub subthreshold: f64,
    #[serde(default)]
    pub suprathreshold: f64,
    #[serde(default)]
    pub network: f64,
}

fn d_duration() -> f64 {
    1000.0
}
fn d_bin() -> f64 {
    0.5
}
fn d_dt() -> f64 {
    0.1
}
fn d_chunk() -> usize {
    64
}

/// Presynaptic sources of one channel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelSource {
    /// A channel of the neuron model (`ampa`, `nmda`, `gabaa`, `gabab`, or a current-based channel).
    pub name: String,
    /// Candidate sources; each is active in a trace with the channel's activation probability ~ U(0.1, 0.9).
    pub n_sources: usize,
    /// Each active source fires at a rate drawn uniformly from this range (Hz).
    pub rate_hz: [f64; 2],
    /// Per regime, the range of synaptic weights, drawn log-uniformly (units of the model's weights).
    pub weights: RegimeWeights,
    /// Inhibitory channels follow excitatory fluctuations with a lag in the network regime.
    /// Default: true for names starting with "gaba" or "inh".
    pub inhibitory: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegimeWeights {
    pub subthreshold: [f64; 2],
    pub suprathreshold: [f64; 2],
    pub network: [f64; 2],
}

impl RegimeWeights {
    pub fn range(&self, r: Regime) -> [f64; 2] {
        match r {
            Regime::Subthreshold => self.subthreshold,
            Regime::Suprathreshold => self.suprathreshold,
            Regime::Network => self.network,
        }
    }
}

impl ChannelSource {
    pub fn is_inhibitory(&self) -> bool {
        self.inhibitory
            .unwrap_or_else(|| self.name.starts_with("gaba") || self.name.starts_with("inh"))
    }
}

impl DatasetConfig {
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        let c: DatasetConfig = toml::from_str(text).map_err(|e| SurgeError::Toml {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<(Self, String)> {
        let text =
            std::fs::read_to_string(path).map_err(|e| SurgeError::io("cannot read", path, e))?;
        Ok((
            Self::from_toml_str(&text, &path.display().to_string())?,
            text,
        ))
    }

    pub fn seed(&self) -> u64 {
        self.dataset.seed.unwrap_or_default()
    }

    /// Steps of the exact engine per bin.
    pub fn bin_steps(&self) -> usize {
        (self.dataset.bin_ms / self.dataset.dt_ms).round() as usize
    }

    pub fn bins(&self) -> usize {
        (self.dataset.duration_ms / self.dataset.bin_ms).round() as usize
    }

    /// Names of the input channels in file order: all channels of the neuron model.
    pub fn channel_names(&self) -> Vec<String> {
        self.neuron.channel_names()
    }

    pub fn validate(&self) -> Result<()> {
        let d = &self.dataset;
        let err = |f: &str, p: String, fix: &str| Err(SurgeError::spec(f, p, fix));
        if d.seed.is_none() {
            return err(
                "dataset.seed",
                "missing".into(),
                "add `seed = <integer>` to [dataset]",
            );
        }
        if d.traces == 0 {
            return err(
                "dataset.traces",
                "zero traces".into(),
                "ask for at least one trace",
            );
        }
        if !(d.dt_ms.is_finite() && d.dt_ms > 0.0 && d.dt_ms <= 1.0) {
            return err(
                "dataset.dt_ms",
                format!("{} is not in (0, 1] ms", d.dt_ms),
                "use e.g. 0.1",
            );
        }
        let ratio = d.bin_ms / d.dt_ms;
        if !(d.bin_ms.is_finite() && ratio >= 1.0 - 1e-9 && (ratio - ratio.round()).abs() < 1e-6) {
            return err(
                "dataset.bin_ms",
                format!(
                    "{} ms is not a whole number of dt_ms = {} steps",
                    d.bin_ms, d.dt_ms
                ),
                "use a multiple of dt_ms, e.g. 0.5 with dt 0.1",
            );
        }
        let bins = d.duration_ms / d.bin_ms;
        if !(d.duration_ms.is_finite() && bins >= 1.0 && (bins - bins.round()).abs() < 1e-6) {
            return err(
                "dataset.duration_ms",
                format!("{} ms is not a whole number of bins", d.duration_ms),
                "use a multiple of bin_ms",
            );
        }
        if d.chunk_traces == 0 || d.chunk_traces > 4096 {
            return err(
                "dataset.chunk_traces",
                format!("{} is not in 1..=4096", d.chunk_traces),
                "use e.g. 16",
            );
        }
        let m = d.mix;
        if [m.subthreshold, m.suprathreshold, m.network]
            .iter()
            .any(|x| !(x.is_finite() && *x >= 0.0))
            || m.subthreshold + m.suprathreshold + m.network <= 0.0
        {
            return err(
                "dataset.mix",
                "fractions must be >= 0 and not all zero".into(),
                "e.g. subthreshold = 0.3, suprathreshold = 0.4, network = 0.3",
            );
        }
        if self.neuron.hnn().is_some() {
            return err(
                "neuron.model",
                format!(
                    "training sets of `{}` cells are not generated yet",
                    self.neuron.model_name()
                ),
                "use lif_current or lif_conductance here; hnn-core's cells run in networks (surge simulate)",
            );
        }
        self.neuron.validate("neuron", d.dt_ms, "dataset.dt_ms")?;
        if self.channels.is_empty() {
            return err(
                "channels",
                "no input channel".into(),
                "add [[channels]] tables naming receptor channels of the neuron",
            );
        }
        let names = self.neuron.channel_names();
        for (i, c) in self.channels.iter().enumerate() {
            let f = format!("channels[{i}] ({})", c.name);
            if !names.contains(&c.name) {
                return err(
                    &format!("{f}.name"),
                    format!("the neuron has no channel `{}`", c.name),
                    &format!("use one of {names:?}"),
                );
            }
            if self.channels[..i].iter().any(|o| o.name == c.name) {
                return err(
                    &format!("{f}.name"),
                    "listed twice".into(),
                    "list each channel once",
                );
            }
            if c.n_sources == 0 {
                return err(
                    &format!("{f}.n_sources"),
                    "zero sources".into(),
                    "give at least one source",
                );
            }
            let [lo, hi] = c.rate_hz;
            if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && hi >= lo) {
                return err(
                    &format!("{f}.rate_hz"),
                    format!("[{lo}, {hi}] is not a range of rates"),
                    "give [low, high] Hz with 0 <= low <= high",
                );
            }
            for r in Regime::ALL {
                let [lo, hi] = c.weights.range(r);
                if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi >= lo) {
                    return err(
                        &format!("{f}.weights.{}", r.name()),
                        format!("[{lo}, {hi}] is not a positive range"),
                        "give [low, high] with 0 < low <= high (drawn log-uniformly; sign comes from the channel)",
                    );
                }
            }
        }
        Ok(())
    }
}
