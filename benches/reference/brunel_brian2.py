"""Reference for `surge bench brunel --reference brian2`: the same Brunel (2000) network as
experiments/brunel.toml in Brian2's C++ standalone mode, one thread. Prints one JSON line with
the simulation loop time Brian2 itself reports (code generation and compilation excluded) and the
number of spikes. Requires `pip install brian2` and a C++ compiler."""

import argparse
import json
import tempfile
import time

import numpy as np
from brian2 import (NeuronGroup, SpikeMonitor, Synapses, defaultclock, device, ms, mV, prefs,
                    run, set_device)

p = argparse.ArgumentParser()
p.add_argument("--duration-ms", type=float, default=1000.0)
p.add_argument("--seed", type=int, default=1234)
a = p.parse_args()

build_dir = tempfile.mkdtemp(prefix="surge-brian2-")
set_device("cpp_standalone", directory=build_dir, build_on_run=False)
prefs.devices.cpp_standalone.openmp_threads = 0
defaultclock.dt = 0.1 * ms

N_E, N_I, K_E, K_I = 8000, 2000, 800, 200
J = 5.0 / np.sqrt(1000.0)
g = 5.0
mu = 0.7 * np.sqrt(1000.0)
tau_m, tau_s = 20.0 * ms, 5.0 * ms

eqs = """
dv/dt = (-v + mu_ext + I) / tau_m : volt (unless refractory)
dI/dt = -I / tau_s : volt
"""
G = NeuronGroup(N_E + N_I, eqs, threshold="v >= 20*mV", reset="v = 10*mV", refractory=2 * ms,
                method="exact", namespace={"mu_ext": mu * mV, "tau_m": tau_m, "tau_s": tau_s})
rng = np.random.default_rng(a.seed)
G.v = rng.uniform(10.0, 20.0, N_E + N_I) * mV

# Fixed in-degree without autapses, drawn with numpy (the draw is not part of the timed loop).
t0 = time.perf_counter()
pre, post = [], []
for j in range(N_E + N_I):
    e = rng.choice(N_E - (j < N_E), K_E, replace=False)
    e = e + (e >= j) * (j < N_E)
    i = rng.choice(N_I - (j >= N_E), K_I, replace=False)
    i = i + (i >= j - N_E) * (j >= N_E)
    pre.append(e)
    pre.append(N_E + i)
    post.append(np.full(K_E + K_I, j))
pre, post = np.concatenate(pre), np.concatenate(post)
S = Synapses(G, G, "w : volt", on_pre="I_post += w * tau_m / tau_s",
             namespace={"tau_m": tau_m, "tau_s": tau_s})
S.connect(i=pre, j=post)
S.w = np.where(pre < N_E, J, -g * J) * mV
S.delay = 1.5 * ms
draw_s = time.perf_counter() - t0

mon = SpikeMonitor(G)
run(a.duration_ms * ms)
t1 = time.perf_counter()
device.build(directory=build_dir, compile=True, run=True, debug=False)
total_s = time.perf_counter() - t1
print(json.dumps({
    "simulate_s": float(device._last_run_time),
    "build_compile_run_s": total_s,
    "python_draw_s": draw_s,
    "spikes": int(mon.num_spikes),
}))
