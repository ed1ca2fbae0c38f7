"""Export an operation DAG as GraphML or node-link JSON, for networkx or a graph viewer.

GraphML attributes must be scalars, so tuples are encoded as strings: shapes as ``1x3x224x224``,
lists of shapes as ``1x64x56x56,1x32x56x56``, other tuples comma-separated (``3,3`` for a
kernel, ``conv1.weight:9408`` for a parameter tensor and its elements). Node-link JSON keeps the
same encoding so both files load to the same graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from hardnet_analysis.fileio import atomic_write_bytes, atomic_write_text

FORMATS = ("graphml", "json")


def _scalar(key: str, value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    if value is None:
        return ""
    if key in ("out_shape", "shape"):
        return "x".join(str(n) for n in value)
    if key == "in_shapes":
        return ",".join("x".join(str(n) for n in shape) for shape in value)
    if key == "param_tensors":
        return ",".join(f"{name}:{size}" for name, size in value)
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


def scalar_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """A copy of `graph` whose node, edge and graph attributes are all scalars."""
    out = nx.DiGraph()
    out.graph.update({k: _scalar(k, v) for k, v in graph.graph.items() if not isinstance(v, dict)})
    for node, attrs in graph.nodes(data=True):
        out.add_node(node, **{k: _scalar(k, v) for k, v in attrs.items()})
    for src, dst, attrs in graph.edges(data=True):
        out.add_edge(src, dst, **{k: _scalar(k, v) for k, v in attrs.items()})
    return out


def write_graph(graph: nx.DiGraph, path: str | Path, fmt: str = "graphml") -> Path:
    """Write `graph` to `path` atomically as ``graphml`` or node-link ``json``."""
    flat = scalar_graph(graph)
    if fmt == "graphml":
        data = "\n".join(nx.generate_graphml(flat)) + "\n"
        return atomic_write_bytes(path, data.encode("utf-8"))
    document = nx.node_link_data(flat, edges="edges")
    return atomic_write_text(path, json.dumps(document, indent=1) + "\n")
