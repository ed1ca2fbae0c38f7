"""Hardware DRAM counters: Nsight Compute (`ncu`), nvprof and perf, run in child processes.

Every figure carries its source (``ncu``, ``nvprof``, ``perf``; the traffic model is ``model``)
so measured and modeled bytes never mix silently.
"""

from hardnet_analysis.errors import HdaError


class CounterError(HdaError):
    """A counter tool that is missing, not permitted or produced nothing usable."""


__all__ = ["CounterError"]
