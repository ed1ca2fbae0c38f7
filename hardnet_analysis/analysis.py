"""`analyze()`: one entry point from a model name, a definition or an nn.Module to numbers.

The name and definition paths are analytic and never import torch; an nn.Module is traced on
meta tensors (torch is imported only then).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hardnet_analysis.errors import ShapeError, UsageError
from hardnet_analysis.families.registry import NetworkDef, build_graph
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.metrics.handlers import Handler
from hardnet_analysis.resolve import ModuleSpec, native_input_size, resolve
from hardnet_analysis.units import parse_input_size

if TYPE_CHECKING:
    from torch import nn


def _is_module(target: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(target, torch.nn.Module)


def analyze(
    target: str | NetworkDef | nn.Module,
    input_size: int | str | tuple[int, int] | None = None,
    batch: int = 1,
    dtype: str = "fp32",
    in_channels: int | None = None,
    kwargs: dict[str, Any] | None = None,
    handlers: Mapping[str, Handler] | None = None,
) -> Analysis:
    """Params, MACs, CIO, MoC and bytes of `target` per layer, per block and in total.

    `target` is a registered name (``"hardnet68"``), a torchvision classifier name
    (``"resnet50"``, traced), ``package.module:callable`` or ``file.py:callable`` returning an
    ``nn.Module`` (called with `kwargs`, traced), a definition file (``*.json``), a definition or
    an ``nn.Module``; `input_size` is 224, ``"320x480"`` or (H, W), None for the model's native
    size (its definition's ``input_size``: 224, 32 for the CIFAR models, 1024x2048 for
    fchardnet70; 224 for modules).
    `in_channels` None takes the definition's own (3 for modules). Counts are at `batch`
    (params are not). `handlers` extends or overrides the cost handler table for this call.
    ``analyze("hardnet68").totals.cio`` is 11_468_940 elements (paper: 11.5 M).
    """
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    defn: Any = resolve(target, kwargs=kwargs)
    if input_size is None:
        input_size = native_input_size(defn)
    hw = input_size if isinstance(input_size, tuple) else parse_input_size(input_size)
    channels = in_channels if in_channels is not None else getattr(defn, "in_channels", 3)
    shape = (batch, channels, *hw)
    if isinstance(defn, ModuleSpec):
        defn = defn.build(device="meta")
    try:
        if _is_module(defn):
            # Imported here: tracing needs torch, names and definitions are analysed without it.
            from hardnet_analysis.graph.traced import trace_module

            name = target if isinstance(target, str) else type(defn).__name__
            graph = trace_module(defn, shape, name)
            return measure_graph(graph, dtype, "traced", handlers)
        return measure_graph(build_graph(defn, shape), dtype, "analytic", handlers)
    except ShapeError as exc:
        name = getattr(defn, "name", type(defn).__name__)
        raise ShapeError(f"input {hw[0]}x{hw[1]} is too small for {name}: {exc}") from None
