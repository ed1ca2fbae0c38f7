"""The traffic view of an analysis: bytes each op reads and writes at a dtype, unfused and fused.

No engine of its own: the numbers are the `LayerRecord` byte fields that the one pass of
``metrics.analysis`` computes from the handlers' `Cost` records (see that module for the two
views). CIO itself stays as the paper defines it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import prod

import networkx as nx

from hardnet_analysis.metrics.analysis import Analysis, dtype_bytes, measure_graph


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
    """The traffic model of a graph at `dtype`: per node, totals, and the nodes whose op has no
    handler (they move nothing here, and are listed rather than silently zero)."""

    dtype: str
    nodes: tuple[NodeTraffic, ...]
    unhandled: tuple[str, ...]

    @classmethod
    def of(cls, analysis: Analysis) -> Traffic:
        nodes = tuple(
            NodeTraffic(
                r.name, r.op, r.read_bytes, r.act_bytes, r.fused_read_bytes, r.fused_write_bytes
            )
            for r in analysis.layers
        )
        return cls(analysis.dtype, nodes, tuple(u.name for u in analysis.unhandled))

    @property
    def bytes(self) -> int:
        """Total unfused bytes read + written."""
        return sum(n.bytes for n in self.nodes)

    @property
    def fused_bytes(self) -> int:
        return sum(n.fused_bytes for n in self.nodes)

    def by_name(self) -> dict[str, NodeTraffic]:
        return {n.name: n for n in self.nodes}


def traffic(graph: nx.DiGraph, dtype: str = "fp32") -> Traffic:
    """Bytes read and written by every node of `graph` at `dtype`, unfused and fused.

    Conv-BN-ReLU6 on a 1x3x8x8 fp32 input with 4 output channels (3x3, pad 1, no bias): unfused
    the conv moves (192 + 108 + 256) * 4 = 2224 bytes, BN (256 + 16 + 256) * 4 = 2112 and the
    activation 512 * 4 = 2048; fused, BN and activation move nothing and the total is 2224.
    """
    return Traffic.of(measure_graph(graph, dtype))


@dataclass(frozen=True)
class GroupTraffic:
    """Bytes one kernel that runs several graph nodes at once (a runtime's fused Conv+BN+ReLU)
    reads and writes: the tensors that enter the group from outside it (each once), the weights
    its nodes read, and the tensors its nodes write that are read outside it or leave the graph.
    Views move nothing, as in the unfused view."""

    name: str
    nodes: tuple[str, ...]
    reads: int
    writes: int

    @property
    def bytes(self) -> int:
        return self.reads + self.writes


def grouped_traffic(analysis: Analysis, groups: Mapping[str, Sequence[str]]) -> list[GroupTraffic]:
    """The traffic of `analysis`'s graph run as `groups` (name -> its nodes), one kernel each.

    Conv 3->4 (3x3, pad 1, no bias) on 1x3x8x8 with BN and ReLU6 after it, fp32, as one group:
    reads the input 192 + weights 108 + BN's four vectors 16 elements, writes 256: 2288 bytes,
    where the three unfused nodes move 2224 + 2112 + 2048 bytes.
    """
    graph = analysis.graph
    size = dtype_bytes(analysis.dtype)
    records = {r.name: r for r in analysis.layers}
    out = []
    for name, nodes in groups.items():
        inside = set(nodes)
        entering: set[str] = set()
        weights = 0
        for node in nodes:
            record = records[node]
            if record.read_bytes == 0:
                continue  # a view or a boundary reads nothing
            activations = sum(prod(s) for s in record.in_shapes) * size
            weights += record.read_bytes - activations
            entering.update(p for p in graph.predecessors(node) if p not in inside)
        reads = weights + sum(prod(graph.nodes[p]["out_shape"]) for p in entering) * size
        leaving = [
            n
            for n in nodes
            if graph.out_degree(n) == 0 or any(s not in inside for s in graph.successors(n))
        ]
        writes = sum(records[n].act_bytes for n in leaving)
        out.append(GroupTraffic(name, tuple(nodes), reads, writes))
    return out


@dataclass(frozen=True)
class FusionRule:
    """How one op fares in hda's fused view and in a runtime's kernels: of its `nodes` that
    move bytes unfused, how many hda's fused view lets move nothing (`hda`), how many the
    runtime runs in one kernel with a producer of theirs (`runtime`), and how many both do."""

    op: str
    nodes: int
    hda: int
    runtime: int
    both: int


def fusion_rules(analysis: Analysis, groups: Mapping[str, Sequence[str]]) -> list[FusionRule]:
    """Per op (in order of first appearance), `FusionRule` of `analysis`'s graph against the
    runtime's `groups`: ResNet-18 in ONNX Runtime has its 8 residual adds run inside a conv
    kernel (``runtime``), which hda's fused view does not model (``hda`` 0), and its ReLUs fused
    in both."""
    graph = analysis.graph
    group_of = {n: g for g, nodes in groups.items() for n in nodes}
    counts: dict[str, list[int]] = {}
    for record in analysis.layers:
        if record.read_bytes + record.act_bytes == 0:
            continue
        hda = record.fused_read_bytes + record.fused_write_bytes == 0
        group = group_of.get(record.name)
        runtime = group is not None and any(
            group_of.get(p) == group for p in graph.predecessors(record.name)
        )
        row = counts.setdefault(record.op, [0, 0, 0, 0])
        row[0] += 1
        row[1] += hda
        row[2] += runtime
        row[3] += hda and runtime
    return [FusionRule(op, *row) for op, row in counts.items()]
