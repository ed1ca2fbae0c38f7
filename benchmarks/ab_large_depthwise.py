"""One calibration's timings fitted twice: with the full grid's depthwise convs on the large
maps of 320x320 inputs (``microbench.LARGE_DEPTHWISE``, as ``hda calibrate`` now times them)
and without them (the grid before).

Fitting the same timings both ways takes the machine's drift out (see ``ab_conv_paths.py``):
the two device models differ only in those benchmarks. Score both on the same profile runs
with ``hda correlate RUNS --device-model OUT/device-large.json`` and ``.../device-small.json``.

    python benchmarks/ab_large_depthwise.py --threads 1 --out results/dw-large/ab   # 2 minutes

Run on a quiet machine; ``--grid tiny`` for a quick end-to-end check (no large benchmarks).
"""

from __future__ import annotations

from dataclasses import replace

from ab_fits import probed, run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration
from hardnet_analysis.profiler.microbench import LARGE_DEPTHWISE

LARGE = {f"dw{k} /{s} {c} @{side}" for k, c, side, s in LARGE_DEPTHWISE["full"]}


def _small(timed: Timings, started: float) -> DeviceModels:
    measured = {
        n: [m for m in ms if m.label.split(" cold")[0] not in LARGE]
        for n, ms in timed.measured.items()
    }
    return fit_calibration(replace(timed, measured=measured), timed.paths, started)


if __name__ == "__main__":
    run(__doc__.splitlines()[0], {"large": probed, "small": _small})
