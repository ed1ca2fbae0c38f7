"""Forward latency with glibc's default malloc against the state hda times in (freed memory
kept, ``profiler.allocator.kept_memory``), each in a fresh process, with the page faults of
each timed forward.

Every (model, size) runs in turns, default then kept, for ``--rounds`` rounds (a shared VM's
speed drifts over minutes; interleaved, the drift falls on both alike): a fresh Python process
builds the model, runs ``--warmup`` forwards and times ``--repeat`` on the thread's CPU clock.
The ratio of the medians is what glibc's defaults cost that model in a steady loop of forwards,
the faults per forward why.

    python benchmarks/bench_page_faults.py --out results/page-faults/amd-epyc.json

Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from hardnet_analysis.backends.cpu import cpu_name_and_mhz
from hardnet_analysis.fileio import atomic_write_text

MODELS = (
    "mobilenet_v2",
    "efficientnet_b0",
    "hardnet39ds",
    "hardnet68",
    "resnet50",
    "densenet121",
    "shufflenet_v2_x1_0",
)
SIZES = ("224", "320")

CHILD = """
import contextlib, json, sys, time
import torch
from hardnet_analysis.profiler.allocator import FaultCount, kept_memory
from hardnet_analysis.profiler.run import prepare
from hardnet_analysis.resolve import input_shape_of, resolve
from hardnet_analysis.units import parse_input_size

model, size, keep = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
warmup, repeat = int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(1)
shape = input_shape_of(resolve(model), parse_input_size(size), 1)
net, x = prepare(model, shape, "fp32", False, torch.device("cpu"))
seconds = []

def forward():
    start = time.thread_time_ns()
    net(x)
    seconds.append((time.thread_time_ns() - start) / 1e9)

count = FaultCount(forward)
with kept_memory() if keep else contextlib.nullcontext(), torch.inference_mode():
    for _ in range(warmup + repeat):
        count()
print(json.dumps({"seconds": seconds[warmup:], "faults": count.calls[warmup:]}))
"""


def _child(model: str, size: str, keep: bool, warmup: int, repeat: int) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-c",
        CHILD,
        model,
        size,
        "1" if keep else "0",
        str(warmup),
        str(repeat),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _row(model: str, size: str, args: argparse.Namespace) -> dict[str, Any]:
    """Medians over the rounds' timed forwards, default and kept, and their ratio."""
    runs: dict[str, dict[str, list[float]]] = {
        mode: {"seconds": [], "faults": []} for mode in ("default", "kept")
    }
    for _ in range(args.rounds):
        for mode in runs:
            got = _child(model, size, mode == "kept", args.warmup, args.repeat)
            runs[mode]["seconds"] += got["seconds"]
            runs[mode]["faults"] += got["faults"]
    row: dict[str, Any] = {"model": model, "input": size}
    for mode, got in runs.items():
        row[f"{mode}_ms"] = 1e3 * statistics.median(got["seconds"])
        row[f"{mode}_faults"] = statistics.median(got["faults"])
        row[f"{mode}_faults_max"] = max(got["faults"])
    row["ratio"] = row["default_ms"] / row["kept_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    rows = []
    for model in args.models:
        for size in args.sizes:
            row = _row(model, size, args)
            print(
                f"{model} @{size}: default {row['default_ms']:.2f} ms "
                f"({row['default_faults']:.0f} faults), kept {row['kept_ms']:.2f} ms "
                f"({row['kept_faults']:.0f}): {row['ratio']:.2f}x",
                flush=True,
            )
            rows.append(row)
    name, _ = cpu_name_and_mhz()
    document = {"cpu": name, "threads": 1, "clock": "time.thread_time_ns", "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
