//! Neuron model parameters as they appear in experiment files.

use crate::error::{Result, SurgeError};
use crate::exact::hnn_cells;
use serde::{Deserialize, Serialize};

/// A neuron model and its parameters: `model = "lif_current"`, `"lif_conductance"`, or one of
/// hnn-core's multi-compartment cells, `"hnn_l2_pyramidal"`, `"hnn_l5_pyramidal"`, `"hnn_basket"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum CellSpec {
    LifCurrent(LifCurrent),
    LifConductance(LifConductance),
    HnnL2Pyramidal(HnnCell),
    HnnL5Pyramidal(HnnCell),
    HnnBasket(HnnCell),
}

/// One of hnn-core's cells at its published morphology, channels and synapses
/// ([`crate::exact::hnn_cells`]), any of which an experiment may override. Inputs are Exp2Syn
/// conductances (weights in nS: hnn-core's uS times 1000) on channels named `<where>_<receptor>`; a
/// bias drive injects pA at the soma; a spike is an upward crossing of `threshold_mv` at the soma.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HnnCell {
    #[serde(default = "d_celsius")]
    pub celsius: f64,
    #[serde(default)]
    pub threshold_mv: f64,
    /// Channel parameters of the soma, replacing hnn-core's where given.
    #[serde(default, skip_serializing_if = "ChannelParams::is_empty")]
    pub soma: ChannelParams,
    /// Channel parameters of every dendritic section (pyramidal cells).
    #[serde(default, skip_serializing_if = "ChannelParams::is_empty")]
    pub dendrites: ChannelParams,
    /// Geometry of named sections (`soma`, `apical_trunk`, `apical_1`, ..., `basal_3`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sections: std::collections::BTreeMap<String, SectionParams>,
}

impl Default for HnnCell {
    fn default() -> Self {
        HnnCell {
            celsius: d_celsius(),
            threshold_mv: 0.0,
            soma: ChannelParams::default(),
            dendrites: ChannelParams::default(),
            sections: Default::default(),
        }
    }
}

/// Channel parameters in hnn-core's names and units: `hh2` (S/cm2, mV), `km`, `ca`, `kca`
/// (pS/um2), `cat` (S/cm2), `ar` (S/cm2; on L5 dendrites its value at the soma, growing as
/// `exp(0.003 x)`), `cad`'s removal time (ms). Unset: hnn-core's value.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChannelParams {
    pub gnabar_hh2: Option<f64>,
    pub gkbar_hh2: Option<f64>,
    pub gl_hh2: Option<f64>,
    pub el_hh2: Option<f64>,
    pub gbar_km: Option<f64>,
    pub gbar_ca: Option<f64>,
    pub gbar_kca: Option<f64>,
    pub gbar_cat: Option<f64>,
    pub gbar_ar: Option<f64>,
    pub taur_cad: Option<f64>,
}

impl ChannelParams {
    pub fn is_empty(&self) -> bool {
        *self == ChannelParams::default()
    }

    /// The set values by name.
    pub fn entries(&self) -> [(&'static str, Option<f64>); 10] {
        [
            ("gnabar_hh2", self.gnabar_hh2),
            ("gkbar_hh2", self.gkbar_hh2),
            ("gl_hh2", self.gl_hh2),
            ("el_hh2", self.el_hh2),
            ("gbar_km", self.gbar_km),
            ("gbar_ca", self.gbar_ca),
            ("gbar_kca", self.gbar_kca),
            ("gbar_cat", self.gbar_cat),
            ("gbar_ar", self.gbar_ar),
            ("taur_cad", self.taur_cad),
        ]
    }
}

/// A section's geometry and passive properties; unset: hnn-core's value. The number of segments
/// follows hnn-core's rule from the length.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SectionParams {
    pub length_um: Option<f64>,
    pub diam_um: Option<f64>,
    pub ra_ohm_cm: Option<f64>,
    pub cm_uf_cm2: Option<f64>,
}

fn d_celsius() -> f64 {
    37.0
}

/// Current-based LIF (Brunel 2000; Kim & Chow 2018):
/// `tau_m dv/dt = -(v - v_rest) + mu + sum_c u_c`, `tau_c du_c/dt = -u_c`, all in mV.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LifCurrent {
    #[serde(default = "d_tau_m")]
    pub tau_m_ms: f64,
    #[serde(default)]
    pub v_rest_mv: f64,
    pub v_threshold_mv: f64,
    pub v_reset_mv: f64,
    #[serde(default = "d_t_ref")]
    pub t_ref_ms: f64,
    /// Exponential synaptic channels. Default: one channel `syn` with tau 5 ms.
    #[serde(default = "d_channels")]
    pub channels: Vec<CurrentChannel>,
}

/// One exponential synaptic channel of a current-based cell.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CurrentChannel {
    pub name: String,
    pub tau_ms: f64,
    #[serde(default)]
    pub kick: Kick,
}

/// What a presynaptic spike of weight `w` adds to the channel current `u`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Kick {
    /// `u += w tau_m / tau_s`: the PSP has the area of a delta-PSP (a jump of `v` by `w` mV),
    /// so `w` reads in mV as in Brunel 2000; as `tau_s -> 0` this becomes that jump.
    #[default]
    DeltaPsp,
    /// `u += w / tau_s`: the current's integral is `w` (mV ms), the convention of Kim & Chow 2018.
    Charge,
}

fn d_tau_m() -> f64 {
    20.0
}
fn d_t_ref() -> f64 {
    2.0
}
fn d_channels() -> Vec<CurrentChannel> {
    vec![CurrentChannel {
        name: "syn".into(),
        tau_ms: 5.0,
        kick: Kick::DeltaPsp,
    }]
}

/// Conductance-based LIF with hnn-core's four receptors as difference-of-exponential (Exp2Syn) conductances:
/// `C dv/dt = -g_L (v - E_L) - sum_c g_c(t) B_c(v) (v - E_c) + I_bias`, where `B` is the NMDA Mg block
/// (Jahr & Stevens 1990) for NMDA and 1 otherwise. Weights are peak conductances (nS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LifConductance {
    #[serde(default = "d_cm")]
    pub c_m_pf: f64,
    #[serde(default = "d_gl")]
    pub g_l_ns: f64,
    #[serde(default = "d_el")]
    pub e_l_mv: f64,
    #[serde(default = "d_vth")]
    pub v_threshold_mv: f64,
    #[serde(default = "d_el")]
    pub v_reset_mv: f64,
    #[serde(default = "d_t_ref")]
    pub t_ref_ms: f64,
    /// Extracellular magnesium (mM) for the NMDA block.
    #[serde(default = "d_mg")]
    pub mg_mm: f64,
    #[serde(default)]
    pub receptors: Receptors,
}

fn d_cm() -> f64 {
    200.0
}
fn d_gl() -> f64 {
    10.0
}
fn d_el() -> f64 {
    -65.0
}
fn d_vth() -> f64 {
    -50.0
}
fn d_mg() -> f64 {
    1.0
}

/// The four receptor channels, in channel order ampa, nmda, gabaa, gabab.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Receptors {
    #[serde(default = "ampa")]
    pub ampa: ConductanceReceptor,
    #[serde(default = "nmda")]
    pub nmda: ConductanceReceptor,
    #[serde(default = "gabaa")]
    pub gabaa: ConductanceReceptor,
    #[serde(default = "gabab")]
    pub gabab: ConductanceReceptor,
}

impl Default for Receptors {
    fn default() -> Self {
        Receptors {
            ampa: ampa(),
            nmda: nmda(),
            gabaa: gabaa(),
            gabab: gabab(),
        }
    }
}

/// Rise and decay time constants (ms) and reversal potential (mV) of one Exp2Syn receptor.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConductanceReceptor {
    pub rise_ms: f64,
    pub decay_ms: f64,
    pub e_rev_mv: f64,
}

// Time constants and reversal potentials of hnn-core's Exp2Syn receptors.
fn ampa() -> ConductanceReceptor {
    ConductanceReceptor {
        rise_ms: 0.5,
        decay_ms: 5.0,
        e_rev_mv: 0.0,
    }
}
fn nmda() -> ConductanceReceptor {
    ConductanceReceptor {
        rise_ms: 1.0,
        decay_ms: 20.0,
        e_rev_mv: 0.0,
    }
}
fn gabaa() -> ConductanceReceptor {
    ConductanceReceptor {
        rise_ms: 0.5,
        decay_ms: 5.0,
        e_rev_mv: -80.0,
    }
}
fn gabab() -> ConductanceReceptor {
    ConductanceReceptor {
        rise_ms: 1.0,
        decay_ms: 20.0,
        e_rev_mv: -80.0,
    }
}

/// Channel names of the conductance-based model, in state order.
pub const RECEPTOR_NAMES: [&str; 4] = ["ampa", "nmda", "gabaa", "gabab"];

impl Receptors {
    /// Receptors in channel order.
    pub fn as_array(&self) -> [ConductanceReceptor; 4] {
        [self.ampa, self.nmda, self.gabaa, self.gabab]
    }

    pub fn as_array_mut(&mut self) -> [&mut ConductanceReceptor; 4] {
        [
            &mut self.ampa,
            &mut self.nmda,
            &mut self.gabaa,
            &mut self.gabab,
        ]
    }
}

impl CellSpec {
    /// Names of the synaptic channels, in state order.
    pub fn channel_names(&self) -> Vec<String> {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect();
        match self {
            CellSpec::LifCurrent(c) => c.channels.iter().map(|ch| ch.name.clone()).collect(),
            CellSpec::LifConductance(_) => names(&RECEPTOR_NAMES),
            CellSpec::HnnL2Pyramidal(_) | CellSpec::HnnL5Pyramidal(_) => {
                names(&hnn_cells::PYRAMIDAL_CHANNELS)
            }
            CellSpec::HnnBasket(_) => names(&hnn_cells::BASKET_CHANNELS),
        }
    }

    pub fn n_channels(&self) -> usize {
        match self {
            CellSpec::LifCurrent(c) => c.channels.len(),
            CellSpec::LifConductance(_) => 4,
            CellSpec::HnnL2Pyramidal(_) | CellSpec::HnnL5Pyramidal(_) => {
                hnn_cells::PYRAMIDAL_CHANNELS.len()
            }
            CellSpec::HnnBasket(_) => hnn_cells::BASKET_CHANNELS.len(),
        }
    }

    /// hnn-core's cell parameters when this is one of its cells.
    pub fn hnn(&self) -> Option<&HnnCell> {
        match self {
            CellSpec::HnnL2Pyramidal(c) | CellSpec::HnnL5Pyramidal(c) | CellSpec::HnnBasket(c) => {
                Some(c)
            }
            _ => None,
        }
    }

    /// The model's name as written in experiment files.
    pub fn model_name(&self) -> &'static str {
        match self {
            CellSpec::LifCurrent(_) => "lif_current",
            CellSpec::LifConductance(_) => "lif_conductance",
            CellSpec::HnnL2Pyramidal(_) => "hnn_l2_pyramidal",
            CellSpec::HnnL5Pyramidal(_) => "hnn_l5_pyramidal",
            CellSpec::HnnBasket(_) => "hnn_basket",
        }
    }

    /// Bytes of state per cell (for the memory check before a run).
    pub fn state_bytes(&self) -> f64 {
        match self {
            CellSpec::HnnL2Pyramidal(_) => 32.0 * 160.0,
            CellSpec::HnnL5Pyramidal(_) => 55.0 * 160.0,
            _ => 128.0,
        }
    }

    pub fn channel_index(&self, name: &str) -> Option<usize> {
        self.channel_names().iter().position(|c| c == name)
    }

    pub fn is_conductance_based(&self) -> bool {
        !matches!(self, CellSpec::LifCurrent(_))
    }

    /// The voltage a cell starts from unless `v_init_mv` says otherwise: the reset for LIF cells,
    /// hnn-core's somatic initial voltage for its cells.
    pub fn v_reset(&self) -> f64 {
        match self {
            CellSpec::LifCurrent(c) => c.v_reset_mv,
            CellSpec::LifConductance(c) => c.v_reset_mv,
            CellSpec::HnnL2Pyramidal(_) => hnn_cells::L2_PYRAMIDAL_V_INIT,
            CellSpec::HnnL5Pyramidal(_) => hnn_cells::L5_PYRAMIDAL_V_INIT,
            CellSpec::HnnBasket(_) => hnn_cells::BASKET_V_INIT,
        }
    }

    pub fn v_threshold(&self) -> f64 {
        match self {
            CellSpec::LifCurrent(c) => c.v_threshold_mv,
            CellSpec::LifConductance(c) => c.v_threshold_mv,
            CellSpec::HnnL2Pyramidal(c) | CellSpec::HnnL5Pyramidal(c) | CellSpec::HnnBasket(c) => {
                c.threshold_mv
            }
        }
    }

    /// hnn-core cells' overrides: known sections, parameters in range.
    fn validate_hnn(&self, f: &str, c: &HnnCell) -> Result<()> {
        let names = hnn_cells::section_names(self).unwrap_or(&[]);
        for (name, sec) in &c.sections {
            if !names.contains(&name.as_str()) {
                return Err(SurgeError::spec(
                    format!("{f}.sections.{name}"),
                    format!("`{}` has no section `{name}`", self.model_name()),
                    format!("use one of {names:?}"),
                ));
            }
            for (key, x) in [
                ("length_um", sec.length_um),
                ("diam_um", sec.diam_um),
                ("ra_ohm_cm", sec.ra_ohm_cm),
                ("cm_uf_cm2", sec.cm_uf_cm2),
            ] {
                if x.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
                    return Err(SurgeError::spec(
                        format!("{f}.sections.{name}.{key}"),
                        format!("{} is not > 0", x.unwrap_or_default()),
                        "give a positive value",
                    ));
                }
            }
        }
        if !c.dendrites.is_empty() && names.len() == 1 {
            return Err(SurgeError::spec(
                format!("{f}.dendrites"),
                format!("`{}` has a soma only", self.model_name()),
                "set its channels under soma",
            ));
        }
        for (part, params) in [("soma", &c.soma), ("dendrites", &c.dendrites)] {
            for (key, x) in params.entries() {
                let Some(x) = x else { continue };
                let ok = match key {
                    "el_hh2" => x.is_finite(),
                    "taur_cad" => x.is_finite() && x > 0.0,
                    _ => x.is_finite() && x >= 0.0,
                };
                if !ok {
                    return Err(SurgeError::spec(
                        format!("{f}.{part}.{key}"),
                        format!("{x} is out of range"),
                        "conductances are >= 0, taur_cad > 0 (ms), el_hh2 a voltage (mV)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the parameters; `dt_field` names where the time step `dt_ms` is set.
    pub(crate) fn validate(&self, f: &str, dt_ms: f64, dt_field: &str) -> Result<()> {
        let positive = |name: &str, x: f64, fix: &str| -> Result<()> {
            if x.is_finite() && x > 0.0 {
                Ok(())
            } else {
                Err(SurgeError::spec(
                    format!("{f}.{name}"),
                    format!("{x} is not > 0"),
                    fix,
                ))
            }
        };
        let finite = |name: &str, x: f64| -> Result<()> {
            if x.is_finite() {
                Ok(())
            } else {
                Err(SurgeError::spec(
                    format!("{f}.{name}"),
                    "not finite",
                    "give a number in mV",
                ))
            }
        };
        let (vth, vr, tref) = match self {
            CellSpec::LifCurrent(c) => {
                positive(
                    "tau_m_ms",
                    c.tau_m_ms,
                    "give the membrane time constant in ms, e.g. 20",
                )?;
                finite("v_rest_mv", c.v_rest_mv)?;
                if c.channels.is_empty() {
                    return Err(SurgeError::spec(
                        format!("{f}.channels"),
                        "no synaptic channel",
                        "add at least one { name, tau_ms } channel",
                    ));
                }
                for (i, ch) in c.channels.iter().enumerate() {
                    positive(
                        &format!("channels[{i}].tau_ms"),
                        ch.tau_ms,
                        "give the synaptic decay time in ms, e.g. 5",
                    )?;
                    if ch.name.trim().is_empty()
                        || c.channels[..i].iter().any(|o| o.name == ch.name)
                    {
                        return Err(SurgeError::spec(
                            format!("{f}.channels[{i}].name"),
                            format!("`{}` is empty or duplicated", ch.name),
                            "give every channel a unique name",
                        ));
                    }
                }
                (c.v_threshold_mv, c.v_reset_mv, c.t_ref_ms)
            }
            CellSpec::HnnL2Pyramidal(c) | CellSpec::HnnL5Pyramidal(c) | CellSpec::HnnBasket(c) => {
                if !(c.celsius.is_finite() && (0.0..=45.0).contains(&c.celsius)) {
                    return Err(SurgeError::spec(
                        format!("{f}.celsius"),
                        format!("{} is not in [0, 45]", c.celsius),
                        "give the temperature in C (hnn-core runs at 37)",
                    ));
                }
                finite("threshold_mv", c.threshold_mv)?;
                self.validate_hnn(f, c)?;
                if dt_ms > 0.05 {
                    return Err(SurgeError::spec(
                        dt_field,
                        format!(
                            "{dt_ms} ms is too coarse for the multi-compartment cells of `{}`",
                            self.model_name()
                        ),
                        "use dt_ms <= 0.05 (hnn-core runs at 0.025)",
                    ));
                }
                return Ok(());
            }
            CellSpec::LifConductance(c) => {
                positive(
                    "c_m_pf",
                    c.c_m_pf,
                    "give the membrane capacitance in pF, e.g. 200",
                )?;
                positive(
                    "g_l_ns",
                    c.g_l_ns,
                    "give the leak conductance in nS, e.g. 10",
                )?;
                finite("e_l_mv", c.e_l_mv)?;
                if !(c.mg_mm.is_finite() && c.mg_mm >= 0.0) {
                    return Err(SurgeError::spec(
                        format!("{f}.mg_mm"),
                        "must be >= 0",
                        "give the Mg concentration in mM, e.g. 1.0",
                    ));
                }
                for (name, r) in RECEPTOR_NAMES.iter().zip(c.receptors.as_array()) {
                    positive(
                        &format!("receptors.{name}.rise_ms"),
                        r.rise_ms,
                        "give a rise time in ms",
                    )?;
                    positive(
                        &format!("receptors.{name}.decay_ms"),
                        r.decay_ms,
                        "give a decay time in ms",
                    )?;
                    if r.decay_ms <= r.rise_ms {
                        return Err(SurgeError::spec(
                            format!("{f}.receptors.{name}.decay_ms"),
                            "must be larger than rise_ms",
                            "use decay_ms > rise_ms (Exp2Syn)",
                        ));
                    }
                    finite(&format!("receptors.{name}.e_rev_mv"), r.e_rev_mv)?;
                }
                (c.v_threshold_mv, c.v_reset_mv, c.t_ref_ms)
            }
        };
        finite("v_threshold_mv", vth)?;
        finite("v_reset_mv", vr)?;
        if vr >= vth {
            return Err(SurgeError::spec(
                format!("{f}.v_reset_mv"),
                format!("reset {vr} mV is not below threshold {vth} mV"),
                "set v_reset_mv < v_threshold_mv",
            ));
        }
        if !(tref.is_finite() && tref >= 0.0) {
            return Err(SurgeError::spec(
                format!("{f}.t_ref_ms"),
                format!("{tref} is negative"),
                "give a refractory period >= 0 ms",
            ));
        }
        let steps = tref / dt_ms;
        if (steps - steps.round()).abs() > 1e-6 {
            return Err(SurgeError::spec(
                format!("{f}.t_ref_ms"),
                format!("{tref} ms is not a whole number of steps of {dt_ms} ms"),
                "use a refractory period that is a multiple of dt_ms",
            ));
        }
        Ok(())
    }
}
