"""The latency-model file that `hda correlate` writes and `hda search --objective latency` reads.

``{"format": "hda-latency-model", "version": 1, "device": ..., "features": ["macs", "cio"],
"coef": [a, b], "intercept": c, "units": "s"}``: predicted latency = c + a*macs + b*cio, the
features being whole-model graph metrics the search computes for every candidate. The fit's
diagnostics (``n_runs``, ``train_mean_abs_rel_error``, ``lomo_mean_abs_rel_error``) follow and
may be absent. `LatencyModel.save` is the only writer and `LatencyModel.load` the only reader.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json, read_json
from hardnet_analysis.records import check_header, decode, encode

LATENCY_MODEL_FORMAT = "hda-latency-model"
LATENCY_MODEL_VERSION = 1

#: Whole-model metrics a latency model may use (CIO in elements, act_bytes in bytes).
LATENCY_FEATURES = ("params", "macs", "cio", "act_bytes")

_JSON_KEYS = {
    "n": "n_runs",
    "train_error": "train_mean_abs_rel_error",
    "lomo_error": "lomo_mean_abs_rel_error",
}


@dataclass(frozen=True)
class LatencyModel:
    """latency (`units`, seconds) = intercept + sum(coef_i * feature_i), fitted by non-negative
    least squares on whole models of one `device`. `n` is the number of runs fitted,
    `train_error` their mean |relative error| and `lomo_error` the same when each model is
    predicted by a fit on the others (None with one model, or unknown where not given)."""

    FORMAT: ClassVar[str] = LATENCY_MODEL_FORMAT
    VERSION: ClassVar[int] = LATENCY_MODEL_VERSION

    device: str
    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept: float
    units: str = "s"
    n: int | None = None
    train_error: float | None = None
    lomo_error: float | None = None

    def predict(self, features: Mapping[str, float]) -> float:
        """Predicted latency of a model with these feature values."""
        return self.intercept + sum(
            c * features[f] for c, f in zip(self.coef, self.features, strict=True)
        )

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (the diagnostics under their long names)."""
        body = {_JSON_KEYS.get(k, k): v for k, v in encode(self).items()}
        return {"format": self.FORMAT, "version": self.VERSION, **body}

    def save(self, path: str | Path) -> Path:
        """Write the file to `path` atomically."""
        return atomic_write_json(path, self.to_json())

    @classmethod
    def from_json(
        cls, document: Any, where: str, allowed: Collection[str] = LATENCY_FEATURES
    ) -> LatencyModel:
        """The model in JSON `document` from the file `where` names; its features must be
        among `allowed` (what the search can compute), one finite coef each."""
        check_header(document, where, "hda latency model", cls.FORMAT, cls.VERSION)
        accepted = f"accepted: format {cls.FORMAT!r} version {cls.VERSION} from hda correlate"
        body = {k: document[v] for k, v in _JSON_KEYS.items() if v in document}
        model = decode(cls, {**document, **body}, where, accepted)
        if not model.features or not set(model.features) <= set(allowed):
            raise UsageError(f"{where}: features must be a list among {', '.join(allowed)}")
        numbers = [*model.coef, model.intercept]
        if len(model.coef) != len(model.features) or not all(map(math.isfinite, numbers)):
            raise UsageError(f"{where}: needs one finite coef per feature and a finite intercept")
        return model

    @classmethod
    def load(cls, path: str | Path, allowed: Collection[str] = LATENCY_FEATURES) -> LatencyModel:
        """The latency model in the file at `path` (see `from_json`)."""
        where = f"calibration file {str(path)!r}"
        return cls.from_json(read_json(path, "calibration file"), where, allowed)
