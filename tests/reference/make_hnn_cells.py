"""Reference traces of hnn-core's cells in NEURON, for checking Surge's multi-compartment cells.

For each cell type (L2 and L5 pyramidal, L2 basket; hnn-core's default morphology, channels and
synapses, its per-section initial voltages, 37 C) two protocols, both at dt 0.025 ms for 300 ms
(fixed step, `h.finitialize()` keeping hnn-core's initial voltages), sampled every 0.1 ms:
  step:     a 0.2 s somatic current step (0.25 nA pyramidal, 0.1 nA basket) from 50 ms;
  synaptic: a fixed train of synaptic events onto hnn-core's own synapses (AMPA and NMDA on the
            proximal and distal dendrites of pyramidal cells, AMPA on the basket soma), listed in
            the file's attributes.
Records the somatic voltage and, for pyramidal cells, the voltage in the middle of the apical trunk
and the cell's current dipole (hnn-core's `cell.dipole`, fA m, before any smoothing or scaling), and
the somatic spike times (upward crossings of 0 mV). Writes tests/reference/hnn_cells.h5.

Run with hnn-core 0.6.1 and NEURON 8.2.7 (`pip install hnn-core h5py`):
    python tests/reference/make_hnn_cells.py
"""

import json

import h5py
import hnn_core
import neuron
import numpy as np
from hnn_core.cells_default import basket, pyramidal
from hnn_core.network_builder import load_custom_mechanisms
from neuron import h

load_custom_mechanisms()
h.load_file("stdrun.hoc")
# hnn-core's network runs at 37 C (its `celsius` parameter); NEURON's default 6.3 C slows every
# channel's kinetics and leaves the pyramidal cells in depolarisation block.
h.celsius = 37.0

DT, T_STOP, SAMPLE = 0.025, 300.0, 0.1
# (section, receptor, times ms, weight uS): hnn-core names its synapses <section>_<receptor>.
EVENTS = {
    "pyramidal": [
        ("basal_2", "ampa", [60.0, 62.0, 64.0, 150.0, 151.0], 0.004),
        ("apical_tuft", "ampa", [100.0, 101.0, 103.0, 200.0], 0.006),
        ("apical_tuft", "nmda", [100.0, 200.0], 0.002),
        ("basal_3", "nmda", [60.0, 150.0], 0.001),
    ],
    "basket": [("soma", "ampa", [60.0, 61.0, 62.0, 63.0, 150.0, 152.0], 0.01)],
}


def build(name):
    if name.endswith("basket"):
        cell = basket(cell_name=name)
        cell.build(sec_name_apical=None)
    else:
        cell = pyramidal(cell_name=name)
        cell.build(sec_name_apical="apical_trunk")
    return cell


def run(name, protocol):
    cell = build(name)
    secs = cell._nrn_sections
    soma = secs["soma"]
    keep = []
    if protocol == "step":
        clamp = h.IClamp(soma(0.5))
        clamp.delay, clamp.dur = 50.0, 200.0
        clamp.amp = 0.1 if name.endswith("basket") else 0.25
        keep.append(clamp)
    else:
        for sec, rec, times, weight in EVENTS["basket" if name.endswith("basket") else "pyramidal"]:
            syn = cell._nrn_synapses[f"{sec}_{rec}"]
            vs = h.VecStim()
            tv = h.Vector(times)
            vs.play(tv)
            nc = h.NetCon(vs, syn)
            nc.weight[0] = weight
            nc.delay = 0.0
            keep += [vs, tv, nc]
    t = h.Vector().record(h._ref_t)
    v_soma = h.Vector().record(soma(0.5)._ref_v)
    v_dend = h.Vector().record(secs["apical_trunk"](0.5)._ref_v) if "apical_trunk" in secs else None
    dipole = cell.dipole if hasattr(cell, "dipole") else None
    h.dt = DT
    h.tstop = T_STOP
    h.finitialize()
    h.continuerun(T_STOP)
    t = np.array(t)
    grid = np.arange(0.0, T_STOP + 1e-9, SAMPLE)
    vs = np.interp(grid, t, np.array(v_soma))
    vd = np.interp(grid, t, np.array(v_dend)) if v_dend is not None else None
    dp = np.interp(grid, t, np.array(dipole)) if dipole is not None else None
    raw = np.array(v_soma)
    up = np.nonzero((raw[:-1] < 0.0) & (raw[1:] >= 0.0))[0]
    spikes = t[up] + (0.0 - raw[up]) / (raw[up + 1] - raw[up]) * (t[up + 1] - t[up])
    return grid, vs, vd, dp, spikes


with h5py.File("tests/reference/hnn_cells.h5", "w") as f:
    f.attrs["what"] = __doc__
    f.attrs["hnn_core"] = hnn_core.__version__
    f.attrs["neuron"] = neuron.__version__
    f.attrs["dt_ms"] = DT
    f.attrs["sample_ms"] = SAMPLE
    f.attrs["events"] = json.dumps(EVENTS)
    for name in ["L2_pyramidal", "L5_pyramidal", "L2_basket"]:
        for protocol in ["step", "synaptic"]:
            grid, vs, vd, dp, spikes = run(name, protocol)
            g = f.create_group(f"{name}/{protocol}")
            g["t_ms"] = grid.astype(np.float32)
            g["v_soma_mv"] = vs.astype(np.float32)
            if vd is not None:
                g["v_apical_trunk_mv"] = vd.astype(np.float32)
            if dp is not None:
                g["dipole_fam"] = dp.astype(np.float32)
            g["spike_times_ms"] = spikes
            print(name, protocol, f"{len(spikes)} spikes", f"v_soma {vs.min():.1f}..{vs.max():.1f} mV")
