"""One calibration's timings fitted three ways: each conv kind run in a blocked layout padding
its input channels to none or the block b probed on this CPU (oneDNN's, or ORT's NCHWc block)
and its output channels to b, 2b, b x threads or 2b x threads (``ConvPaths.channel_blocks``:
oneDNN hands each thread whole units of two blocks of output channels); the same with the
output padded as the input (``same``); and both to whichever of 1, 8 and 16 fits its
benchmarks best leave-one-out (``searched``), as calibrations before did.

The grid's grouped convs have 8, 16 or 32 channels per group, where blocks of 8 and 16 count
the same FLOPs, so the search could take 16 on an AVX2 CPU and count RegNetX's 24 channels per
group as 32. Score them on the same profile runs with ``hda correlate RUNS --device-model
OUT/device-probed.json`` (and ``-same``, ``-searched``).

    python benchmarks/ab_channel_blocks.py --out results/channel-blocks/ab          # 3 minutes
    python benchmarks/ab_channel_blocks.py --runtime onnxruntime --out results/channel-blocks/ab-ort

Run on a quiet machine; ``--grid quick`` for a quick end-to-end check.
"""

from __future__ import annotations

from collections.abc import Callable

from ab_fits import run

from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.metrics.conv_paths import CHANNEL_BLOCKS, ConvPaths
from hardnet_analysis.profiler.calibrate import Timings, fit_calibration

Blocks = Callable[[ConvPaths, str], tuple[tuple[int, int], ...]]


def _same(self: ConvPaths, kind: str) -> tuple[tuple[int, int], ...]:
    return tuple(dict.fromkeys((i, i) for i, _ in PROBED(self, kind)))


def _every_block(self: ConvPaths, kind: str) -> tuple[tuple[int, int], ...]:
    return tuple((k, k) for k in CHANNEL_BLOCKS) if kind.startswith("conv") else ((1, 1),)


PROBED: Blocks = ConvPaths.channel_blocks


def _fitted_with(blocks: Blocks) -> Callable[[Timings, float], DeviceModels]:
    def fit(timed: Timings, started: float) -> DeviceModels:
        ConvPaths.channel_blocks = blocks  # type: ignore[method-assign,assignment]
        try:
            return fit_calibration(timed, None, started)
        finally:
            ConvPaths.channel_blocks = PROBED  # type: ignore[method-assign,assignment]

    return fit


if __name__ == "__main__":
    variants = {"probed": PROBED, "same": _same, "searched": _every_block}
    run(__doc__.split("\n\n")[0], {name: _fitted_with(b) for name, b in variants.items()})
