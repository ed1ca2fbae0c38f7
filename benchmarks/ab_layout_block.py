"""One calibration's timings fitted two ways: conv kinds' channels padded to oneDNN's layout
block as probed (``layout``: 16 on an AVX-512 CPU, 8 with AVX2), or to its grouped-conv width
as before the two were probed apart (``grouped``: 4 on an AVX-512 Intel Xeon, so a conv's
channels count as laid out in blocks of 4 and 8). On an AVX2 CPU both are 8 and the fits are
the same. Score them on the same profile runs with ``hda correlate RUNS --device-model
OUT/device-layout.json`` (and ``-grouped``).

    python benchmarks/ab_layout_block.py --out results/intel-layout-block/ab     # 3 minutes

Run on a quiet machine; ``--grid quick`` for a quick end-to-end check.
"""

from __future__ import annotations

from dataclasses import replace

from ab_fits import run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration


def _layout(timed: Timings, started: float) -> DeviceModels:
    return fit_calibration(timed, None, started)


def _grouped(timed: Timings, started: float) -> DeviceModels:
    # layout_block 0: ConvPaths falls back to the grouped width, in the fit and in the file
    return fit_calibration(timed, replace(timed.paths, layout_block=0), started)


if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"layout": _layout, "grouped": _grouped})
