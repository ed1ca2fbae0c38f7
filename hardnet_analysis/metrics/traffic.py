"""The traffic view of an analysis: bytes each op reads and writes at a dtype, unfused and fused.

No engine of its own: the numbers are the `LayerRecord` byte fields that the one pass of
``metrics.analysis`` computes from the handlers' `Cost` records (see that module for the two
views). CIO itself stays as the paper defines it.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from hardnet_analysis.metrics.analysis import Analysis, measure_graph


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
