"""A per-node DRAM traffic model: bytes each op reads and writes at a dtype.

Two views of the same graph:

- **unfused**: every op runs as its own kernel, as eager PyTorch does. A conv reads its input and
  its weights and writes its output; BN reads its input and its four per-channel vectors and
  writes its output; an activation, a pooling or an add reads its inputs and writes its output;
  a concatenation reads every input and writes the concatenated tensor. Views, dropout (an
  identity at inference) and graph boundaries move nothing.
- **fused**: conv-BN-activation as one kernel (a BN or an activation whose producer is a conv,
  linear, add or an already fused op with no other consumer costs nothing: the producer writes
  its output once) and concatenation-free (producers write straight into the concatenated buffer
  and consumers read it in place, so a concat costs nothing). Reads of a concatenated input by
  its consumers still count whole, as in CIO.

The handler table ``TRAFFIC`` maps op -> function(node) -> `Moves` (elements); adding an op is
one entry. An op without an entry is listed in `Traffic.unhandled`, never counted as zero
silently. CIO itself stays as the paper defines it (``metrics.handlers``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from math import prod
from typing import Any

import networkx as nx

from hardnet_analysis.graph.ir import nodes_in_order
from hardnet_analysis.metrics.analysis import dtype_bytes

Node = Mapping[str, Any]


@dataclass(frozen=True)
class Moves:
    """Elements an op reads (activations and parameters) and writes."""

    reads: int = 0
    writes: int = 0


def _inputs(node: Node) -> int:
    return sum(prod(s) for s in node["in_shapes"])


def _out(node: Node) -> int:
    return prod(node["out_shape"])


def conv(node: Node) -> Moves:
    """Input + weights (+ bias) read, output written. HarDNet-68's first conv at 224 (3->32,
    3x3/2): reads 150_528 + 864 = 151_392 elements and writes 401_408."""
    kh, kw = node["kernel"]
    weights = node["out_channels"] * (node["in_channels"] // node["groups"]) * kh * kw
    bias = node["out_channels"] if node["bias"] else 0
    return Moves(_inputs(node) + weights + bias, _out(node))


def linear(node: Node) -> Moves:
    """Input + weight matrix (+ bias) read, output written."""
    weights = node["in_features"] * node["out_features"]
    bias = node["out_features"] if node["bias"] else 0
    return Moves(_inputs(node) + weights + bias, _out(node))


def batchnorm(node: Node) -> Moves:
    """Inference BN: input and 4 vectors of C (mean, var, weight, bias) read, output written."""
    return Moves(_inputs(node) + 4 * node["channels"], _out(node))


def streaming(node: Node) -> Moves:
    """Activations, pooling, concat and add: every input read once, the output written once."""
    return Moves(_inputs(node), _out(node))


def free(node: Node) -> Moves:
    """Graph boundaries, views (flatten) and identities at inference (dropout)."""
    return Moves()


TRAFFIC: dict[str, Callable[[Node], Moves]] = {
    "conv": conv,
    "linear": linear,
    "batchnorm": batchnorm,
    "activation": streaming,
    "max_pool": streaming,
    "avg_pool": streaming,
    "adaptive_avg_pool": streaming,
    "adaptive_max_pool": streaming,
    "concat": streaming,
    "add": streaming,
    "input": free,
    "output": free,
    "flatten": free,
    "dropout": free,
}

#: Ops whose output kernel can absorb a following BN or activation (an epilogue).
FUSING_PRODUCERS = frozenset({"conv", "linear", "add", "batchnorm", "activation"})
#: Ops that vanish into their producer's epilogue in the fused view.
EPILOGUE_OPS = frozenset({"batchnorm", "activation"})


@dataclass(frozen=True)
class NodeTraffic:
    """Bytes one node reads and writes, unfused and fused (fused <= unfused)."""

    name: str
    op: str
    reads: int
    writes: int
    fused_reads: int
    fused_writes: int

    @property
    def bytes(self) -> int:
        return self.reads + self.writes

    @property
    def fused_bytes(self) -> int:
        return self.fused_reads + self.fused_writes


@dataclass(frozen=True)
class Traffic:
    """The traffic model of a graph at `dtype`: per node, totals, unhandled ops."""

    dtype: str
    nodes: tuple[NodeTraffic, ...]
    unhandled: tuple[str, ...]

    @property
    def bytes(self) -> int:
        """Total unfused bytes read + written."""
        return sum(n.bytes for n in self.nodes)

    @property
    def fused_bytes(self) -> int:
        return sum(n.fused_bytes for n in self.nodes)

    def by_name(self) -> dict[str, NodeTraffic]:
        return {n.name: n for n in self.nodes}


def _fused_away(graph: nx.DiGraph, name: str, fused: set[str]) -> bool:
    """Whether node `name` disappears in the fused view (an epilogue or a concat)."""
    attrs = graph.nodes[name]
    if attrs["op"] == "concat":
        return True
    if attrs["op"] not in EPILOGUE_OPS:
        return False
    producers = list(graph.predecessors(name))
    if len(producers) != 1:
        return False
    producer = producers[0]
    p_op = graph.nodes[producer]["op"]
    single_consumer = graph.out_degree(producer) == 1
    return single_consumer and (p_op in FUSING_PRODUCERS - EPILOGUE_OPS or producer in fused)


def traffic(graph: nx.DiGraph, dtype: str = "fp32") -> Traffic:
    """Bytes read and written by every node of `graph` at `dtype`, unfused and fused.

    Conv-BN-ReLU6 on a 1x3x8x8 fp32 input with 4 output channels (3x3, pad 1, no bias): unfused
    the conv moves (192 + 108 + 256) * 4 = 2224 bytes, BN (256 + 16 + 256) * 4 = 2112 and the
    activation 512 * 4 = 2048; fused, BN and activation move nothing and the total is 2224.
    """
    size = dtype_bytes(dtype)
    fused: set[str] = set()
    rows: list[NodeTraffic] = []
    unhandled: list[str] = []
    for name, attrs in nodes_in_order(graph):
        handler = TRAFFIC.get(attrs["op"])
        if handler is None:
            unhandled.append(name)
            moves = Moves()
        else:
            moves = handler(attrs)
        gone = _fused_away(graph, name, fused)
        if gone:
            fused.add(name)
        reads, writes = moves.reads * size, moves.writes * size
        rows.append(
            NodeTraffic(
                name, attrs["op"], reads, writes, 0 if gone else reads, 0 if gone else writes
            )
        )
    return Traffic(dtype, tuple(rows), tuple(unhandled))
