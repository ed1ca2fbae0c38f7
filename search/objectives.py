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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.documents.latency_model import LatencyModel
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.predict import predict
from hardnet_analysis.search.evaluate import Metrics, PartFeature
from hardnet_analysis.search_metrics import METRICS

Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Objective:
    """A named score per candidate; `higher_is_better` says which way it ranks."""

    name: str
    description: str
    higher_is_better: bool
    value: Callable[[Metrics], Values]
    info: dict[str, Any] = field(default_factory=dict)
    #: Per-part features the value reads from `Metrics.extra` (see `search.evaluate`).
    features: Mapping[str, PartFeature] = field(default_factory=dict)

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
    model = LatencyModel.read(path)  # checks format, version, features and finite numbers

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

#: The search's name for a candidate's predicted latency (seconds) under a device model.
LATENCY = "latency_s"


def latency_feature(
    device: DeviceModel, path: str | Path
) -> tuple[dict[str, PartFeature], dict[str, Any]]:
    """The per-part predicted latency (s) on `device` (read from `path`, ``hda calibrate``):
    each network part's prediction (``metrics.predict``), summed per candidate; and what the
    front records about it."""

    def seconds(analysis: Any, place: str) -> float:
        return predict(analysis, device, part=place).latency_s

    info: dict[str, Any] = {"device_model": str(path)}
    info["device"] = f"{device.device} {device.machine.name}"
    info |= {"threads": device.threads, "cache_bytes": device.cache_bytes, "units": "s"}
    return {LATENCY: seconds}, info


def _device_latency(device: DeviceModel, path: Path) -> Objective:
    """The `latency` objective from a device model: the sum of the layers' predictions."""
    features, info = latency_feature(device, path)

    def value(m: Metrics) -> Values:
        return np.asarray(m.metric(LATENCY), dtype=np.float64)

    text = f"predicted latency (s) on {info['device']}, lower first"
    return Objective("latency", text, False, value, info, features)


def objective_names() -> list[str]:
    return [*OBJECTIVES, *CALIBRATED]


def get_objective(
    name: str,
    calibration: str | Path | None = None,
    device_model: str | Path | None = None,
    device: DeviceModel | None = None,
) -> Objective:
    """The objective `name`; calibrated ones read `device_model` (a device model from hda
    calibrate; `device`: its model already read, else the one for torch's thread count) or
    `calibration` (the older macs + cio latency model from hda correlate)."""
    if name in CALIBRATED:
        if calibration is not None and device_model is not None:
            raise UsageError("give --device-model or --calibration, not both")
        if device_model is not None:
            loaded = device if device is not None else DeviceModel.read(device_model)
            return _device_latency(loaded, Path(device_model))
        if calibration is None:
            raise UsageError(
                f"--objective {name} needs --device-model DEVICE.json (from hda calibrate) or "
                "--calibration FILE (from hda correlate)"
            )
        return CALIBRATED[name](Path(calibration))
    if name not in OBJECTIVES:
        raise UsageError(f"unknown objective {name!r}; use one of {', '.join(objective_names())}")
    if calibration is not None:
        raise UsageError(f"--calibration is used only with --objective {', '.join(CALIBRATED)}")
    return OBJECTIVES[name]
