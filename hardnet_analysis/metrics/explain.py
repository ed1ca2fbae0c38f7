"""What makes a model slow on a calibrated device: the predicted time per block and the layers
that take most of it, each with its share, what bounds it, its MoC and how far it lies outside
what the calibration measured.

A layer's bound is the device model's (`KindModel.time_of`): ``compute``, ``dram`` or
``cache`` (the resource term that dominates) or ``overhead`` (the fixed cost per op exceeds
every resource term). Its reach (`Reach`) compares its MACs and bytes with the micro-benchmarks
of its kind that the device model was fitted on: a layer 3x larger than the largest benchmark
has factor 3.0 and is flagged, because the fit has not seen anything like it. Example: a 1x1
conv of 2.4 GMACs on a device whose largest ``conv_1x1`` benchmark had 0.8 GMACs lies 3.0x
beyond it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.predict import Prediction

#: A layer whose MACs or bytes lie beyond this factor of its kind's benchmarks is flagged.
REACH_LIMIT = 2.0


@dataclass(frozen=True)
class Reach:
    """How far a layer lies outside its kind's calibrated range: `factor` is 1.0 inside it, or
    how many times larger (or smaller) than the nearest benchmark its MACs or bytes are, the
    worse of the two; `benchmarks` is how many of its kind were timed (0: none, factor inf)."""

    benchmarks: int
    factor: float

    @property
    def flagged(self) -> bool:
        return self.factor > REACH_LIMIT

    def label(self) -> str:
        if not self.benchmarks:
            return "no benchmark"
        return "in range" if self.factor <= 1.0 else f"{self.factor:.1f}x beyond"


@dataclass(frozen=True)
class ExplainedLayer:
    """One layer: its block, kind, predicted seconds and share of the model, bound, MACs, CIO,
    MoC (None without CIO) and reach."""

    name: str
    block: str
    kind: str
    time_s: float
    share: float
    bound: str
    macs: int
    cio: int
    moc: float | None
    reach: Reach


@dataclass(frozen=True)
class ExplainedBlock:
    """A block's predicted seconds, its share, and its slowest layers (slowest first)."""

    block: str
    time_s: float
    share: float
    layers: tuple[ExplainedLayer, ...]


@dataclass(frozen=True)
class Explanation:
    """The model's predicted latency and its blocks in execution order, each with the layers
    that hold at least `min_share` of the model's time; `shown_share` is what those layers sum
    to, and `bounds` the share of the model's time per bound (every layer counted)."""

    model: str
    input: tuple[int, int]
    device: str
    latency_s: float
    min_share: float
    shown_share: float
    bounds: dict[str, float]
    blocks: tuple[ExplainedBlock, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ranges(device: DeviceModel) -> dict[str, list[tuple[int, int]]]:
    """Per kind, the (MACs, bytes) of its benchmarks."""
    out: dict[str, list[tuple[int, int]]] = {}
    for sample in device.samples:
        out.setdefault(sample.kind, []).append((sample.macs, sample.bytes))
    return out


def reach(kind: str, macs: int, nbytes: int, ranges: dict[str, list[tuple[int, int]]]) -> Reach:
    """`Reach` of a layer of `kind` with `macs` and `nbytes` against the benchmarks in
    `ranges`. E.g. benchmarks of 1e6..8e8 MACs: 2.4e9 MACs gives factor 3.0."""
    seen = ranges.get(kind, [])
    if not seen:
        return Reach(0, float("inf"))
    factor = 1.0
    for value, values in ((macs, [m for m, _ in seen]), (nbytes, [b for _, b in seen])):
        low, high = min(values), max(values)
        if value > high > 0:
            factor = max(factor, value / high)
        elif 0 < value < low:
            factor = max(factor, low / value)
    return Reach(len(seen), factor)


def explain(
    analysis: Analysis, prediction: Prediction, device: DeviceModel, min_share: float = 0.02
) -> Explanation:
    """`Explanation` of `prediction` (of `analysis` on `device`): blocks in execution order,
    each with its layers holding >= `min_share` of the model's predicted time."""
    total = prediction.latency_s or 1.0
    records = {r.name: r for r in analysis.layers}
    ranges = _ranges(device)
    bounds: dict[str, float] = {}
    blocks: dict[str, list[ExplainedLayer]] = {}
    block_time: dict[str, float] = {}
    for layer in prediction.layers:
        record = records[layer.name]
        bounds[layer.bound] = bounds.get(layer.bound, 0.0) + layer.time_s / total
        block_time[record.block] = block_time.get(record.block, 0.0) + layer.time_s
        explained = ExplainedLayer(
            layer.name,
            record.block,
            layer.kind,
            layer.time_s,
            layer.time_s / total,
            layer.bound,
            record.macs,
            record.cio,
            record.moc,
            reach(layer.kind, record.macs, layer.bytes, ranges),
        )
        blocks.setdefault(record.block, [])
        if explained.share >= min_share:
            blocks[record.block].append(explained)
    shown = sum(layer.share for layers in blocks.values() for layer in layers)
    return Explanation(
        prediction.model,
        prediction.input,
        prediction.device,
        prediction.latency_s,
        min_share,
        shown,
        dict(sorted(bounds.items(), key=lambda kv: -kv[1])),
        tuple(
            ExplainedBlock(
                block,
                block_time[block],
                block_time[block] / total,
                tuple(sorted(layers, key=lambda x: -x.time_s)),
            )
            for block, layers in blocks.items()
        ),
    )
