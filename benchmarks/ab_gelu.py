"""One calibration's timings fitted twice: with GELU a kind of its own (``gelu``), and with its
benchmarks fitted with the other transcendental activations (SiLU, sigmoid), as calibrations
before the split did (a ``gelu`` op then takes the ``transcendental`` kind's coefficients).

Score both on the same profile runs with ``hda correlate RUNS --device-model
OUT/device-split.json`` and ``.../device-merged.json``.

    python benchmarks/ab_gelu.py --out results/gelu-kind/ab                          # 3 minutes
    python benchmarks/ab_gelu.py --runtime onnxruntime --out results/gelu-kind/ab-ort

Run on a quiet machine; ``--grid quick`` for a quick end-to-end check.
"""

from __future__ import annotations

from dataclasses import replace

from ab_fits import run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration


def _split(timed: Timings, started: float) -> DeviceModels:
    return fit_calibration(timed, None, started)


def _merged(timed: Timings, started: float) -> DeviceModels:
    measured = {
        n: [replace(m, kind="transcendental") if m.kind == "gelu" else m for m in ms]
        for n, ms in timed.measured.items()
    }
    return fit_calibration(replace(timed, measured=measured), None, started)


if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"split": _split, "merged": _merged})
