"""Which speed control follows an op's drift on a shared machine: the compute-bound matmul
control that ``profiler.pace`` takes beside every timing, or a memory-bound one.

For ``--seconds``, rounds of: the compute control (`profiler.pace.Control`), an L3 control (a
copy of 4 MiB: 8 MiB read and written, within the L3), a DRAM control (a copy of 32 MiB: 64 MiB,
beyond it), and four ops, each the median of 3 calls: a stride-2 depthwise conv 96 @112 (eager
PyTorch's time there is mostly oneDNN's layout reorders of its 4.8 MB input), a ReLU over
4.8 MB, a 1x1 conv 256 -> 256 at 28x28 (a GEMM held in cache), and a 2048 -> 1000 linear layer
at batch 1 (8 MB of weights read per call). One thread, the thread's CPU time, outputs kept
alive over a ring (as the calibration times them), the order rotated every round.

Printed per op: the spread of its raw times over the rounds (90th over 10th percentile), the
autocorrelation of its log times one round apart (a drift lasts rounds; scatter does not), and
the spread of its times over each control's (the paced figure each control would give), with
the Pearson correlation of its log time with each control's. A control that follows an op's
drift leaves the smallest spread.

    python benchmarks/bench_memory_control.py --seconds 180 --out results/memory-control/amd.json

Run on an otherwise idle machine (here: nothing else in the VM); the drift it measures comes
from the host's other tenants.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timing import emit

from hardnet_analysis.backends.cpu import CpuClock, cpu_name_and_mhz
from hardnet_analysis.profiler.allocator import kept_memory
from hardnet_analysis.profiler.pace import Control

MiB = 1 << 20


def _copy(nbytes: int) -> Callable[[], object]:
    src, dst = torch.rand(nbytes // 4), torch.empty(nbytes // 4)
    return lambda: dst.copy_(src)


def _op(module: torch.nn.Module, shape: tuple[int, ...]) -> Callable[[], object]:
    x, ring = torch.rand(shape), collections.deque[object](maxlen=8)
    module.eval()
    return lambda: ring.append(module(x))


def _items() -> dict[str, Callable[[], object]]:
    nn = torch.nn
    return {
        "dw3 /2 96 @112": _op(nn.Conv2d(96, 96, 3, 2, 1, groups=96, bias=False), (1, 96, 112, 112)),
        "relu 4.8 MB": _op(nn.ReLU(), (1, 96, 112, 112)),
        "conv1 256->256 @28": _op(nn.Conv2d(256, 256, 1, bias=False), (1, 256, 28, 28)),
        "linear 2048->1000": _op(nn.Linear(2048, 1000), (1, 2048)),
        "l3 copy 4 MiB": _copy(4 * MiB),
        "dram copy 32 MiB": _copy(32 * MiB),
    }


def _seconds(call: Callable[[], object], clock: CpuClock) -> float:
    times = []
    for _ in range(3):
        start = clock.mark()
        call()
        times.append(clock.elapsed(start, clock.mark()))
    return statistics.median(times)


def _spread(values: list[float]) -> float:
    p10, p90 = np.percentile(values, [10, 90])
    return float(p90 / p10)


def _lag1(values: list[float]) -> float:
    """Autocorrelation of the log times one round apart: near 0 for scatter from call to call,
    near 1 for a drift that lasts many rounds."""
    logs = np.log(values)
    logs = logs - logs.mean()
    return float((logs[1:] * logs[:-1]).mean() / (logs * logs).mean())


CONTROLS = ("compute control", "l3 copy 4 MiB", "dram copy 32 MiB")


def _row(name: str, series: Mapping[str, list[float]]) -> dict[str, Any]:
    """One item's median, 10th/50th/90th percentiles, spread, lag-1 autocorrelation, and per
    other control its paced spread and log correlation."""
    raw = series[name]
    p10, p50, p90 = np.percentile(raw, [10, 50, 90])
    row: dict[str, Any] = {
        "median_s": statistics.median(raw),
        "percentiles_s": {"p10": float(p10), "p50": float(p50), "p90": float(p90)},
        "raw_spread": _spread(raw),
        "lag1": _lag1(raw),
    }
    for c in CONTROLS:
        if c != name:
            over = [t / s for t, s in zip(raw, series[c], strict=True)]
            corr = float(np.corrcoef(np.log(raw), np.log(series[c]))[0, 1])
            row[c] = {"paced_spread": _spread(over), "log_correlation": corr}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    clock = CpuClock(thread_time=True)
    series: dict[str, list[float]] = collections.defaultdict(list)
    with kept_memory(256 * MiB), torch.inference_mode():
        control = Control(clock, 1)
        items: dict[str, Callable[[], object]] = {"compute control": control, **_items()}
        for call in items.values():
            call()
        names = list(items)
        end = time.monotonic() + args.seconds
        rounds = 0
        while time.monotonic() < end:
            shift = rounds % len(names)
            for name in names[shift:] + names[:shift]:
                series[name].append(_seconds(items[name], clock))
            rounds += 1
    found: dict[str, Any] = {"cpu": cpu_name_and_mhz()[0], "rounds": rounds, "ops": {}}
    for name in names:
        found["ops"][name] = row = _row(name, series)
        paced = "  ".join(
            f"/{c.split()[0]} {row[c]['paced_spread']:.3f} (r {row[c]['log_correlation']:+.2f})"
            for c in CONTROLS
            if c in row
        )
        print(
            f"{name:20s} {row['median_s'] * 1e6:9.1f} us  raw {row['raw_spread']:.3f} "
            f"(lag-1 {row['lag1']:+.2f})  {paced}"
        )
    emit(found, args.out)


if __name__ == "__main__":
    main()
