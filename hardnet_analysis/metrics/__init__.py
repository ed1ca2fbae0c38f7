"""Metrics on graphs: the per-op cost handlers and the Analysis result with its views."""

from hardnet_analysis.metrics.analysis import Analysis, LayerRecord, Totals, measure_graph
from hardnet_analysis.metrics.handlers import HANDLERS, Cost

__all__ = ["HANDLERS", "Analysis", "Cost", "LayerRecord", "Totals", "measure_graph"]
