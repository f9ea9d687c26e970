//! NEST's point neurons and generators as Surge's cells and drives, in Surge's units; NEST's
//! defaults where a parameter is not given, a refusal by name where a parameter has no counterpart.

use super::read::err;
use crate::error::Result;
use crate::spec::{
    CellSpec, CurrentChannel, DriveKind, DriveSpec, Kick, LifConductance, LifCurrent,
};
use serde_json::{Map, Value};
use std::path::Path;

/// How a cell population receives spikes, by NEST model.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ports {
    /// `iaf_psc_exp`: receptor 0, the sign of the weight picks `ex` or `in`.
    Sign,
    /// Multisynapse models: receptor ports `1..=n`, one channel each.
    Numbered(usize),
}

/// One Surge population: the nodes of one node type within one node population.
pub(super) struct Unit {
    pub(super) name: String,
    /// Node indices (within the SONATA population) in order; the i-th is cell i.
    pub(super) nodes: Vec<usize>,
    pub(super) kind: UnitKind,
}

pub(super) enum UnitKind {
    Cells {
        cell: Box<CellSpec>,
        ports: Ports,
        /// Per channel: Surge weight = NEST weight x this.
        to_surge: Vec<f64>,
        /// NEST pA to Surge's bias units.
        bias_to_surge: f64,
        i_e: f64,
        v_m: f64,
    },
    Generator {
        template: String,
        params: Map<String, Value>,
    },
}

pub(super) fn num(
    p: &Map<String, Value>,
    key: &str,
    default: Option<f64>,
    path: &Path,
    what: &str,
) -> Result<f64> {
    match p.get(key) {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| err(path, key, format!("{what}: not a number"), "give a number")),
        None => default.ok_or_else(|| {
            err(
                path,
                key,
                format!("{what}: missing, and NEST's default cannot be assumed"),
                format!("give {key}"),
            )
        }),
    }
}

pub(super) fn nums(p: &Map<String, Value>, key: &str, path: &Path, what: &str) -> Result<Vec<f64>> {
    let bad = || {
        err(
            path,
            key,
            format!("{what}: missing or not a list of numbers"),
            format!("give {key} as a list, one value per receptor port"),
        )
    };
    p.get(key)
        .and_then(Value::as_array)
        .ok_or_else(bad)?
        .iter()
        .map(|v| v.as_f64().ok_or_else(bad))
        .collect()
}

/// Refuses parameters the mapping does not read, unless NEST's own value makes them inert.
pub(super) fn only_known(
    p: &Map<String, Value>,
    known: &[&str],
    path: &Path,
    what: &str,
) -> Result<()> {
    // Inert here: the calcium trace and STDP time constants do not act on the membrane.
    const INERT: [&str; 5] = ["Ca", "tau_Ca", "beta_Ca", "tau_minus", "tau_minus_triplet"];
    for k in p.keys() {
        if !known.contains(&k.as_str()) && !INERT.contains(&k.as_str()) {
            return Err(err(
                path,
                k,
                format!("{what}: Surge's model has no parameter for `{k}`"),
                "remove it, or use a NEST model whose parameters Surge maps",
            ));
        }
    }
    Ok(())
}

/// A NEST point neuron as a Surge cell.
pub(super) fn cell_unit(
    template: &str,
    p: &Map<String, Value>,
    path: &Path,
    what: &str,
) -> Result<UnitKind> {
    let n = |k: &str, d: Option<f64>| num(p, k, d, path, what);
    match template {
        "iaf_psc_exp" | "iaf_psc_exp_multisynapse" => {
            let c_m = n("C_m", Some(250.0))?;
            let tau_m = n("tau_m", Some(10.0))?;
            let e_l = n("E_L", Some(-70.0))?;
            let taus = if template == "iaf_psc_exp" {
                only_known(
                    p,
                    &[
                        "C_m",
                        "tau_m",
                        "E_L",
                        "V_th",
                        "V_reset",
                        "t_ref",
                        "I_e",
                        "V_m",
                        "tau_syn_ex",
                        "tau_syn_in",
                        "delta",
                    ],
                    path,
                    what,
                )?;
                if n("delta", Some(0.0))? != 0.0 {
                    return Err(err(
                        path,
                        "delta",
                        format!(
                            "{what}: the stochastic threshold (delta > 0) has no Surge equivalent"
                        ),
                        "set delta = 0",
                    ));
                }
                vec![
                    ("ex".to_string(), n("tau_syn_ex", Some(2.0))?),
                    ("in".to_string(), n("tau_syn_in", Some(2.0))?),
                ]
            } else {
                only_known(
                    p,
                    &[
                        "C_m", "tau_m", "E_L", "V_th", "V_reset", "t_ref", "I_e", "V_m", "tau_syn",
                    ],
                    path,
                    what,
                )?;
                let t = if p.contains_key("tau_syn") {
                    nums(p, "tau_syn", path, what)?
                } else {
                    vec![2.0]
                };
                t.iter()
                    .enumerate()
                    .map(|(i, &x)| (format!("r{}", i + 1), x))
                    .collect()
            };
            if let Some((name, t)) = taus.iter().find(|(_, t)| !(t.is_finite() && *t > 0.0)) {
                return Err(err(
                    path,
                    "tau_syn",
                    format!("{what}: channel `{name}` has time constant {t} ms"),
                    "give positive synaptic time constants",
                ));
            }
            // NEST's dV/dt jumps by J / C_m on a spike of weight J; Surge's `delta_psp` channel
            // jumps by w / tau_s, so w = J tau_s / C_m (mV).
            let to_surge = taus.iter().map(|(_, t)| t / c_m).collect();
            let cell = LifCurrent {
                tau_m_ms: tau_m,
                v_rest_mv: e_l,
                v_threshold_mv: n("V_th", Some(-55.0))?,
                v_reset_mv: n("V_reset", Some(-70.0))?,
                t_ref_ms: n("t_ref", Some(2.0))?,
                channels: taus
                    .iter()
                    .map(|(name, t)| CurrentChannel {
                        name: name.clone(),
                        tau_ms: *t,
                        kick: Kick::DeltaPsp,
                    })
                    .collect(),
            };
            Ok(UnitKind::Cells {
                ports: if template == "iaf_psc_exp" {
                    Ports::Sign
                } else {
                    Ports::Numbered(taus.len())
                },
                cell: Box::new(CellSpec::LifCurrent(cell)),
                to_surge,
                // tau_m dv/dt = ... + a (mV) against C_m dV/dt = ... + I (pA).
                bias_to_surge: tau_m / c_m,
                i_e: n("I_e", Some(0.0))?,
                v_m: n("V_m", Some(e_l))?,
            })
        }
        "aeif_cond_beta_multisynapse" => {
            only_known(
                p,
                &[
                    "C_m",
                    "g_L",
                    "E_L",
                    "V_th",
                    "V_peak",
                    "V_reset",
                    "t_ref",
                    "I_e",
                    "V_m",
                    "Delta_T",
                    "a",
                    "b",
                    "tau_w",
                    "w",
                    "E_rev",
                    "tau_rise",
                    "tau_decay",
                    "gsl_error_tol",
                ],
                path,
                what,
            )?;
            for (k, d) in [("Delta_T", 2.0), ("a", 4.0), ("b", 80.5), ("w", 0.0)] {
                let x = n(k, Some(d))?;
                if x != 0.0 {
                    return Err(err(
                        path,
                        k,
                        format!(
                            "{what}: {k} = {x}{}; the exponential spike term and adaptation have no Surge equivalent",
                            if p.contains_key(k) {
                                ""
                            } else {
                                " (NEST's default)"
                            }
                        ),
                        "set Delta_T = a = b = w = 0 explicitly (a conductance-based LIF)",
                    ));
                }
            }
            let e_rev = nums(p, "E_rev", path, what)?;
            let rise = nums(p, "tau_rise", path, what)?;
            let decay = nums(p, "tau_decay", path, what)?;
            if e_rev.len() != rise.len() || e_rev.len() != decay.len() || e_rev.len() > 4 {
                return Err(err(
                    path,
                    "E_rev",
                    format!(
                        "{what}: {} reversal potentials, {} rise and {} decay times; Surge's conductance cell has up to 4 receptors",
                        e_rev.len(),
                        rise.len(),
                        decay.len()
                    ),
                    "give E_rev, tau_rise and tau_decay of equal length, at most 4",
                ));
            }
            let mut cell = LifConductance {
                c_m_pf: n("C_m", Some(281.0))?,
                g_l_ns: n("g_L", Some(30.0))?,
                e_l_mv: n("E_L", Some(-70.6))?,
                // With Delta_T = 0, NEST detects a spike at V_th.
                v_threshold_mv: n("V_th", Some(-50.4))?,
                v_reset_mv: n("V_reset", Some(-60.0))?,
                t_ref_ms: n("t_ref", Some(0.0))?,
                mg_mm: 0.0,
                receptors: Default::default(),
            };
            {
                let slots = cell.receptors.as_array_mut();
                for i in 0..e_rev.len() {
                    if !(rise[i] > 0.0 && decay[i] > rise[i]) {
                        return Err(err(
                            path,
                            "tau_rise",
                            format!(
                                "{what}: receptor port {}: rise {} ms, decay {} ms",
                                i + 1,
                                rise[i],
                                decay[i]
                            ),
                            "give 0 < tau_rise < tau_decay",
                        ));
                    }
                    slots[i].e_rev_mv = e_rev[i];
                    slots[i].rise_ms = rise[i];
                    slots[i].decay_ms = decay[i];
                }
            }
            let e_l = cell.e_l_mv;
            Ok(UnitKind::Cells {
                ports: Ports::Numbered(e_rev.len()),
                cell: Box::new(CellSpec::LifConductance(cell)),
                to_surge: vec![1.0; e_rev.len()],
                bias_to_surge: 1.0,
                i_e: n("I_e", Some(0.0))?,
                v_m: n("V_m", Some(e_l))?,
            })
        }
        other => unreachable!("templates are checked by the caller: {other}"),
    }
}

pub(super) fn generator_name(u: &Unit, node: usize) -> String {
    if u.nodes.len() == 1 {
        u.name.clone()
    } else {
        format!("{}_{node}", u.name)
    }
}

/// A NEST generator as a drive. `shift` (ms) is the edge delay beyond one step: Surge delivers a
/// drive's input in the step it is emitted, NEST a delay later.
#[allow(clippy::too_many_arguments)]
pub(super) fn generator_drive(
    name: &str,
    template: &str,
    p: &Map<String, Value>,
    targets: Vec<String>,
    channel: Option<String>,
    weight: f64,
    shift: f64,
    tstop: f64,
    circuit: &Path,
) -> Result<DriveSpec> {
    let what = format!("generator `{name}` ({template})");
    let n = |k: &str, d: Option<f64>| num(p, k, d, circuit, &what);
    let mut d = DriveSpec {
        name: name.to_string(),
        kind: DriveKind::Poisson,
        targets,
        fraction: 1.0,
        channel,
        rate_hz: None,
        n_sources: 1,
        weight: Some(weight),
        amplitude: None,
        sigma: None,
        times_ms: None,
        start_ms: 0.0,
        stop_ms: None,
    };
    if n("origin", Some(0.0))? != 0.0 {
        return Err(err(
            circuit,
            "origin",
            format!("{what}: a shifted origin"),
            "set origin = 0",
        ));
    }
    let window = |d: &mut DriveSpec| -> Result<()> {
        let start = n("start", Some(0.0))? + shift;
        let stop = n("stop", Some(f64::INFINITY))? + shift;
        d.start_ms = start.max(0.0);
        d.stop_ms = (stop < tstop).then_some(stop);
        Ok(())
    };
    match template {
        "poisson_generator" => {
            only_known(p, &["rate", "start", "stop", "origin"], circuit, &what)?;
            d.rate_hz = Some(n("rate", Some(0.0))?);
            window(&mut d)?;
        }
        "dc_generator" => {
            only_known(p, &["amplitude", "start", "stop", "origin"], circuit, &what)?;
            d.kind = DriveKind::Bias;
            d.amplitude = Some(n("amplitude", Some(0.0))? * weight);
            d.weight = None;
            window(&mut d)?;
        }
        "spike_generator" => {
            only_known(
                p,
                &["spike_times", "origin", "start", "stop"],
                circuit,
                &what,
            )?;
            if !p.contains_key("spike_times") {
                return Err(err(
                    circuit,
                    "spike_times",
                    format!(
                        "{what}: no spike times (trains given as simulation inputs are not imported)"
                    ),
                    "give spike_times in the generator's parameters",
                ));
            }
            let (start, stop) = (n("start", Some(0.0))?, n("stop", Some(f64::INFINITY))?);
            d.kind = DriveKind::Spikes;
            d.times_ms = Some(
                nums(p, "spike_times", circuit, &what)?
                    .into_iter()
                    .filter(|t| *t >= start && *t < stop)
                    .map(|t| t + shift)
                    .collect(),
            );
        }
        other => {
            return Err(err(
                circuit,
                "model_template",
                format!("virtual nodes of `nest:{other}` are not imported"),
                "drive the network with poisson_generator, spike_generator or dc_generator nodes",
            ));
        }
    }
    Ok(d)
}
