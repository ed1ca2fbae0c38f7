"""Is the machine quiet enough to time? A 60 ms probe taken before profiling and calibrating.

`probe_load` times parallel matmuls and a memory copy at the run's thread count with wall and
process CPU time, into a `LoadProbe`; the checks that read probes (busy now, another speed than
before) sit beside that record, in `hardnet_analysis.documents.machine`, because the predictor's
score reads them from stored documents too.
"""

from __future__ import annotations

import statistics
import time

from hardnet_analysis.documents.machine import LoadProbe


def probe_load(threads: int) -> LoadProbe:
    """Time 40 matmuls (384 x 384, fp32) and 20 copies of 16 MiB on `threads` threads after a
    warm-up, each as the median of 5 groups (8 matmuls, 4 copies), so that a transient slows
    one group and not the figure; see `LoadProbe`. Torch's thread count is set back
    afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _timed(threads)
    finally:
        torch.set_num_threads(before)


#: Matmuls and copies a probe times, in `GROUPS` groups each (the median group counts).
MATMULS, COPIES, GROUPS = 40, 20, 5


def _timed(threads: int) -> LoadProbe:
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
        start, used = time.perf_counter(), time.process_time()
        for _ in range(MATMULS // GROUPS):
            a @ b
        seconds = time.perf_counter() - start
        wall, cpu = wall + seconds, cpu + time.process_time() - used
        matmuls.append(seconds / (MATMULS // GROUPS))
    for _ in range(GROUPS):
        start = time.perf_counter()
        for _ in range(COPIES // GROUPS):
            dst.copy_(src)
        copies.append((time.perf_counter() - start) / (COPIES // GROUPS))
    share = min(1.0, cpu / (wall * threads))
    return LoadProbe(threads, statistics.median(matmuls), statistics.median(copies), share)
