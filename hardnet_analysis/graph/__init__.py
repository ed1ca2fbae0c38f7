"""The graph layer: the operation DAG (IR), the analytic builder and the module tracer.

Each family's analytic graph lives in its folder (``hardnet_analysis.families``).
"""

from hardnet_analysis.graph.ir import GraphBuilder, nodes_in_order

__all__ = ["GraphBuilder", "nodes_in_order"]
