"""Measuring: latency (CPU clocks, CUDA events), DRAM counters (ncu, nvprof, perf), roofline.

``profile_model`` (``profiler.run``) ties them together into a run document.
"""
