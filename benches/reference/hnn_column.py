"""hnn-core's default column in NEURON, for `surge bench hnn --reference hnn`.

Builds hnn-core's `jones_2009_model` (its default.json: 100 + 35 cells per layer, connection
pattern, weights, delays and distance dependence) and adds the Poisson drives of Surge's
experiments/hnn_column.toml: an independent train per pyramidal cell on its proximal and on its
distal AMPA synapses, `--rate-hz` each, weight `--weight-us`. Simulates `--duration-ms` at dt
0.025 ms on one core (hnn-core's default backend), then prints one JSON line: the wall time of the
simulation, the spike count of each population, and the aggregate dipole (nA m, no smoothing or
scaling) averaged into 1 ms bins.

Needs hnn-core (tested with 0.6.1 and NEURON 8.2.7): `pip install hnn-core`.
"""

import argparse
import json
import time
import warnings

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--duration-ms", type=float, default=1000.0)
p.add_argument("--rate-hz", type=float, default=100.0)
p.add_argument("--weight-us", type=float, default=0.001)
p.add_argument("--seed", type=int, default=1)
p.add_argument("--no-connections", action="store_true", help="drives only (a diagnostic)")
a = p.parse_args()

import hnn_core  # noqa: E402
from hnn_core import jones_2009_model, simulate_dipole  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    net = jones_2009_model()
if a.no_connections:
    net.connectivity = []
for k, layer in enumerate(["L2_pyramidal", "L5_pyramidal"]):
    for j, loc in enumerate(["proximal", "distal"]):
        net.add_poisson_drive(
            f"{loc}_{layer}",
            tstart=0.0,
            tstop=a.duration_ms,
            rate_constant={layer: a.rate_hz},
            location=loc,
            weights_ampa={layer: a.weight_us},
            synaptic_delays={layer: 0.1},
            event_seed=a.seed * 10 + 2 * k + j,
        )
t0 = time.perf_counter()
dpl = simulate_dipole(net, tstop=a.duration_ms, dt=0.025, n_trials=1, verbose=False)[0]
wall = time.perf_counter() - t0

spikes = np.array(net.cell_response.spike_times[0])
gids = np.array(net.cell_response.spike_gids[0])
counts = {}
for name, rng in net.gid_ranges.items():
    if name in ("L2_pyramidal", "L2_basket", "L5_pyramidal", "L5_basket"):
        counts[name] = int(np.sum((gids >= rng.start) & (gids < rng.stop)))
times = np.asarray(dpl.times)
agg = np.asarray(dpl.data["agg"])
bins = np.floor(times / 1.0).astype(int)
n_bins = int(round(a.duration_ms))
binned = [float(agg[bins == b].mean()) if np.any(bins == b) else 0.0 for b in range(n_bins)]
print(
    json.dumps(
        {
            "simulate_s": wall,
            "counts": counts,
            "dipole_1ms": binned,
            "hnn_core": hnn_core.__version__,
        }
    )
)
