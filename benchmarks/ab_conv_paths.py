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

from dataclasses import replace

from ab_fits import run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration


def _probed(timed: Timings, started: float) -> DeviceModels:
    return fit_calibration(timed, timed.paths, started)


def _onednn(timed: Timings, started: float) -> DeviceModels:
    return fit_calibration(timed, replace(timed.paths, native_limit=0), started)


if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"probed": _probed, "oneDNN": _onednn})
