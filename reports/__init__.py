"""Reports: self-contained interactive HTML (plotly.js embedded, works offline).

``latency_report(runs)`` returns the HTML of: latency against DRAM traffic (models and layers,
hover names, the least-squares line and Pearson r per device, as ``hda correlate`` computes
them), the same against MACs beside it, and a per-layer view of one model (time, bytes, MoC,
roofline bound).
"""

from reports.latency import latency_report, write_report

__all__ = ["latency_report", "write_report"]
