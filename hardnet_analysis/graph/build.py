"""Analytic graphs from definitions: one builder per definition type (no torch)."""

from __future__ import annotations

from functools import singledispatch

import networkx as nx

from hardnet_analysis.definitions.condensenet import CondenseNetDef
from hardnet_analysis.definitions.densenet import DenseNetDef
from hardnet_analysis.definitions.hardnet import HarDNetDef
from hardnet_analysis.definitions.registry import NetworkDef
from hardnet_analysis.definitions.resnet import ResNetDef
from hardnet_analysis.graph.condensenet import build_condensenet_graph
from hardnet_analysis.graph.densenet import build_densenet_graph
from hardnet_analysis.graph.hardnet import build_hardnet_graph
from hardnet_analysis.graph.resnet import build_resnet_graph


@singledispatch
def build_graph(defn: NetworkDef, input_shape: tuple[int, int, int, int]) -> nx.DiGraph:
    """The operation DAG of `defn` at NCHW `input_shape`; each family registers its builder."""
    raise TypeError(f"no analytic graph builder for {type(defn).__name__}")


build_graph.register(HarDNetDef, build_hardnet_graph)
build_graph.register(DenseNetDef, build_densenet_graph)
build_graph.register(CondenseNetDef, build_condensenet_graph)
build_graph.register(ResNetDef, build_resnet_graph)
