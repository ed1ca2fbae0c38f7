"""One calibration's timings fitted twice: with the conv paths probed here, and with PyTorch's
own small convs taken for oneDNN's (``native_limit`` 0, as calibrations before that rule).

A shared VM changes speed state by 10-20% within minutes, so two calibrations taken one after
the other differ by more than the change under test. Fitting the same timings both ways takes
the machine out: the two device models differ only in which kind each conv benchmark (and
each op of the context networks) is fitted as. Score both on the same profile runs with
``hda correlate RUNS --device-model OUT/device-probed.json`` and ``.../device-oneDNN.json``.

    python benchmarks/ab_conv_paths.py --out results/native-sweep/ab   # about 3 minutes

Run on a quiet machine; ``--grid tiny`` for a quick end-to-end check.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from hardnet_analysis.profiler.calibrate import (
    CalibrationSettings,
    fit_calibration,
    time_calibration,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--grid", default="full", choices=("full", "quick", "tiny"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    settings = CalibrationSettings(threads=tuple(args.threads), thread_time=True, grid=args.grid)
    started = time.perf_counter()
    timed = time_calibration(settings, print)
    args.out.mkdir(parents=True, exist_ok=True)
    variants = {"probed": timed.paths, "oneDNN": replace(timed.paths, native_limit=0)}
    for name, paths in variants.items():
        models = fit_calibration(timed, paths, started)
        models.write(args.out / f"device-{name}.json")
        for model in models.models:
            fit = model.fit
            print(
                f"{name}: {model.threads} threads: native_limit {model.native_limit}; "
                f"{fit.n} benchmarks, leave-one-out {fit.loo_error:.1%}"
            )
    print(f"timed and fitted twice in {time.perf_counter() - started:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
