"""The speed control after a forward that evicted the caches, against back to back: as it runs
now, with an untimed matmul before the timed ones (``profiler.pace.Control``), and cold.

Each round takes a control, sweeps a buffer four times the last-level cache (as a large model's
forward does), and takes another; the ratio of the medians is how much slower a run's controls
read than a calibration's, taken back to back, for no change of the machine's speed.

    python benchmarks/bench_control_cache.py --out results/pace/control-cache.json

Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import torch

from hardnet_analysis.backends.cpu import CpuClock, cpu_name_and_mhz
from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.profiler.pace import CONTROL_MATMULS, SIDE, Control


def _cold_control(clock: CpuClock) -> Callable[[], float]:
    """The control as it was before it ran a matmul untimed first."""
    a, b = torch.rand(SIDE, SIDE), torch.rand(SIDE, SIDE)

    def timed() -> float:
        start = clock.mark()
        for _ in range(CONTROL_MATMULS):
            a @ b
        return float(clock.elapsed(start, clock.mark()))

    return timed


def _ratio(control: Callable[[], float], sweep: torch.Tensor, rounds: int) -> dict[str, float]:
    """Median control back to back and after a sweep of `sweep`, and their ratio."""
    warm, cold = [], []
    for _ in range(rounds):
        warm.append(control())
        sweep.add_(1.0)
        cold.append(control())
    w, c = statistics.median(warm), statistics.median(cold)
    return {"back_to_back_s": w, "after_sweep_s": c, "ratio": c / w}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--sweep-mib", type=int, default=128)
    args = parser.parse_args()
    sweep = torch.rand(args.sweep_mib * 2**20 // 4)
    rows = []
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        for name, control in (
            ("warmed up", Control(CpuClock(thread_time=threads == 1))),
            ("cold", _cold_control(CpuClock(thread_time=threads == 1))),
        ):
            control()  # allocate, spin the pool up
            row = {"threads": threads, "control": name, **_ratio(control, sweep, args.rounds)}
            print(f"{threads} threads, {name}: after the sweep / back to back {row['ratio']:.3f}")
            rows.append(row)
    document = {
        "cpu": cpu_name_and_mhz()[0],
        "torch": torch.__version__,
        "sweep_mib": args.sweep_mib,
        "rows": rows,
    }
    atomic_write_text(args.out, json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
