"""`analyze()`: one entry point from a model name, a definition or an nn.Module to numbers.

The name and definition paths are analytic and never import torch; an nn.Module is traced on
meta tensors (torch is imported only then).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.errors import ShapeError, UsageError
from hardnet_analysis.families.registry import NetworkDef, build_graph
from hardnet_analysis.graph.onnx_graph import OnnxSpec, build_onnx_graph
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.metrics.handlers import Handler
from hardnet_analysis.resolve import ModuleSpec, input_shape_of, resolve
from hardnet_analysis.shapes import InputShape, input_shape_of_inputs
from hardnet_analysis.units import parse_input_size

if TYPE_CHECKING:
    from torch import nn


def _is_module(target: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(target, torch.nn.Module)


def _whole_inputs(
    inputs: object, input_size: object, batch: int, in_channels: int | None
) -> InputShape:
    """`analyze`'s ``inputs=`` as an `InputShape`; a UsageError where an image size, batch or
    channel count is given beside it (the shapes hold all three)."""
    if input_size is not None or batch != 1 or in_channels is not None:
        raise UsageError("inputs= holds the whole input: pass no input_size, batch or in_channels")
    return input_shape_of_inputs(inputs)


def check_detections(detections: object) -> None:
    """A UsageError unless `detections` is None or a whole number >= 1 (``--detections 100``):
    a selection that keeps nothing would leave the heads after it uncounted."""
    if detections is None:
        return
    if isinstance(detections, bool) or not isinstance(detections, int) or detections < 1:
        raise UsageError(
            f"detections must be a whole number >= 1 (the candidates every data-dependent "
            f"selection keeps), got {detections!r}"
        )


def analyze(
    target: str | Path | NetworkDef | nn.Module,
    input_size: InputShape | int | str | tuple[int, int] | None = None,
    batch: int = 1,
    dtype: str = "fp32",
    in_channels: int | None = None,
    kwargs: dict[str, Any] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    name: str | None = None,
    inputs: object = None,
    detections: int | None = None,
) -> Analysis:
    """Params, MACs, CIO, MoC and bytes of `target` per layer, per block and in total.

    `target` is a registered name (``"hardnet68"``), a torchvision classifier name
    (``"resnet50"``, traced), ``package.module:callable`` or ``file.py:callable`` returning an
    ``nn.Module`` (called with `kwargs`, traced), a definition file (``*.json``), a definition, a
    `ModuleSpec`, an ``nn.Module``, or an ONNX model file (``*.onnx``, read without torch; a
    dynamic dim of its input needs `input_size`); `input_size` is 224, ``"320x480"`` or (H, W),
    None for the model's native size (its definition's ``input_size``: 224, 32 for the CIFAR models,
    1024x2048 for fchardnet70; 224 for modules), or a whole `InputShape` (its batch and channels
    too: `batch` and `in_channels` are then left out).
    `in_channels` None takes the definition's own (3 for modules). Counts are at `batch`
    (params are not). `handlers` extends or overrides the cost handler table for this call.
    `name` names a traced graph (default: `target` where it is a string, else the module's
    class). ``analyze("hardnet68").totals.cio`` is 11_468_940 elements (paper: 11.5 M).
    `inputs` gives a module's whole inputs instead of `input_size`: shapes, ``"1x128:int64"``
    strings or tensors (their shape and dtype), one or a list passed by position, or a dict of
    keyword inputs (`hardnet_analysis.shapes.input_shape_of_inputs`):
    ``analyze(r3d_18(), inputs=(1, 3, 16, 112, 112))``.
    A module whose forward needs values (a detector's ``nonzero`` and NMS) is traced again on
    real tensors on cpu (`hardnet_analysis.graph.traced.trace_module`): seeded random inputs,
    the module's own weights (a name or callable is built again on cpu, with its own init).
    `detections` declares how many candidates every data-dependent selection keeps instead
    (``detections=100``); the layers that depend on it carry ``depends_on``.
    """
    check_detections(detections)
    if inputs is not None:
        input_size = _whole_inputs(inputs, input_size, batch, in_channels)
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    defn: Any = resolve(target, kwargs=kwargs)
    if isinstance(input_size, InputShape):
        if batch != 1 or in_channels is not None:
            raise UsageError("an InputShape holds the batch and the channels: pass neither")
        shape = input_size
    else:
        size = None
        if input_size is not None:
            size = input_size if isinstance(input_size, tuple) else parse_input_size(input_size)
        shape = input_shape_of(defn, size, batch, in_channels)
    real = None
    if isinstance(defn, ModuleSpec):
        real = defn.build  # with real weights, where the forward needs values
        defn = defn.build(device="meta")
    if isinstance(defn, OnnxSpec):
        return measure_graph(build_onnx_graph(defn, shape), dtype, "onnx", handlers)
    try:
        if _is_module(defn):
            # Imported here: tracing needs torch, names and definitions are analysed without it.
            from hardnet_analysis.graph.traced import trace_module

            if name is None:
                name = target if isinstance(target, str) else type(defn).__name__
            graph = trace_module(defn, shape, name, real=real, detections=detections)
            return measure_graph(graph, dtype, "traced", handlers)
        return measure_graph(build_graph(defn, shape), dtype, "analytic", handlers)
    except ShapeError as exc:
        what = getattr(defn, "name", type(defn).__name__)
        height, width = shape.hw
        raise ShapeError(f"input {height}x{width} is too small for {what}: {exc}") from None
