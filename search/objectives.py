"""Objectives: functions of the per-candidate metric arrays that rank candidates.

An `Objective` maps `Metrics` (one array per `hardnet_analysis.search_metrics.METRICS` entry) to
one float64 value per candidate and says whether higher is better. `OBJECTIVES` has one per
metric, ranking the way its spec says (a new metric brings its objective along); objectives that
need a file (a fitted latency model) live in `CALIBRATED` as factories taking its path.

The latency model is the file the profiler writes from ``hda correlate``::

    {"format": "hda-latency-model", "version": 1, "device": "H100", "features": ["macs", "cio"],
     "coef": [a, b], "intercept": c, "units": "s"}

with predicted latency = intercept + sum(coef_i * feature_i), features among params, macs,
cio and act_bytes. E.g. coef [1e-13, 2e-10], intercept 1e-4 gives HarDNet-68 (4.246e9 MACs,
11.47e6 CIO) 1e-4 + 4.246e-4 + 2.294e-3 = 2.82e-3 s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.calibration import LatencyModel
from hardnet_analysis.search_metrics import METRICS
from search.evaluate import Metrics

Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Objective:
    """A named score per candidate; `higher_is_better` says which way it ranks."""

    name: str
    description: str
    higher_is_better: bool
    value: Callable[[Metrics], Values]
    info: dict[str, Any] = field(default_factory=dict)

    def cost(self, metrics: Metrics) -> Values:
        """The value turned into a cost (lower is better) for ranking."""
        v = self.value(metrics)
        return -v if self.higher_is_better else v


def _metric(name: str) -> Callable[[Metrics], Values]:
    return lambda m: np.asarray(m.metric(name), dtype=np.float64)


#: One objective per search metric, ranking the way its spec says (`METRICS` order).
OBJECTIVES: dict[str, Objective] = {
    s.name: Objective(s.name, s.objective_text, not s.lower_is_better, _metric(s.name))
    for s in METRICS
}


def _latency_model(path: Path) -> Objective:
    """The `latency` objective from a fitted model file (see the module docstring)."""
    model = LatencyModel.load(path)  # checks format, version, features and finite numbers

    def predict(m: Metrics) -> Values:
        total = np.full(len(m), model.intercept, dtype=np.float64)
        for name, c in zip(model.features, model.coef, strict=True):
            total += c * np.asarray(m.metric(name), dtype=np.float64)
        return total

    info: dict[str, Any] = {"calibration": str(path), "device": model.device}
    info |= {"units": model.units, "features": list(model.features), "coef": list(model.coef)}
    info |= {"intercept": model.intercept}
    text = f"predicted latency ({model.units}) on {model.device}, lower first"
    return Objective("latency", text, False, predict, info)


CALIBRATED: dict[str, Callable[[Path], Objective]] = {"latency": _latency_model}


def objective_names() -> list[str]:
    return [*OBJECTIVES, *CALIBRATED]


def get_objective(name: str, calibration: str | Path | None = None) -> Objective:
    """The objective `name`; calibrated ones read `calibration`."""
    if name in CALIBRATED:
        if calibration is None:
            raise UsageError(f"--objective {name} needs --calibration FILE (from hda correlate)")
        return CALIBRATED[name](Path(calibration))
    if name not in OBJECTIVES:
        raise UsageError(f"unknown objective {name!r}; use one of {', '.join(objective_names())}")
    if calibration is not None:
        raise UsageError(f"--calibration is used only with --objective {', '.join(CALIBRATED)}")
    return OBJECTIVES[name]
