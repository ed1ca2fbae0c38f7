"""Is the machine quiet enough to time? A 60 ms probe taken before profiling and calibrating.

`probe_load` times parallel matmuls and a memory copy at the run's thread count with the run's
clock (wall time, or the thread's CPU time where the run is timed by it) and process CPU time,
into a `LoadProbe`; the checks that read probes (busy now, another speed than
before) sit beside that record, in `hardnet_analysis.documents.machine`, because the predictor's
score reads them from stored documents too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from hardnet_analysis.documents.machine import LoadProbe


def probe_load(threads: int, thread_time: bool = False) -> LoadProbe:
    """Time 40 matmuls (384 x 384, fp32) and 20 copies of 16 MiB on `threads` threads after a
    warm-up, each as the median of 5 groups (8 matmuls, 4 copies), so that a transient slows
    one group and not the figure; see `LoadProbe`. With `thread_time` (1 thread only) they are
    timed by the calling thread's CPU time, as a ``--thread-time`` run is: a wall-time probe
    sees the hypervisor's steal, which such a run does not. Torch's thread count is set back
    afterwards."""
    import torch

    if thread_time and threads != 1:
        raise ValueError(f"a thread-time probe runs on 1 thread, not {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _timed(threads, time.thread_time if thread_time else time.perf_counter)
    finally:
        torch.set_num_threads(before)


#: Matmuls and copies a probe times, in `GROUPS` groups each (the median group counts).
MATMULS, COPIES, GROUPS = 40, 20, 5


def _timed(threads: int, clock: Callable[[], float]) -> LoadProbe:
    import torch

    a, b = torch.rand(384, 384), torch.rand(384, 384)
    src = torch.ones(4 * 2**20)
    dst = torch.empty_like(src)
    for _ in range(3):
        a @ b
        dst.copy_(src)
    matmuls, copies = [], []
    wall, cpu = 0.0, 0.0
    for _ in range(GROUPS):
        start, used, timed = time.perf_counter(), time.process_time(), clock()
        for _ in range(MATMULS // GROUPS):
            a @ b
        matmuls.append((clock() - timed) / (MATMULS // GROUPS))
        wall, cpu = wall + time.perf_counter() - start, cpu + time.process_time() - used
    for _ in range(GROUPS):
        timed = clock()
        for _ in range(COPIES // GROUPS):
            dst.copy_(src)
        copies.append((clock() - timed) / (COPIES // GROUPS))
    share = min(1.0, cpu / (wall * threads))
    thread_time = clock is time.thread_time
    median = statistics.median
    return LoadProbe(threads, median(matmuls), median(copies), share, thread_time)
