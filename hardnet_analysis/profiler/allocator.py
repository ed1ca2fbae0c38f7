"""The C allocator during timings on a CPU: one state, freed memory kept, page faults counted.

PyTorch's CPU tensors come from glibc's malloc. With its defaults a block above the mmap
threshold (128 KiB, raised up to 32 MiB as such blocks are freed) is mapped afresh at each
allocation and unmapped when freed, and free memory at the top of the heap beyond the trim
threshold goes back to the system. A tensor placed there touches fresh pages, and the first
touch of each 4 KiB page is a minor page fault, in which the kernel maps and zeroes it. On a
2-core AMD EPYC VM (KVM) a fault took about 2 us:

- FC-HarDNet-70's final bilinear upsampling to 19 x 512 x 1024 (40 MB) took 28 ms a call,
  with 9,732 faults; the same call as nearest-neighbour, with the same faults, took 20 ms;
- MobileNetV2 at 320 ran in 37.5-46.7 ms with 4,768-7,168 faults a forward (the count
  changed from process to process), and in 26.7 ms with none.

The faults depend on what the allocator did before, not on the network, so no model of shapes
predicts them and two processes measure the same model tens of percent apart. `kept_memory`
therefore puts malloc in one state for each timing: it hands the heap's free memory back
(``malloc_trim``: a heap fragmented by earlier models hands out cache-cold blocks), keeps all
memory freed during the timing (``mallopt``: no mmap for large blocks, no trimming) and
touches a reserve up front; afterwards glibc's default limits come back. The timed forwards
reuse pages already faulted in, as under an allocator that caches (jemalloc, tcmalloc, ONNX
Runtime's arena) or under glibc with ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1`` in the
environment. `FaultCount` counts the faults of each forward, so a run shows where that did not
hold (another allocator preloaded, or a stray growth of the heap).
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

try:  # Unix only; elsewhere no faults are counted
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

#: glibc's ``mallopt`` parameters (malloc.h): the heap's top is never trimmed at -1, and large
#: blocks are never mapped on their own at 0; and their defaults (mallopt(3)).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The process's own C library symbols where they include glibc's malloc tuning."""
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim, libc.mallopt  # noqa: B018 (looked up to fail here, not later)
    except (OSError, AttributeError):
        return None
    return libc


def malloc_trim() -> bool:
    """Hand the heap's free memory back to the system (glibc); False where there is no glibc."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def keep_freed_memory() -> bool:
    """From now on in this process (until `release_freed_memory`), glibc's malloc keeps the
    memory freed to it: large blocks come from the heap, not from mmaps of their own, and the
    heap's top is never trimmed. True where glibc took both settings; False elsewhere."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, -1))


def release_freed_memory() -> None:
    """glibc's malloc back to its default limits (65,536 mmaps, trimming above 128 KiB; its
    thresholds stay fixed from now on, no longer raised as blocks are freed) and its free
    memory handed back (``malloc_trim``)."""
    libc = _libc()
    if libc is None:
        return
    libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
    libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)


#: The most bytes `hda profile` reserves for a model's activations (twice all of them: they
#: bound what a forward holds live, and the heap's free blocks get split by small requests;
#: FC-HarDNet-70's at 512x1024 are 452 MB).
RESERVE_LIMIT = 2**30


@contextmanager
def kept_memory(reserve: int = 0) -> Iterator[bool]:
    """glibc's malloc in one state for a timing on CPU, whatever ran before: its free memory
    handed back (a process that has run other models hands out fragmented, cache-cold blocks:
    the same MobileNetV2 measured 16.4 ms after six other networks against 15.2 ms alone,
    15.4 ms with the trim), then all memory freed inside kept (`keep_freed_memory`), and
    `reserve` bytes touched and freed at the heap's top, so that blocks up to that much in all
    are served from pages already faulted in. On leaving, the limits go back and the free
    memory is handed back (`release_freed_memory`): a training run or a peak-memory reading
    later in the process sees memory freed as usual. Yields whether glibc took the settings.
    `hda calibrate` (around its benchmarks and networks, with a reserve for its pools) and
    `hda profile` (around each model's timing, with a reserve for its activations) time in it."""
    gc.collect()
    malloc_trim()
    kept = keep_freed_memory()
    try:
        if kept and reserve > 0:
            block = torch.empty(reserve, dtype=torch.uint8)
            block.fill_(0)
            del block
        yield kept
    finally:
        if kept:
            release_freed_memory()


def minor_faults() -> int:
    """Minor page faults of this process so far (``getrusage``; 0 where there is none)."""
    if resource is None:  # pragma: no cover
        return 0
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


@dataclass
class FaultCount:
    """`forward`, counting the minor page faults of each call in `calls` (process-wide: an
    intra-op thread's faults count too)."""

    forward: Callable[[], object]
    calls: list[int] = field(default_factory=list)

    def __call__(self) -> object:
        before = minor_faults()
        out = self.forward()
        self.calls.append(minor_faults() - before)
        return out

    def per_call(self, skip: int, count: int | None = None) -> float | None:
        """The mean faults of `count` calls (all: None) after the first `skip` (the warm-up);
        None if there are none."""
        counted = self.calls[skip:] if count is None else self.calls[skip : skip + count]
        return sum(counted) / len(counted) if counted else None


#: Faults per forward (1 MiB of 4 KiB pages) below which a run's faults are the interpreter's
#: and the profiler's own small allocations, not tensors placed on fresh pages.
FAULT_WARNING = 256


def fault_warning(per_forward: float, allocator: str = "kept") -> str | None:
    """One line on a run whose timed forwards faulted `per_forward` pages each after the
    warm-up, timed in the `allocator` state (`documents.profile_run.ALLOCATORS`; None below
    `FAULT_WARNING`)."""
    if per_forward < FAULT_WARNING:
        return None
    line = (
        f"{per_forward:,.0f} page faults per forward after the warm-up: tensors were placed on "
        "fresh pages (about 2 us each on a VM), a cost of the allocator, not of the network, "
        "that no prediction from shapes includes; "
    )
    if allocator == "default":
        return line + (
            "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=-1 in the environment, jemalloc or "
            "tcmalloc avoid them, as --allocator kept (the default) does"
        )
    return line + "hda keeps glibc's freed memory, so another allocator may be preloaded"
