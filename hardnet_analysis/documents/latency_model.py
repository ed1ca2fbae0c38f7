"""The latency-model file that `hda correlate` writes and `hda search --objective latency` reads.

``{"format": "hda-latency-model", "version": 1, "device": ..., "features": ["macs", "cio"],
"coef": [a, b], "intercept": c, "units": "s"}``: predicted latency = c + a*macs + b*cio, the
features being whole-model graph metrics the search computes for every candidate. The fit's
diagnostics (``n_runs``, ``train_mean_abs_rel_error``, ``lomo_mean_abs_rel_error``) follow and
may be absent. `LatencyModel` is a `hardnet_analysis.documents.base.Document`: ``write`` is the
only writer and ``read`` the only reader.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hardnet_analysis.documents.base import Document
from hardnet_analysis.documents.records import decode, encode

#: Whole-model metrics a latency model may use (CIO in elements, act_bytes in bytes).
LATENCY_FEATURES = ("params", "macs", "cio", "act_bytes")

#: The fit's diagnostics under their names in the file.
_JSON_KEYS = {
    "n": "n_runs",
    "train_error": "train_mean_abs_rel_error",
    "lomo_error": "lomo_mean_abs_rel_error",
}


@dataclass(frozen=True)
class LatencyModel(Document):
    """latency (`units`, seconds) = intercept + sum(coef_i * feature_i), fitted by non-negative
    least squares on whole models of one `device`. `n` is the number of runs fitted,
    `train_error` their mean |relative error| and `lomo_error` the same when each model is
    predicted by a fit on the others (None with one model, or unknown where not given)."""

    FORMAT: ClassVar[str] = "hda-latency-model"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "calibration file"
    WHAT: ClassVar[str] = "hda latency model"
    WRITER: ClassVar[str] = "`hda correlate --save-calibration FILE`"

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

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object (the diagnostics under their long names)."""
        body = {_JSON_KEYS.get(k, k): v for k, v in encode(self).items()}
        return {**self.header(), **body}

    @classmethod
    def decode_fields(cls, document: dict[str, Any], where: str, version: int) -> LatencyModel:
        """The model of `document`, its diagnostics read from their long names."""
        body = {k: document[v] for k, v in _JSON_KEYS.items() if v in document}
        return decode(cls, {**document, **body}, where, cls.accepted())

    def out_of_range(self) -> str | None:
        """A problem unless the features are among `LATENCY_FEATURES` (what the search can
        compute), each with one finite coef, and the intercept is finite."""
        if not self.features or not set(self.features) <= set(LATENCY_FEATURES):
            return f"features must be a list among {', '.join(LATENCY_FEATURES)}"
        numbers = [*self.coef, self.intercept]
        if len(self.coef) != len(self.features) or not all(map(math.isfinite, numbers)):
            return "needs one finite coef per feature and a finite intercept"
        return None
