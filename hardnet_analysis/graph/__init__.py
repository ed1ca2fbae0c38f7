"""The graph layer: operation DAGs built analytically from definitions or traced from modules."""

from hardnet_analysis.graph.build import build_graph
from hardnet_analysis.graph.ir import GraphBuilder, nodes_in_order

__all__ = ["GraphBuilder", "build_graph", "nodes_in_order"]
