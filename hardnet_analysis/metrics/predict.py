"""Predicted latency of a graph on a calibrated device: per layer, the device model's time for
the layer's kind at its work (FLOPs, or window taps for pooling; a conv's channels padded to the
kind's block), cache-aware DRAM bytes and unfused bytes, then the context fit (``scale x`` that
``+ op_s``: how ops run inside a forward); the model's latency is the sum over layers (ops run
one after another, as in eager PyTorch).

A device model calibrated in ONNX Runtime (``runtime == "onnxruntime"``) is read per kernel
instead: the graph is grouped as ORT's CPU fusions run it (``metrics.fusion``), and a group of
several nodes (a conv with its folded BN, residual add and activation) is one op of its first
node's kind and work, moving the group's bytes (``metrics.traffic.grouped_traffic``: what
enters and leaves the kernel), of them from DRAM the share its first node's bytes take from
DRAM unfused (the bytes a BN or an activation reads of the conv's output are not moved at all
in the kernel, so their DRAM estimate is not the kernel's). The layer is named after that
first node.

Nothing runs the model: the numbers come from the one engine's records (``metrics.analysis``)
and their cache-aware view (``metrics.cache``) at the device model's cache size. HarDNet-68 at
224 on a device whose conv kinds attain 50 GFLOP/s and whose overhead dominates nothing: about
2 * 4.25e9 / 5e10 = 0.17 s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.analysis import Analysis, dtype_bytes
from hardnet_analysis.metrics.cache import cache_traffic
from hardnet_analysis.metrics.conv_paths import LOWERED, ConvPaths, im2col_bytes
from hardnet_analysis.metrics.fusion import runtime_groups
from hardnet_analysis.metrics.op_kinds import op_channels, op_groups, op_kind, op_work
from hardnet_analysis.metrics.traffic import grouped_traffic

PARTS = ("whole", "first", "middle", "last")


@dataclass(frozen=True)
class LayerFeatures:
    """What the device model reads of one node: its kind, MACs, units of work (`op_work`),
    cache-aware DRAM bytes and unfused bytes read + written."""

    name: str
    op: str
    kind: str
    macs: int
    work: int
    dram_bytes: int
    bytes: int
    #: (input per group, output) channels of a conv, for `KindModel.channel_block`.
    channels: tuple[int, int] = (0, 0)
    #: A conv's groups, for `KindModel.overhead_per_group` (1 for any other node).
    groups: int = 1


def layer_features(
    analysis: Analysis,
    cache_bytes: int,
    *,
    warm: bool = False,
    flush_outputs: bool = True,
    handed_over: bool = False,
) -> list[LayerFeatures]:
    """The features of every node but the graph boundaries, in execution order (`warm`,
    `flush_outputs` and `handed_over` as in `metrics.cache.cache_traffic`)."""
    flow = cache_traffic(
        analysis, cache_bytes, warm=warm, flush_outputs=flush_outputs, handed_over=handed_over
    )
    out = []
    for record, est in zip(analysis.layers, flow.layers, strict=True):
        attrs = analysis.graph.nodes[record.name]
        kind = op_kind(attrs)
        if kind:
            out.append(
                LayerFeatures(
                    record.name,
                    record.op,
                    kind,
                    record.macs,
                    op_work(attrs, record.macs),
                    est.dram_bytes_est,
                    record.bytes,
                    op_channels(attrs),
                    op_groups(attrs),
                )
            )
    return out


@dataclass(frozen=True)
class LayerPrediction:
    """One node's predicted seconds and bound, with the features they come from."""

    name: str
    op: str
    kind: str
    macs: int
    bytes: int
    dram_bytes_est: int
    time_s: float
    bound: str


@dataclass(frozen=True)
class Prediction:
    """A model's predicted latency (s) on `device` at `input` (H, W) and `batch`, per layer."""

    model: str
    input: tuple[int, int]
    batch: int
    device: str
    cache_bytes: int
    latency_s: float
    layers: tuple[LayerPrediction, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "input", "batch", "latency_s", "layers": [...]}`` plus the device."""
        return {
            "model": self.model,
            "input": list(self.input),
            "batch": self.batch,
            "latency_s": self.latency_s,
            "device": self.device,
            "cache_bytes": self.cache_bytes,
            "layers": [asdict(layer) for layer in self.layers],
        }

    def by_name(self) -> dict[str, LayerPrediction]:
        return {layer.name: layer for layer in self.layers}


def predict_layers(features: list[LayerFeatures], device: DeviceModel) -> list[LayerPrediction]:
    """Each node's predicted time on `device`."""
    out = []
    for f in features:
        seconds, bound = device.op_time(f.kind, f.work, f.dram_bytes, f.bytes, f.channels, f.groups)
        out.append(
            LayerPrediction(f.name, f.op, f.kind, f.macs, f.bytes, f.dram_bytes, seconds, bound)
        )
    return out


def predict(analysis: Analysis, device: DeviceModel, *, part: str = "whole") -> Prediction:
    """The predicted latency of `analysis` on `device`, per layer and in total. `part` says
    which piece of a network the graph is, for the search's fragments: ``whole`` (default),
    ``first`` (its input comes from DRAM, its output is handed on), ``middle`` (its input was
    just written by the part before and is resident; its output is handed on) or ``last``
    (its input was handed over; its output is the network's): the parts' predictions sum to
    the whole network's."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    if analysis.dtype != device.dtype:
        raise UsageError(
            f"the device model was calibrated at {device.dtype}; analyse at that dtype "
            f"(got {analysis.dtype})"
        )
    features = layer_features(
        analysis,
        device.cache_bytes,
        flush_outputs=part in ("whole", "last"),
        handed_over=part in ("middle", "last"),
    )
    features = runtime_features(analysis, features, ConvPaths.of(device))
    layers = predict_layers(features, device)
    shape = analysis.input_shape
    hw = (shape[-2], shape[-1]) if len(shape) >= 4 else (shape[-1], 1)
    return Prediction(
        analysis.model,
        hw,
        shape[0] if shape else 1,
        f"{device.device} {device.machine.name} {device.threads} threads",
        device.cache_bytes,
        sum(layer.time_s for layer in layers),
        tuple(layers),
    )


def runtime_features(
    analysis: Analysis, features: list[LayerFeatures], paths: ConvPaths
) -> list[LayerFeatures]:
    """`features` as `paths`' runtime runs them: ONNX Runtime's fused kernels
    (`fused_features`), or PyTorch's ops one by one, each conv of the kind its kernel is
    (``conv_grouped_gemm`` for CondenseNet's 3x3 conv 32 -> 8 in 4 groups at block 8)."""
    if paths.runtime == "onnxruntime":
        return fused_features(analysis, features, paths)
    return [as_run(analysis, f, paths.kind(f.kind, analysis.graph.nodes[f.name])) for f in features]


def as_run(analysis: Analysis, f: LayerFeatures, kind: str) -> LayerFeatures:
    """`f` as a kernel of `kind` runs its node: a conv lowered to im2col and a GEMM (a kind of
    ``conv_paths.LOWERED``) also writes and reads its im2col matrix (``conv_paths.im2col_bytes``):
    CondenseNet's 3x3 conv 32 -> 8 in 4 groups at 112x112 moves 2,009,344 bytes as a blocked
    conv, 30,910,720 so."""
    if kind not in LOWERED:
        return replace(f, kind=kind)
    attrs = analysis.graph.nodes[f.name]
    extra = 2 * im2col_bytes(attrs, dtype_bytes(analysis.dtype))
    return replace(f, kind=kind, bytes=f.bytes + extra)


def fused_features(
    analysis: Analysis, features: list[LayerFeatures], paths: ConvPaths
) -> list[LayerFeatures]:
    """`features` merged per kernel of ONNX Runtime (`runtime_groups`): a group of several
    nodes is one row of its first node's kind, work and channels, with the group's MACs, the
    bytes its kernel moves and, of them, as many from DRAM as the first node's share unfused.
    ResNet-18's first conv + BN + ReLU at 224 (fp32): the conv moves 3,851,008 bytes
    unfused, the three nodes 16,697,088, the kernel 3,852,032 (input, weights, BN's four
    vectors, output), of which 639,914 from DRAM where the conv alone takes 639,744."""
    return merged_features(analysis, features, runtime_groups(analysis), paths)


def merged_features(
    analysis: Analysis,
    features: list[LayerFeatures],
    groups: dict[str, list[str]],
    paths: ConvPaths,
) -> list[LayerFeatures]:
    """`features` merged per group of `groups` (name -> nodes), as `fused_features` says, each
    conv of the kind ORT runs it as (`ConvPaths.kind`); features of
    nodes in no group are dropped."""
    by_name = {f.name: f for f in features}
    kernels = {g.name: g.bytes for g in grouped_traffic(analysis, groups)}
    out = []
    for name, nodes in groups.items():
        members = [by_name[n] for n in nodes if n in by_name]
        if not members:
            continue
        head = members[0]
        kind = paths.kind(head.kind, analysis.graph.nodes[head.name])
        run = as_run(analysis, head, kind)
        if len(members) == 1:
            out.append(run)
            continue
        dram = round(kernels[name] * head.dram_bytes / head.bytes) if head.bytes else 0
        nbytes = kernels[name] + run.bytes - head.bytes  # and an im2col matrix, if lowered
        macs = sum(m.macs for m in members)
        out.append(replace(run, macs=macs, dram_bytes=dram, bytes=nbytes))
    return out
