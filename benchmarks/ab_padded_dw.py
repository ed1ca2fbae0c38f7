"""One calibration's timings fitted twice: with depthwise convs whose channels oneDNN's blocked
layout pads fitted as a kind of their own (``conv_dw_padded``, as ``hda calibrate`` now does),
and with every depthwise conv fitted as ``conv_dw`` (as before).

Fitting the same timings both ways takes the machine's drift out (see ``ab_conv_paths.py``):
the two device models differ only in the kind each depthwise benchmark is fitted as. Score both
on the same profile runs with ``hda correlate RUNS --device-model OUT/device-split.json`` and
``.../device-one.json``.

    python benchmarks/ab_padded_dw.py --out results/dw-padded/ab   # about 3 minutes

Run on a quiet machine; ``--grid tiny`` for a quick end-to-end check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ab_fits import run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.metrics.conv_paths import PADDED_DEPTHWISE, ConvPaths
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration


@dataclass(frozen=True)
class _OneDepthwiseKind(ConvPaths):
    """The probed paths, but a padded depthwise conv is fitted as ``conv_dw``."""

    def kind(self, kind: str, attrs: Mapping[str, Any]) -> str:
        found = super().kind(kind, attrs)
        return "conv_dw" if found == PADDED_DEPTHWISE else found


def _split(timed: Timings, started: float) -> DeviceModels:
    return fit_calibration(timed, timed.paths, started)


def _one(timed: Timings, started: float) -> DeviceModels:
    paths = _OneDepthwiseKind(**vars(timed.paths))
    return fit_calibration(timed, paths, started)


if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"split": _split, "one": _one})
