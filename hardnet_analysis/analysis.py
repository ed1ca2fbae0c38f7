"""`analyze()`: one entry point from a model name, a definition or an nn.Module to numbers.

The name and definition paths are analytic and never import torch; an nn.Module is traced on
meta tensors (torch is imported only then).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from hardnet_analysis.definitions.registry import NetworkDef
from hardnet_analysis.errors import ShapeError, UsageError
from hardnet_analysis.graph.build import build_graph
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
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
    in_channels: int = 3,
    kwargs: dict[str, Any] | None = None,
) -> Analysis:
    """Params, MACs, CIO and MoC of `target` per layer, per block and in total.

    `target` is a registered name (``"hardnet68"``), a torchvision classifier name
    (``"resnet50"``, traced), ``package.module:callable`` or ``file.py:callable`` returning an
    ``nn.Module`` (called with `kwargs`, traced), a definition file (``*.json``), a definition or
    an ``nn.Module``; `input_size` is 224, ``"320x480"`` or (H, W), None for the model's native
    size (224, or 32 for the registered CIFAR models). Counts are at `batch` (params are not).
    ``analyze("hardnet68").totals.cio`` is 11_468_940 elements (paper: 11.5 M).
    """
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    if input_size is None:
        input_size = native_input_size(target)
    hw = input_size if isinstance(input_size, tuple) else parse_input_size(input_size)
    shape = (batch, in_channels, *hw)
    defn: Any = resolve(target, kwargs=kwargs)
    if isinstance(defn, ModuleSpec):
        defn = defn.build(device="meta")
    try:
        if _is_module(defn):
            from hardnet_analysis.graph.traced import trace_module

            name = target if isinstance(target, str) else type(defn).__name__
            graph = trace_module(defn, shape, name)
            return measure_graph(graph, dtype, source="traced")
        return measure_graph(build_graph(defn, shape), dtype, source="analytic")
    except ShapeError as exc:
        name = getattr(defn, "name", type(defn).__name__)
        raise ShapeError(f"input {hw[0]}x{hw[1]} is too small for {name}: {exc}") from None
