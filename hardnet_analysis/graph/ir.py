"""The intermediate representation: a networkx DiGraph of operations, edges are tensors.

Node ids are unique names (module paths such as ``base.3.layers.2.conv``). Every node carries:

- ``op``: the operation (``input``, ``conv``, ``batchnorm``, ``activation``, ``max_pool``, ...);
- ``name``: the module path (equal to the node id), ``block``: the block/stage it belongs to;
- ``in_shapes`` (tuple of shapes) and ``out_shape``, NCHW including the batch;
- op attributes (``kernel``, ``stride``, ``padding``, ``dilation``, ``groups``, ``bias``, ...);
- ``param_key``: what identifies its parameters, so shared modules count them once.

Edges carry the tensor ``shape`` and the ``index`` of the input position it feeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

Shape = tuple[int, ...]

#: The block of the top-level forward's own ops (``torch.flatten`` in a ResNet's forward), as
#: the profiler names their time: never an empty name in a table.
TOP_BLOCK = "(model)"


class GraphBuilder:
    """Adds operation nodes to a DiGraph in execution order, with unique names."""

    def __init__(self, model: str) -> None:
        self.graph = nx.DiGraph(model=model)
        self._counts: dict[str, int] = {}

    def unique(self, name: str) -> str:
        """`name`, or `name:1`, `name:2`, ... if taken (a module called more than once)."""
        if name not in self.graph:
            return name
        n = self._counts.get(name, 0) + 1
        while f"{name}:{n}" in self.graph:
            n += 1
        self._counts[name] = n
        return f"{name}:{n}"

    def add(
        self,
        op: str,
        name: str,
        inputs: Sequence[str],
        out_shape: Shape,
        block: str = "",
        **attrs: Any,
    ) -> str:
        """Add an operation fed by the nodes `inputs` (in order) and return its node id."""
        node = self.unique(name)
        in_shapes = tuple(self.graph.nodes[i]["out_shape"] for i in inputs)
        self.graph.add_node(
            node,
            op=op,
            name=node,
            block=block,
            in_shapes=in_shapes,
            out_shape=tuple(out_shape),
            order=self.graph.number_of_nodes(),
            **attrs,
        )
        for index, src in enumerate(inputs):
            self.graph.add_edge(src, node, shape=self.graph.nodes[src]["out_shape"], index=index)
        return node

    def shape(self, node: str) -> Shape:
        """The output shape of `node`."""
        shape: Shape = self.graph.nodes[node]["out_shape"]
        return shape


def nodes_in_order(graph: nx.DiGraph) -> list[tuple[str, dict[str, Any]]]:
    """Nodes with their attributes in execution order."""
    return sorted(graph.nodes(data=True), key=lambda item: item[1]["order"])
