"""ToyNet's analytic graph, node names as the torch module's paths."""

from __future__ import annotations

import networkx as nx

from hardnet_analysis.graph.analytic import AnalyticBuilder

from .definition import ToyNetDef


def build_toynet_graph(defn: ToyNetDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    b = AnalyticBuilder(defn.name)
    x = b.input(input_shape)
    for i, width in enumerate(defn.widths):
        b.block = f"stage{i + 1}"
        x = b.conv(x, f"features.{3 * i}", width, 3, 2, 1, bias=True)
        x = b.batchnorm(x, f"features.{3 * i + 1}")
        x = b.activation(x, f"features.{3 * i + 2}", "relu")
    b.block = "head"
    x = b.adaptive_pool(x, "pool", "avg")
    x = b.flatten(x, "flatten")
    b.output(b.linear(x, "classifier", defn.num_classes))
    return b.graph
