"""How this machine's speed moves over time: a short fixed workload (the load probe's 384x384
fp32 matmul, about 1 ms) timed back to back for ``--seconds`` on one thread, by the thread's
CPU time (what a ``--thread-time`` run sees: the hypervisor's steal left out) and by wall time.

A shared VM runs a fixed workload at several speeds: another tenant on the core's SMT sibling,
or in the shared L3 and memory bus, slows it without taking its time slice. What decides
whether a load probe can stand for a calibration's or a run's speed is how long a state lasts:
a state that lasts seconds is seen by a probe taken beside the timing; one that changes every
few milliseconds is averaged by any timing of a forward, and no probe follows it. Prints the
spread of the per-call times (each against the fastest 5%), the share of calls more than 20%
slower, the median length of a run of such slow calls, and the correlation of each window's
mean time with the next window's, for windows of 10 ms to 2 s (1.0: the speed of one window
tells the next; 0: it tells nothing).

    python benchmarks/bench_speed_states.py --seconds 60 --out results/speed-states/intel.json

Run on an otherwise idle machine (here: nothing else in the VM).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from timing import emit

WINDOWS_S = (0.01, 0.1, 0.5, 2.0)


def timed(seconds: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start wall time, thread seconds, wall seconds) of each matmul timed in `seconds`."""
    torch.set_num_threads(1)
    a, b = torch.rand(384, 384), torch.rand(384, 384)
    for _ in range(20):
        a @ b
    starts, threads, walls = [], [], []
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        used = time.thread_time()
        a @ b
        threads.append(time.thread_time() - used)
        walls.append(time.perf_counter() - now)
        starts.append(now)
    return np.array(starts), np.array(threads), np.array(walls)


def window_correlation(starts: np.ndarray, times: np.ndarray, window: float) -> float | None:
    """Pearson correlation of consecutive windows' mean call times (None: < 3 windows)."""
    index = ((starts - starts[0]) // window).astype(int)
    means = [times[index == i].mean() for i in range(index.max() + 1) if (index == i).any()]
    if len(means) < 3:
        return None
    return float(np.corrcoef(means[:-1], means[1:])[0, 1])


def slow_runs(times: np.ndarray, fast: float) -> list[int]:
    """Lengths (calls) of the runs of consecutive calls more than 20% slower than `fast`."""
    runs, length = [], 0
    for slow in times > 1.2 * fast:
        if slow:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs + ([length] if length else [])


def summary(starts: np.ndarray, times: np.ndarray) -> dict[str, object]:
    fast = float(np.quantile(times, 0.05))
    runs = slow_runs(times, fast)
    return {
        "calls": len(times),
        "fast_ms": 1e3 * fast,
        "ratio_p50": float(np.median(times)) / fast,
        "ratio_p90": float(np.quantile(times, 0.9)) / fast,
        "ratio_max": float(times.max()) / fast,
        "slow_share": float((times > 1.2 * fast).mean()),
        "slow_run_median_calls": statistics.median(runs) if runs else 0,
        "slow_run_max_calls": max(runs, default=0),
        "window_correlation": {f"{w:g}s": window_correlation(starts, times, w) for w in WINDOWS_S},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    starts, threads, walls = timed(args.seconds)
    found = {"thread_time": summary(starts, threads), "wall": summary(starts, walls)}
    emit(found, args.out)


if __name__ == "__main__":
    main()
