"""Is the machine quiet enough to time? A 60 ms probe taken before profiling and calibrating.

On a shared machine other processes take cores: a 2-thread forward then runs several times
slower than a quiet one (seen here: 2.3-54x with the other core partly busy), and even one
thread's CPU time moves, through the shared caches and memory bus. The probe times parallel
matmuls and a memory copy at the run's thread count with wall and process CPU time. Two
checks follow:

- **busy now**: `LoadProbe.cpu_share` below `BUSY_SHARE` means the process's threads did not
  run all the time (on this machine, quiet: 0.99-1.0 at 1 and 2 threads; with one `yes` on the
  other core, 2 threads: 0.51 and the matmul 9x slower);
- **another speed than before**: `drift` compares two probes (a calibration's, stored in its
  device model, and the runs scored with it; or a calibration's start and end): more than
  `DRIFT` apart, the machine ran at another speed, and a prediction or fit mixing the two means
  less than its figures say.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from hardnet_analysis.profiler.document import LoadProbe

#: Below this CPU share the machine counts as busy.
BUSY_SHARE = 0.8
#: Probes whose matmul or copy times differ by more than this share are at another speed.
DRIFT = 0.10


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


def busy_warning(probe: LoadProbe) -> str | None:
    """The warning for a busy machine, or None when it is quiet."""
    if probe.cpu_share >= BUSY_SHARE:
        return None
    return (
        f"the machine is busy: at {probe.threads} threads this process got "
        f"{probe.cpu_share:.0%} of its cores' time (other processes use them); timings taken "
        "now mean little: measure on a quiet machine"
    )


def drift(reference: LoadProbe, now: LoadProbe) -> float:
    """How much slower (+) or faster (-) `now` ran than `reference`: the larger relative
    change of the matmul and copy times. Matmul 1.0 -> 1.3 ms, copy unchanged: +0.3."""
    changes = [now.matmul_s / reference.matmul_s - 1, now.copy_s / reference.copy_s - 1]
    return max(changes, key=abs)


def drift_warning(reference: LoadProbe, probes: Sequence[LoadProbe], what: str) -> str | None:
    """A warning when the median drift of `probes` from `reference` exceeds `DRIFT` (probes at
    another thread count are not comparable and left out); `what` names the two sides, e.g.
    ``"the runs ran {} than the calibration"``."""
    same = [p for p in probes if p.threads == reference.threads]
    if not same:
        return None
    change = statistics.median(drift(reference, p) for p in same)
    if abs(change) <= DRIFT:
        return None
    return what.format(f"{abs(change):.0%} {'slower' if change > 0 else 'faster'}")
