"""The shared half of the A/B benchmarks: time one calibration, fit its timings several ways
(each variant a function of the timings and the start time), write and summarise each."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.metrics.conv_paths import ConvPaths
from hardnet_analysis.profiler.calibrate import (
    CalibrationSettings,
    Timings,
    fit_calibration,
    time_calibration,
)

Variant = Callable[[Timings, float], DeviceModels]


def probed(timed: Timings, started: float) -> DeviceModels:
    """The timings fitted as ``hda calibrate`` fits them, on the conv paths probed."""
    return fit_calibration(timed, timed.paths, started)


def folded(kind: str, into: str) -> Variant:
    """A variant that fits the timings on the probed conv paths, but with every conv of `kind`
    fitted as `into`, as before `kind` was told apart."""

    @dataclass(frozen=True)
    class _Folded(ConvPaths):
        def kind(self, found: str, attrs: Mapping[str, Any]) -> str:
            ran = super().kind(found, attrs)
            return into if ran == kind else ran

    def fit(timed: Timings, started: float) -> DeviceModels:
        return fit_calibration(timed, _Folded(**vars(timed.paths)), started)

    return fit


def run(description: str, variants: Mapping[str, Variant]) -> None:
    """Parse ``--out --grid --threads --runtime``, time once, and write each variant's fit to
    ``OUT/device-NAME.json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--grid", default="full", choices=("full", "quick", "tiny"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"))
    args = parser.parse_args()
    settings = CalibrationSettings(
        threads=tuple(args.threads),
        # ORT's kernels run on its own thread pool: wall time, as `hda calibrate` takes them.
        thread_time=args.runtime == "torch",
        grid=args.grid,
        runtime=args.runtime,
    )
    started = time.perf_counter()
    timed = time_calibration(settings, print)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fit in variants.items():
        models = fit(timed, started)
        models.write(args.out / f"device-{name}.json")
        for model in models.models:
            print(
                f"{name}: {model.threads} threads: cache {model.cache_bytes}, native_limit "
                f"{model.native_limit}; {model.fit.n} benchmarks, leave-one-out "
                f"{model.fit.loo_error:.1%}"
            )
    seconds = time.perf_counter() - started
    print(f"timed once, fitted {len(variants)} ways in {seconds:.0f} s; written to {args.out}")
