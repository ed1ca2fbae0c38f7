"""Metrics on a graph: per-layer records, per-block and per-op views, totals.

Computing lives here; printing lives in ``hardnet_analysis.present``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx

from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.ir import Shape, nodes_in_order
from hardnet_analysis.metrics.handlers import HANDLERS, Cost

DTYPE_BYTES: dict[str, int] = {"fp64": 8, "fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def dtype_bytes(dtype: str) -> int:
    """Bytes per element of `dtype` (fp32 -> 4)."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise UsageError(f"unknown dtype {dtype!r}; accepted: {', '.join(DTYPE_BYTES)}") from None


@dataclass(frozen=True)
class LayerRecord:
    """One node's numbers. `params` is counted at a parameter's first use only (shared modules);
    `act_bytes` is the size of the tensor the op writes at the analysis dtype."""

    name: str
    op: str
    block: str
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: int
    macs: int
    cio: int
    act_bytes: int

    @property
    def moc(self) -> float | None:
        """MACs over CIO (computational density); None for layers without CIO."""
        return self.macs / self.cio if self.cio else None


@dataclass(frozen=True)
class Totals:
    """Sums over a set of layers.

    `macs` counts convolutions and linear layers, `conv_macs` convolutions only; `cio` is in
    elements (HarDNet-68 at 224, batch 1: about 11.5 M); `moc` is conv_macs / cio and `min_moc`
    the smallest MoC of any convolution (None without convolutions).
    """

    params: int
    macs: int
    cio: int
    conv_macs: int
    act_bytes: int
    conv_layers: int
    min_moc: float | None

    @property
    def moc(self) -> float | None:
        return self.conv_macs / self.cio if self.cio else None

    @classmethod
    def of(cls, records: Iterable[LayerRecord]) -> Totals:
        rows = list(records)
        convs = [r for r in rows if r.op == "conv"]
        mocs = [m for r in convs if (m := r.moc) is not None]
        return cls(
            params=sum(r.params for r in rows),
            macs=sum(r.macs for r in rows),
            cio=sum(r.cio for r in rows),
            conv_macs=sum(r.macs for r in convs),
            act_bytes=sum(r.act_bytes for r in rows),
            conv_layers=len(convs),
            min_moc=min(mocs) if mocs else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "moc": self.moc}


@dataclass(frozen=True)
class Unhandled:
    """A node whose op has no cost handler: reported, not counted."""

    name: str
    op: str


@dataclass(frozen=True)
class GroupRecord:
    """Totals of one block (or one op type), with its name and layer count."""

    name: str
    layers: int
    totals: Totals


@dataclass
class Analysis:
    """The result of `analyze()`: per-layer records and their views.

    `input_shape` is NCHW with the batch; `source` says how the graph was obtained
    (``analytic`` from a definition, ``traced`` from an nn.Module).
    """

    model: str
    input_shape: Shape
    dtype: str
    source: str
    layers: tuple[LayerRecord, ...]
    unhandled: tuple[Unhandled, ...]
    graph: nx.DiGraph = field(repr=False)

    @cached_property
    def totals(self) -> Totals:
        return Totals.of(self.layers)

    @property
    def coverage(self) -> float:
        """The fraction of op nodes (inputs and outputs excluded) that have a cost handler:
        1.0 when every op was counted; ``unhandled`` lists the others."""
        ops = sum(1 for r in self.layers if r.op not in ("input", "output"))
        return 1.0 - len(self.unhandled) / ops if ops else 1.0

    @property
    def unused_params(self) -> dict[str, int]:
        """Parameters of a traced module that its forward never used (name -> elements), such as
        GoogLeNet's auxiliary classifiers in eval mode; they are not in ``totals.params``."""
        unused: dict[str, int] = self.graph.graph.get("unused_params", {})
        return unused

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].out_shape

    def _grouped(self, key: str) -> list[GroupRecord]:
        groups: dict[str, list[LayerRecord]] = {}
        for record in self.layers:
            groups.setdefault(getattr(record, key), []).append(record)
        return [GroupRecord(name, len(rows), Totals.of(rows)) for name, rows in groups.items()]

    def by_block(self) -> list[GroupRecord]:
        """Totals per block, in execution order (blocks are the nodes' ``block`` labels)."""
        return self._grouped("block")

    def by_op(self) -> list[GroupRecord]:
        """Totals per op type, in order of first appearance."""
        return self._grouped("op")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view: model, input, totals, blocks, layers, unhandled ops."""
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
            "source": self.source,
            "totals": self.totals.to_dict(),
            "blocks": [
                {"name": g.name, "layers": g.layers, **g.totals.to_dict()} for g in self.by_block()
            ],
            "layers": [{**asdict(r), "moc": r.moc} for r in self.layers],
            "unhandled": [asdict(u) for u in self.unhandled],
            "coverage": self.coverage,
            "unused_params": self.unused_params,
        }


def _new_params(attrs: dict[str, Any], cost: Cost, seen: set[str]) -> int:
    """Parameters a node adds at its first use. Traced nodes list the parameter tensors they
    read (``param_tensors``: name, elements) and count each tensor once; analytic nodes count
    their handler's figure once per ``param_key``."""
    tensors = attrs.get("param_tensors")
    if tensors is not None:
        fresh = {name: size for name, size in tensors if name not in seen}
        seen.update(fresh)
        return sum(fresh.values())
    key = attrs.get("param_key")
    if key is None:
        return cost.params
    if key in seen:
        return 0
    seen.add(key)
    return cost.params


def measure_graph(graph: nx.DiGraph, dtype: str = "fp32", source: str = "analytic") -> Analysis:
    """Apply the cost handlers to every node of `graph` (execution order) and collect records."""
    size = dtype_bytes(dtype)
    seen_params: set[str] = set()
    layers: list[LayerRecord] = []
    unhandled: list[Unhandled] = []
    for name, attrs in nodes_in_order(graph):
        handler = HANDLERS.get(attrs["op"])
        if handler is None:
            unhandled.append(Unhandled(name, attrs["op"]))
            cost = Cost()
        else:
            cost = handler(attrs)
        params = _new_params(attrs, cost, seen_params)
        layers.append(
            LayerRecord(
                name=name,
                op=attrs["op"],
                block=attrs["block"],
                in_shapes=attrs["in_shapes"],
                out_shape=attrs["out_shape"],
                params=params,
                macs=cost.macs,
                cio=cost.cio,
                act_bytes=cost.writes * size,
            )
        )
    input_shape = layers[0].out_shape if layers else ()
    return Analysis(
        graph.graph.get("model", "?"),
        input_shape,
        dtype,
        source,
        tuple(layers),
        tuple(unhandled),
        graph,
    )
