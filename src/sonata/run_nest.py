"""Runs this SONATA export in NEST 3 from its own files, read with h5py (so a NEST build without
HDF5 or SONATA support runs it): node populations from nodes.h5 and node_types.csv with the
parameters in components/, every edge with its weight, delay and receptor port through
nest.Connect arrays, drives as generators. Prints one JSON line: spike times (ms) and senders
(index within the population) per population, and the wall time of the simulation.

    python run_nest.py [--threads N] [--seed S]
"""

import argparse
import csv
import json
import os
import time

import h5py
import nest
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=None, help="NEST's seed [default: the export's]")
a = p.parse_args()

sim = json.load(open(os.path.join(here, "simulation_config.json")))
dt, tstop = sim["run"]["dt"], sim["run"]["tstop"]
nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.SetKernelStatus(
    {
        "resolution": dt,
        "local_num_threads": a.threads,
        "rng_seed": a.seed if a.seed is not None else sim["surge"]["seed"] + 1,
    }
)


def table(name):
    with open(os.path.join(here, "network", name)) as f:
        rows = list(csv.reader(f, delimiter=" "))
    return [dict(zip(rows[0], r)) for r in rows[1:] if r]


node_types = {int(r["node_type_id"]): r for r in table("node_types.csv")}
edge_types = {int(r["edge_type_id"]): r for r in table("edge_types.csv")}
nodes, recorders = {}, {}
with h5py.File(os.path.join(here, "network", "nodes.h5"), "r") as f:
    for name, g in f["nodes"].items():
        t = node_types[int(g["node_type_id"][0])]
        params = json.load(open(os.path.join(here, "components", t["dynamics_params"])))
        model = t["model_template"].split(":", 1)[1]
        if model == "spike_generator":
            params["allow_offgrid_times"] = True
        created = nest.Create(model, len(g["node_type_id"]), params=params)
        if "V_m" in g["0"]:
            created.set(V_m=g["0"]["V_m"][:].tolist())
        nodes[name] = np.array(created.tolist())
        if t["model_type"] != "virtual":
            recorders[name] = nest.Create("spike_recorder")
            nest.Connect(created, recorders[name])
with h5py.File(os.path.join(here, "network", "edges.h5"), "r") as f:
    for g in f["edges"].values():
        src = nodes[g["source_node_id"].attrs["node_population"]][g["source_node_id"][:]]
        dst = nodes[g["target_node_id"].attrs["node_population"]][g["target_node_id"][:]]
        types = g["edge_type_id"][:]
        w, d = g["0"]["syn_weight"][:], g["0"]["delay"][:]
        for t in np.unique(types):
            m = types == t
            nest.Connect(
                src[m],
                dst[m],
                conn_spec="one_to_one",
                syn_spec={
                    "synapse_model": edge_types[int(t)]["model_template"],
                    "weight": w[m],
                    "delay": d[m],
                    "receptor_type": int(edge_types[int(t)]["receptor_type"]),
                },
            )
t0 = time.perf_counter()
nest.Simulate(tstop)
wall = time.perf_counter() - t0
out = {"simulate_s": wall, "nest": nest.__version__, "populations": {}}
for name, r in recorders.items():
    ev = r.get("events")
    first = nodes[name][0]
    out["populations"][name] = {
        "times_ms": np.asarray(ev["times"]).tolist(),
        "cells": (np.asarray(ev["senders"]) - first).tolist(),
        "size": len(nodes[name]),
    }
print(json.dumps(out))
