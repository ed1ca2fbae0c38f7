"""Is the machine quiet enough to time? A 60 ms probe taken before profiling and calibrating.

`probe_load` times parallel matmuls and a memory copy at the run's thread count with wall and
process CPU time, into a `LoadProbe`; the checks that read probes (busy now, another speed than
before) sit beside that record, in `hardnet_analysis.documents.machine`, because the predictor's
score reads them from stored documents too.
"""

from __future__ import annotations

import time

from hardnet_analysis.documents.machine import LoadProbe


def probe_load(threads: int) -> LoadProbe:
    """Time 40 matmuls (384 x 384, fp32) and 20 copies of 16 MiB on `threads` threads after a
    warm-up; see `LoadProbe`. Torch's thread count is set back afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _timed(threads)
    finally:
        torch.set_num_threads(before)


def _timed(threads: int) -> LoadProbe:
    import torch

    a, b = torch.rand(384, 384), torch.rand(384, 384)
    src = torch.ones(4 * 2**20)
    dst = torch.empty_like(src)
    for _ in range(3):
        a @ b
        dst.copy_(src)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(40):
        a @ b
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    copy = time.perf_counter()
    for _ in range(20):
        dst.copy_(src)
    copy = time.perf_counter() - copy
    return LoadProbe(threads, wall / 40, copy / 20, min(1.0, cpu / (wall * threads)))
