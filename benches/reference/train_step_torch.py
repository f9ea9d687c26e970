"""Reference for `surge bench train --reference pytorch`: one training step (forward, backward, Adam) of
the default surrogate architecture in PyTorch on the CPU, the same shapes as Surge's `train step` case:
batch 32 x 1000 bins x 4 channels, four residual blocks of dilated causal convolutions (32 channels,
kernel 3, dilations 1, 2, 4, 8, a 1x1 projection of the residual in the first block), an LSTM with 64
hidden units, linear voltage and spike heads, loss = voltage MSE. PyTorch uses its own fused LSTM
(what a PyTorch user would write). Prints one JSON line: the mean step time after a first,
allocating step, and the thread count. Requires `pip install torch` (kept out of CI: several GB)."""

import argparse
import json
import time

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=3)
p.add_argument("--threads", type=int, default=0, help="0: PyTorch's default (all cores)")
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
torch.manual_seed(1)


class CausalConv(nn.Module):
    def __init__(self, c_in, c_out, kernel, dilation):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)

    def forward(self, x):
        return self.conv(nn.functional.pad(x, (self.pad, 0)))


class Block(nn.Module):
    def __init__(self, c_in, c_out, kernel, dilation):
        super().__init__()
        self.conv1 = CausalConv(c_in, c_out, kernel, dilation)
        self.conv2 = CausalConv(c_out, c_out, kernel, dilation)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x):
        y = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        res = self.skip(x) if self.skip is not None else x
        return torch.relu(y + res)


class Surrogate(nn.Module):
    def __init__(self, n_inputs=4, channels=32, kernel=3, dilations=(1, 2, 4, 8), hidden=64):
        super().__init__()
        blocks, c = [], n_inputs
        for d in dilations:
            blocks.append(Block(c, channels, kernel, d))
            c = channels
        self.blocks = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.voltage = nn.Linear(hidden, 1)
        self.spike = nn.Linear(hidden, 1)

    def forward(self, x):  # x: [batch, time, channels]
        y = self.blocks(x.transpose(1, 2)).transpose(1, 2)
        h, _ = self.lstm(y)
        return self.voltage(h).squeeze(-1), self.spike(h).squeeze(-1)


model = Surrogate()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(32, 1000, 4)
y = torch.randn(32, 1000)
times = []
for _ in range(a.steps + 1):
    t0 = time.perf_counter()
    v, _ = model(x)
    loss = ((v - y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t0)
print(
    json.dumps(
        {
            "first_s": times[0],
            "step_s": sum(times[1:]) / a.steps,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
    )
)
