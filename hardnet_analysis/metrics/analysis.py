"""Metrics on a graph: one pass of the cost handlers, per-layer records, and their views
(totals, per block, per op, traffic).

The pass applies ``metrics.handlers`` to every node in execution order and turns each `Cost`
into a `LayerRecord` that holds every quantity hda knows for that layer: parameters, MACs, CIO,
and bytes read and written at the analysis dtype in two views of the same graph:

- **unfused**: every op runs as its own kernel, as eager PyTorch does;
- **fused**: conv-BN-activation as one kernel (a BN or an activation whose single producer is a
  conv, linear, add or an already fused op with no other consumer moves nothing: the producer
  writes its output once) and concatenation-free (producers write straight into the
  concatenated buffer and consumers read it in place, so a concat moves nothing). Reads of a
  concatenated input by its consumers still count whole, as in CIO.

Computing lives here; printing lives in ``hardnet_analysis.present``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import networkx as nx

from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.ir import Shape, nodes_in_order
from hardnet_analysis.metrics.handlers import HANDLERS, Cost, Handler, handler_for, is_conv
from hardnet_analysis.metrics.op_table import unsupported_reason

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
    `macs` and `cio` are counts at the analysis batch; `act_bytes` is the size of the tensor the
    op writes and `read_bytes` what it reads (activations and weights), both at the analysis
    dtype, unfused; `fused_read_bytes`/`fused_write_bytes` are the same in the fused view (0 for
    an op that fuses into its producer). HarDNet-68's first conv at 224, fp32: 551_936 CIO,
    read 151_392 * 4 = 605_568 bytes, wrote 401_408 * 4 = 1_605_632 bytes. `depends_on` names
    the data-dependent op (``rpn.where``, a ``nonzero``) whose values decide this layer's sizes,
    "" for a layer whose counts the input's shape alone decides."""

    name: str
    op: str
    block: str
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: int
    macs: int
    cio: int
    act_bytes: int
    read_bytes: int = 0
    fused_read_bytes: int = 0
    fused_write_bytes: int = 0
    depends_on: str = ""

    @property
    def moc(self) -> float | None:
        """MACs over CIO (computational density); None for layers without CIO."""
        return self.macs / self.cio if self.cio else None

    @property
    def bytes(self) -> int:
        """Bytes read + written, unfused."""
        return self.read_bytes + self.act_bytes

    @property
    def fused_bytes(self) -> int:
        """Bytes read + written in the fused view (<= `bytes`)."""
        return self.fused_read_bytes + self.fused_write_bytes


@dataclass(frozen=True)
class Totals:
    """Sums over a set of layers.

    `macs` counts convolutions and linear layers, `conv_macs` convolutions only (transposed
    ones included); `cio` is in elements (HarDNet-68 at 224, batch 1: about 11.5 M); `moc` is
    conv_macs / cio and `min_moc` the smallest MoC of any convolution (None without
    convolutions). `act_bytes` are the bytes all ops write, `bytes` and `fused_bytes` the bytes
    they read and write in the unfused and fused views.
    """

    params: int
    macs: int
    cio: int
    conv_macs: int
    act_bytes: int
    conv_layers: int
    min_moc: float | None
    bytes: int = 0
    fused_bytes: int = 0

    @property
    def moc(self) -> float | None:
        return self.conv_macs / self.cio if self.cio else None

    @classmethod
    def of(cls, records: Iterable[LayerRecord]) -> Totals:
        rows = list(records)
        convs = [r for r in rows if is_conv(r.op)]
        mocs = [m for r in convs if (m := r.moc) is not None]
        return cls(
            params=sum(r.params for r in rows),
            macs=sum(r.macs for r in rows),
            cio=sum(r.cio for r in rows),
            conv_macs=sum(r.macs for r in convs),
            act_bytes=sum(r.act_bytes for r in rows),
            conv_layers=len(convs),
            min_moc=min(mocs) if mocs else None,
            bytes=sum(r.bytes for r in rows),
            fused_bytes=sum(r.fused_bytes for r in rows),
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "moc": self.moc}


@dataclass(frozen=True)
class Unhandled:
    """A node whose op has no cost handler: reported, not counted. `reason` says why when the op
    is deliberately unsupported (``metrics/op_table.py``); "" for an op hda does not know."""

    name: str
    op: str
    reason: str = ""


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
    def folded_bn(self) -> dict[str, str]:
        """Convs of an ONNX file that carry a BatchNorm its exporter folded in (conv layer -> the
        BN's module path, ``""`` where the file does not say): those BNs' weights and biases are
        not in ``totals.params``, and the convs gained a bias where they had none. Empty for
        anything else."""
        folded: dict[str, str] = self.graph.graph.get("folded_bn", {})
        return folded

    @property
    def real_run(self) -> dict[str, Any] | None:
        """What was run on real tensors where the forward needed values (`trace_module`:
        ``where``/``why`` the meta run broke, ``device``, ``seed``, ``weights``,
        ``detections``), None for a trace on meta tensors alone."""
        run: dict[str, Any] | None = self.graph.graph.get("real_run")
        return run

    @property
    def data_dependent(self) -> dict[str, str]:
        """The data-dependent sources of a real run: node (or ``path:item`` for a value read)
        -> what it is (``nonzero``, ``nms``, ``masked index``, ``value read (item)``)."""
        sources: dict[str, str] = self.graph.graph.get("data_dependent", {})
        return sources

    @property
    def dependent_layers(self) -> tuple[LayerRecord, ...]:
        """The layers whose sizes depend on input values (their `depends_on` is set)."""
        return tuple(r for r in self.layers if r.depends_on)

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
        """A JSON-ready view: model, input, totals, blocks, layers (each with its
        ``depends_on``), unhandled ops, and what ran on real tensors (``real_run``, None when
        nothing did; ``data_dependent``, its sources)."""
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
            "folded_bn": self.folded_bn,
            "real_run": self.real_run,
            "data_dependent": self.data_dependent,
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


#: Ops whose output kernel can absorb a following BN or activation (an epilogue).
FUSING_PRODUCERS = frozenset({"conv", "conv_transpose", "linear", "add"})
#: Ops that vanish into their producer's epilogue in the fused view.
EPILOGUE_OPS = frozenset({"batchnorm", "activation"})


def _fused_away(graph: nx.DiGraph, name: str, op: str, fused: set[str]) -> bool:
    """Whether node `name` moves nothing in the fused view: a concat, or an epilogue whose single
    producer (a fusing producer or an already fused op) has no other consumer."""
    if op == "concat":
        return True
    if op not in EPILOGUE_OPS:
        return False
    producers = list(graph.predecessors(name))
    if len(producers) != 1:
        return False
    producer = producers[0]
    fusable = graph.nodes[producer]["op"] in FUSING_PRODUCERS or producer in fused
    return fusable and graph.out_degree(producer) == 1


def _apply(handler: Handler, name: str, attrs: dict[str, Any]) -> Cost:
    """`handler` on one node; a handler that breaks is a one-line error naming node and op."""
    try:
        return handler(attrs)
    except Exception as exc:
        raise UsageError(
            f"cannot cost node {name!r} (op {attrs['op']}): {type(exc).__name__}: {exc}"
        ) from exc


def measure_graph(
    graph: nx.DiGraph,
    dtype: str = "fp32",
    source: str = "analytic",
    handlers: Mapping[str, Handler] | None = None,
) -> Analysis:
    """Apply the cost handlers to every node of `graph` (execution order) and collect records.

    `handlers` extends or overrides ``HANDLERS`` for this call (op -> handler), as fvcore's
    ``set_op_handle`` does.
    """
    table = {**HANDLERS, **(handlers or {})}
    size = dtype_bytes(dtype)
    seen_params: set[str] = set()
    fused: set[str] = set()
    layers: list[LayerRecord] = []
    unhandled: list[Unhandled] = []
    for name, attrs in nodes_in_order(graph):
        handler = handler_for(attrs["op"], table)
        if handler is None:
            # A node may carry its own reason (an ONNX op hda's table names unsupported).
            reason = attrs.get("reason") or unsupported_reason(attrs["op"]) or ""
            unhandled.append(Unhandled(name, attrs["op"], reason))
        cost = Cost() if handler is None else _apply(handler, name, attrs)
        gone = _fused_away(graph, name, attrs["op"], fused)
        if gone:
            fused.add(name)
        reads, writes = cost.reads * size, cost.writes * size
        layers.append(
            LayerRecord(
                name=name,
                op=attrs["op"],
                block=attrs["block"],
                in_shapes=attrs["in_shapes"],
                out_shape=attrs["out_shape"],
                params=_new_params(attrs, cost, seen_params),
                macs=cost.macs,
                cio=cost.cio,
                act_bytes=writes,
                read_bytes=reads,
                fused_read_bytes=0 if gone else reads,
                fused_write_bytes=0 if gone else writes,
                depends_on=attrs.get("depends_on", ""),
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
