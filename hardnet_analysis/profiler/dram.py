"""Measured DRAM bytes of a profile: perf around the timed forwards on CPU, ncu (per layer) or
nvprof on one forward in a child process on CUDA. Every figure carries its source; a counter that
fails is recorded and the run goes on with modeled bytes only.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hardnet_analysis.documents.profile_run import Choice, DramBytes, Failure
from hardnet_analysis.profiler.counters import CounterError, ncu, nvprof
from hardnet_analysis.profiler.counters.perf import PerfSession, imc_events
from hardnet_analysis.profiler.latency import Forward

if TYPE_CHECKING:
    from hardnet_analysis.profiler.run import Settings
    from hardnet_analysis.shapes import InputShape


@dataclass(frozen=True)
class DramResult:
    """Measured DRAM bytes of one forward (None without counters), per layer key (ncu only),
    and the counter failures that made the source fall back to ``model``."""

    total: DramBytes | None = None
    layers: dict[str, DramBytes] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()


def _perf_dram(repeat: int, forward: Forward) -> DramResult:
    """Memory-controller bytes per forward, averaged over `repeat` forwards (system-wide)."""
    n = max(repeat, 1)
    with PerfSession("perf", imc_events()) as session:
        for _ in range(n):
            forward()
    assert session.totals is not None
    totals = session.totals
    return DramResult(DramBytes("perf", totals.read_bytes / n, totals.write_bytes / n))


def _gpu_dram(source: str, argv: list[str]) -> DramResult:
    """DRAM bytes of one forward in a child process under ncu (per layer) or nvprof."""
    with tempfile.TemporaryDirectory(prefix="hda-counters-") as tmp:
        log = Path(tmp) / f"{source}.csv"
        if source == "nvprof":
            totals = nvprof.run_nvprof("nvprof", argv, log, timeout=1800)
            return DramResult(DramBytes("nvprof", totals.read_bytes, totals.write_bytes))
        counts = ncu.per_layer(ncu.run_ncu("ncu", argv, log, timeout=1800))
    layers = {
        k: DramBytes("ncu", v.read_bytes, v.write_bytes, v.time_s, v.kernels)
        for k, v in counts.items()
    }
    read = sum(v.read_bytes for v in counts.values())
    write = sum(v.write_bytes for v in counts.values())
    return DramResult(DramBytes("ncu", read, write), layers)


def child_argv(
    model: str, shape: InputShape, dtype: str, channels_last: bool, mode: str, device: str
) -> list[str]:
    """The argv that runs `hardnet_analysis.profiler.child` (one forward of `model` on `device`
    at `shape`, one NCHW image) under a counter tool."""
    (h, w), batch = shape.hw, shape.batch  # the child takes --input HxW and --batch
    argv = [sys.executable, "-m", "hardnet_analysis.profiler.child", model]
    argv += ["--input", f"{h}x{w}", "--batch", str(batch)]
    argv += ["--dtype", dtype, "--mode", mode, "--device", device]
    return argv + (["--channels-last"] if channels_last else [])


def measure_dram(choice: Choice, model: str, settings: Settings, forward: Forward) -> DramResult:
    """Measured DRAM bytes from the counter source `choice` picked; a counter failure becomes
    a record and the source falls back to ``model`` (no measured bytes)."""
    try:
        if choice.source == "perf":
            return _perf_dram(settings.repeat, forward)
        if choice.source in ("ncu", "nvprof"):
            s = settings
            argv = child_argv(model, s.input, s.dtype, s.channels_last, choice.source, s.device)
            return _gpu_dram(choice.source, argv)
    except (CounterError, OSError) as exc:
        return DramResult(failures=(Failure(f"counters:{choice.source}", str(exc)),))
    return DramResult()
