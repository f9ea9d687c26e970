"""Reference for `surge bench bptt --reference snntorch|norse`: back-propagation through time in a
recurrent layer of 1,000 current-based LIF neurons with exponential synaptic currents for 1,000 steps,
as a user of snnTorch (`snn.RSynaptic`, all-to-all recurrent weights, fast-sigmoid surrogate) or Norse
(`LIFRecurrentCell`, SuperSpike surrogate) writes it: Poisson input spikes through a fixed input weight,
a recurrent weight matrix with 10% of its entries non-zero, loss = mean membrane potential plus the
spike count, one backward pass to the recurrent weights. One thread, batch 1. Prints one JSON line:
forward, backward and total seconds (the best of --repeats after one warm-up run).
Requires `pip install torch snntorch norse` (kept out of CI: several GB)."""

import argparse
import json
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--library", choices=["snntorch", "norse"], required=True)
p.add_argument("--cells", type=int, default=1000)
p.add_argument("--steps", type=int, default=1000)
p.add_argument("--repeats", type=int, default=2)
p.add_argument(
    "--input-weight",
    type=float,
    default=None,
    help="weight of an input spike [default: one that gives each library's cells about 20 Hz, as "
    "Surge's bench network has]",
)
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(1)
n, steps = a.cells, a.steps
dt, tau_m, tau_s = 1.0, 20.0, 5.0
mask = (torch.rand(n, n) < 0.1).float()
w_rec = (0.002 * mask).requires_grad_()
# The libraries scale input currents differently; each default puts the mean drive just below threshold.
w_in = a.input_weight or {"snntorch": 0.1, "norse": 3.6}[a.library]
inputs = (torch.rand(steps, 1, n) < 0.05).float() * w_in

if a.library == "snntorch":
    import snntorch as snn
    from snntorch import surrogate

    version = snn.__version__

    def run():
        lif = snn.RSynaptic(
            alpha=float(torch.exp(torch.tensor(-dt / tau_s))),
            beta=float(torch.exp(torch.tensor(-dt / tau_m))),
            all_to_all=True,
            linear_features=n,
            spike_grad=surrogate.fast_sigmoid(slope=25),
            threshold=1.0,
        )
        with torch.no_grad():
            lif.recurrent.weight.copy_(w_rec)
            lif.recurrent.bias.zero_()
        spk, syn, mem = lif.init_rsynaptic()
        v_sum, s_sum = 0.0, 0.0
        t0 = time.perf_counter()
        for t in range(steps):
            spk, syn, mem = lif(inputs[t], spk, syn, mem)
            v_sum = v_sum + mem.mean()
            s_sum = s_sum + spk.sum()
        loss = v_sum / steps + 1e-3 * s_sum
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, float(s_sum)

else:
    import norse
    from norse.torch import LIFParameters, LIFRecurrentCell

    version = getattr(norse, "__version__", "?")

    def run():
        cell = LIFRecurrentCell(
            n,
            n,
            p=LIFParameters(
                tau_syn_inv=torch.tensor(1.0 / tau_s),
                tau_mem_inv=torch.tensor(1.0 / tau_m),
                v_th=torch.tensor(1.0),
                v_reset=torch.tensor(0.0),
                method="super",
                alpha=torch.tensor(100.0),
            ),
            dt=dt / 1000.0 * 1000.0,
            autapses=True,
        )
        with torch.no_grad():
            cell.input_weights.copy_(torch.eye(n))
            cell.recurrent_weights.copy_(w_rec)
        state = None
        v_sum, s_sum = 0.0, 0.0
        t0 = time.perf_counter()
        for t in range(steps):
            z, state = cell(inputs[t], state)
            v_sum = v_sum + state.v.mean()
            s_sum = s_sum + z.sum()
        loss = v_sum / steps + 1e-3 * s_sum
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, float(s_sum)


run()
best = None
for _ in range(a.repeats):
    f, b, spikes = run()
    if best is None or f + b < best[0] + best[1]:
        best = (f, b, spikes)
print(
    json.dumps(
        {
            "library": a.library,
            "version": version,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cells": n,
            "steps": steps,
            "forward_s": best[0],
            "backward_s": best[1],
            "total_s": best[0] + best[1],
            "spikes": best[2],
        }
    )
)
