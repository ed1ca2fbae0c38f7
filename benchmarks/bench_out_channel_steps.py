"""How a dense 3x3 conv's time steps with its output channels, at 1 thread and at every core:
the measurement behind `KindModel.out_block` (oneDNN hands each thread whole units of two
blocks of output channels, so at T threads the time rises in steps of 2 x block x T).

Each cell is the median of 7 rounds of 20 forwards (inference mode, after 3 warm-up calls),
in microseconds, wall time. The work grows linearly with the output channels; a flat run of
cells followed by a jump is padding, not work.

    python benchmarks/bench_out_channel_steps.py --out results/channel-blocks/steps.json
    python benchmarks/bench_out_channel_steps.py --threads 1 --outputs 8 10 12 16 20 24 32 48 64 \
        --out results/channel-blocks/small-outputs.json   # HarDNet's growth convs

Run on a quiet machine (about 1 minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn

from hardnet_analysis.fileio import atomic_write_json

#: (input channels, side): a HarDNet-68 stage-2 layer's input, and a narrower map.
INPUTS = ((102, 56), (152, 28))
OUTPUTS = (24, 32, 40, 48, 56, 64, 72, 80)


def median_us(conv: nn.Module, x: torch.Tensor, calls: int = 20, rounds: int = 7) -> float:
    with torch.inference_mode():
        for _ in range(3):
            conv(x)
        times = []
        for _ in range(rounds):
            start = time.perf_counter_ns()
            for _ in range(calls):
                conv(x)
            times.append((time.perf_counter_ns() - start) / calls / 1e3)
    return sorted(times)[rounds // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--outputs", type=int, nargs="+", default=list(OUTPUTS))
    args = parser.parse_args()
    rows = []
    for threads in dict.fromkeys(args.threads):
        torch.set_num_threads(threads)
        for c_in, side in INPUTS:
            x = torch.rand(1, c_in, side, side)
            cells = {}
            for c_out in args.outputs:
                conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False).eval()
                cells[c_out] = round(median_us(conv, x), 1)
            rows.append({"threads": threads, "in": c_in, "side": side, "us": cells})
            print(threads, f"{c_in}@{side}", " ".join(f"{c}:{us:8.1f}" for c, us in cells.items()))
    atomic_write_json(args.out, {"torch": torch.__version__, "rows": rows})


if __name__ == "__main__":
    main()
