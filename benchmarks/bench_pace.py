"""How much of a shared machine's drift the speed controls take out of a whole-model timing, and
what they cost it.

For each model and thread count, alternates plain runs of ``--repeat`` forwards (after one
warm-up; `profiler.latency.time_forward`) with paced ones (`profiler.pace.time_paced`, as
``hda profile`` times), back to back for ``--seconds``. Printed per model: the mean relative
difference between every two paced runs' raw figures (median forward) and between their paced
ones (median of forward over control): 0% on a steady machine, the drift two profiles of the
same model would show; the median ratio of a paced run's median forward to the plain run's
before it (1.0: the controls beside the forwards do not slow them); and the controls' share of
the paced timing. 224x224 fp32, eager PyTorch or (``--runtime onnxruntime``) ONNX Runtime on
its cached export, wall time (``--thread-time``: the thread's CPU time, eager at one thread);
``--control-threads`` overrides the controls' thread count, to see why ORT's are 1.

    python benchmarks/bench_pace.py --seconds 30 --out results/pace/intel-xeon-wall.json

Run on an otherwise idle machine (here: nothing else in the VM).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from timing import emit

from hardnet_analysis.backends.cpu import CpuClock, cpu_name_and_mhz
from hardnet_analysis.models import create_model
from hardnet_analysis.profiler.latency import time_forward
from hardnet_analysis.profiler.onnxrt import export_cached, feeds, forward_of, session
from hardnet_analysis.profiler.pace import Control, control_threads, pace_of, time_paced
from hardnet_analysis.shapes import InputShape

MODELS = ("resnet18", "mobilenet_v2", "densenet121")


def drift(figures: list[float]) -> float:
    """Mean relative difference over every pair of `figures` (as a share of the second)."""
    pairs = list(itertools.combinations(figures, 2))
    return statistics.mean(abs(a / b - 1) for a, b in pairs)


def forward_of_model(name: str, threads: int, runtime: str) -> Callable[[], object]:
    """One forward of `name` at 224x224 on `threads` threads in `runtime`."""
    shape = InputShape.of_image(224)
    module = create_model(name).eval()
    if runtime == "onnxruntime":
        sess = session(export_cached(name, module, shape).path, threads)
        return forward_of(sess, feeds(sess, shape))
    x = torch.rand(1, 3, 224, 224)

    def forward() -> object:
        with torch.inference_mode():
            return module(x)

    return forward


def runs(
    name: str, threads: int, seconds: float, repeat: int, how: tuple[str, bool, int]
) -> dict[str, Any]:
    """Raw and paced drift, and the controls' cost, of `name`'s runs over `seconds` at
    `threads` threads; `how`: the runtime, whether the clock is the thread's CPU time, and
    the controls' thread count (0: `control_threads`')."""
    runtime, thread_time, on = how
    forward = forward_of_model(name, threads, runtime)
    torch.set_num_threads(on or control_threads(threads, runtime))  # ORT's threads are its own
    clock = CpuClock(thread_time)
    control = Control(clock)
    raw, paced, cost, forward_s, control_s = [], [], [], 0.0, 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        plain = statistics.median(time_forward(forward, clock, 1, repeat))
        samples, controls = time_paced(forward, control, 1, repeat)
        raw.append(statistics.median(samples))
        paced.append(pace_of(samples, controls, threads, thread_time).paced)
        cost.append(raw[-1] / plain)
        forward_s, control_s = forward_s + sum(samples), control_s + sum(controls)
    return {
        "model": name,
        "runtime": runtime,
        "threads": threads,
        "control_threads": torch.get_num_threads(),
        "runs": len(raw),
        "median_ms": 1e3 * statistics.median(raw),
        "raw_drift": drift(raw),
        "paced_drift": drift(paced),
        "paced_over_plain": statistics.median(cost),
        # one control between two forwards: about one per forward
        "control_share": control_s / (forward_s + control_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--seconds", type=float, default=40.0, help="per model and count")
    parser.add_argument("--repeat", type=int, default=5, help="forwards per run (hda: 5)")
    parser.add_argument("--thread-time", action="store_true", help="1 thread only")
    parser.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch")
    parser.add_argument(
        "--control-threads", type=int, default=0, help="default: hda's rule (control_threads)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    found = [
        runs(
            name,
            n,
            args.seconds,
            args.repeat,
            (args.runtime, args.thread_time and n == 1, args.control_threads),
        )
        for name in args.models
        for n in args.threads
    ]
    cpu = cpu_name_and_mhz()[0]
    emit({"cpu": cpu, "torch": torch.__version__, "seconds": args.seconds, "runs": found}, args.out)


if __name__ == "__main__":
    main()
