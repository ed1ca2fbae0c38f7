"""Time lone grouped convs at N threads (argv[1]): the median of 25 calls over 4 inputs, in
eager PyTorch; writes lone-1thread.json or lone-2threads.json beside this file."""

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

CONDENSENET = [(4 * g, g, 4, side, 3) for g in (8, 16, 32) for side in (112, 56, 28, 14)]
RESNEXT = [(c, c, 32, side, 3) for c, side in ((128, 56), (256, 28), (512, 14))]
WIDTHS = [
    (c, c, g, side, 3)
    for c, g, side in (
        (24, 4, 56), (48, 4, 28), (40, 4, 56), (96, 8, 28), (192, 16, 14),
        (36, 6, 28), (72, 6, 28), (64, 16, 28), (128, 32, 28), (80, 4, 28),
    )
]  # fmt: skip
LEARNED_1X1 = [
    (c_in, c_out, 4, side, 1)
    for c_in, c_out, side in (
        (48, 64, 56), (80, 64, 56), (144, 128, 28), (208, 128, 28), (400, 256, 14),
        (656, 256, 14), (1040, 512, 7), (1808, 512, 7), (16, 32, 112),
    )
]  # fmt: skip


def timed(c_in: int, c_out: int, groups: int, side: int, k: int) -> float:
    conv = nn.Conv2d(c_in, c_out, k, 1, k // 2, groups=groups, bias=False).eval()
    inputs = [torch.randn(1, c_in, side, side) for _ in range(4)]
    for x in inputs:
        conv(x)
    times = []
    for i in range(25):
        start = time.perf_counter_ns()
        conv(inputs[i % 4])
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e9


def main() -> None:
    threads = int(sys.argv[1])
    torch.set_num_threads(threads)
    out = []
    with torch.no_grad():
        for c_in, c_out, groups, side, k in CONDENSENET + RESNEXT + WIDTHS + LEARNED_1X1:
            t = timed(c_in, c_out, groups, side, k)
            out.append({"ci": c_in, "co": c_out, "g": groups, "s": side, "k": k, "t": t})
            print(c_in, c_out, groups, side, k, round(t * 1e3, 3), flush=True)
    name = "lone-1thread.json" if threads == 1 else f"lone-{threads}threads.json"
    (Path(__file__).parent / name).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
