"""The latency-model file that `hda correlate` writes and `hda search --objective latency` reads.

``{"format": "hda-latency-model", "version": 1, "device": ..., "features": ["macs", "cio"],
"coef": [a, b], "intercept": c, "units": "s"}``: predicted latency = c + a*macs + b*cio, the
features being whole-model graph metrics the search computes for every candidate.
"""

from __future__ import annotations

LATENCY_MODEL_FORMAT = "hda-latency-model"
LATENCY_MODEL_VERSION = 1

#: Whole-model metrics a latency model may use (CIO in elements, act_bytes in bytes).
LATENCY_FEATURES = ("params", "macs", "cio", "act_bytes")
