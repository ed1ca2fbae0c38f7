"""The allocator's state during timings (`profiler.allocator`): freed memory kept, faults
counted."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from hardnet_analysis.documents.profile_run import ProfileRun, run_file_name, setup_fields
from hardnet_analysis.metrics.correlate import device_label
from hardnet_analysis.profiler.allocator import (
    FaultCount,
    _libc,
    kept_memory,
    minor_faults,
)

glibc = pytest.mark.skipif(
    not Path("/proc/self/statm").exists() or _libc() is None, reason="needs Linux glibc"
)
PAGE = mmap.PAGESIZE


def _faults_per_call(keep: bool, reserve: int = 0) -> list[int]:
    """Faults of each of 6 calls that allocate, fill and free a 40 MB tensor (above glibc's
    largest dynamic mmap threshold, 32 MiB), in a fresh process, in `kept_memory` (with
    `reserve`) when `keep`."""
    script = textwrap.dedent(
        f"""
        import contextlib
        import torch
        from hardnet_analysis.profiler.allocator import FaultCount, kept_memory
        count = FaultCount(lambda: torch.ones(10 * 2**20).sum())
        with kept_memory({reserve}) if {keep} else contextlib.nullcontext():
            for _ in range(6):
                count()
        print(*count.calls)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return [int(n) for n in out.stdout.split()]


@glibc
def test_default_glibc_faults_every_large_block_and_a_primed_one_keeps_it() -> None:
    pages = 10 * 2**20 * 4 // PAGE  # 9,766 pages of 4 KiB
    default = _faults_per_call(keep=False)
    assert all(calls >= 0.9 * pages for calls in default[1:])  # mapped afresh each call
    kept = _faults_per_call(keep=True)
    assert kept[0] >= 0.9 * pages  # the first call (or two) fault their pages in ...
    assert max(kept[2:]) < 0.01 * pages  # ... and the others reuse them
    reserved = _faults_per_call(keep=True, reserve=64 * 2**20)
    assert max(reserved) < 0.01 * pages  # pages faulted in by the reserve, before any call


def test_fault_count_counts_the_pages_a_call_touches_first() -> None:
    def touch() -> None:
        with mmap.mmap(-1, 256 * PAGE) as block:  # fresh anonymous pages, whatever malloc does
            for offset in range(0, 256 * PAGE, PAGE):
                block[offset] = 1

    count = FaultCount(touch)
    for _ in range(3):
        count()
    assert all(256 <= calls < 256 + 64 for calls in count.calls)
    assert count.per_call(skip=1) == pytest.approx(sum(count.calls[1:]) / 2)
    assert count.per_call(skip=1, count=1) == count.calls[1]
    assert FaultCount(touch).per_call(skip=0) is None
    assert minor_faults() > 0


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@glibc
def test_kept_memory_returns_a_fragmented_heap_and_frees_as_usual_after() -> None:
    # 1 MiB blocks come from the heap in the kept state; keep every tenth, free the rest: ~90 MiB
    # of free memory sits between live blocks, and only the trim hands it back to the system.
    with kept_memory():
        blocks = [torch.ones(2**18) for _ in range(100)]  # 1 MiB each, every page touched
    kept = blocks[::10]
    del blocks
    before = _rss()
    with kept_memory():
        assert before - _rss() > 40 * 2**20  # 58 MiB here; nothing without the trim
        big = torch.ones(50 * 2**18)  # 50 MiB, kept by the heap when freed inside ...
        del big
        inside = _rss()
    assert inside - _rss() > 40 * 2**20  # ... and handed back on leaving
    assert all(float(b[0]) == 1.0 for b in kept)


def test_run_names_and_labels_keep_a_default_malloc_run_apart() -> None:
    args = ("m", (224, 224), "cpu", "fp32", 1, False, 1, 5, None)
    assert run_file_name(*args) == "m-224x224-cpu-fp32-b1-t1-r5.json"
    assert run_file_name(*args, "kept") == "m-224x224-cpu-fp32-b1-t1-r5.json"
    assert run_file_name(*args, "default") == "m-224x224-cpu-fp32-b1-t1-r5-malloc.json"
    fields = ("cpu", "fp32", 1, False, 1, 5, None)
    assert "allocator" not in setup_fields(*fields, "kept")
    assert setup_fields(*fields, "default")["allocator"] == "default malloc"


#: A model whose forward writes 50 MB at once (3 x 2048 x 2048 fp32), above glibc's largest
#: dynamic mmap threshold (32 MiB): with glibc's defaults each forward maps and faults in its
#: 12,288 pages afresh.
BIG_OUTPUT = """
import torch
from torch.nn import functional as F

class Big(torch.nn.Module):
    def forward(self, x):
        return F.interpolate(x, size=(2048, 2048))

def make():
    return Big()
"""


@glibc
@pytest.mark.parametrize("allocator", ["default", "kept"])
def test_profile_counts_the_faults_of_the_allocator_it_was_asked_for(
    allocator: str, tmp_path: Path
) -> None:
    (tmp_path / "big.py").write_text(BIG_OUTPUT)
    fast = ["--repeat", "5", "--warmup", "2", "--threads", "1", "--counters", "none"]
    command = ["profile", "big.py:make", "--input", "64", "--allocator", allocator]
    done = subprocess.run(
        [sys.executable, "-m", "hardnet_analysis", *command, "--out", "runs", *fast],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (path,) = (tmp_path / "runs").glob("*.json")
    run = ProfileRun.read(path)
    assert run.settings.allocator == allocator and run.file_name == path.name
    assert run.page_faults is not None
    if allocator == "default":
        assert path.name.endswith("-malloc.json") and "default malloc" in device_label(run)
        assert run.page_faults > 0.9 * 3 * 2048 * 2048 * 4 / PAGE  # every forward, afresh
        assert "page faults per forward" in done.stderr and "MALLOC_MMAP_MAX_=0" in done.stderr
    else:
        # Mostly none (0-1.3 a forward in 15 runs here); a stray growth of the heap can still
        # fault one forward's output afresh (1 run in about 8 here), never most of them.
        assert run.page_faults < 0.5 * 3 * 2048 * 2048 * 4 / PAGE
