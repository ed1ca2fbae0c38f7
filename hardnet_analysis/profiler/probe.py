"""Capability probe: which DRAM-counter source works here, and why the others do not.

On CUDA: ``ncu`` (Nsight Compute, per layer) if on PATH, else ``nvprof`` (whole model) if on
PATH and the GPU is below compute capability 8.0 (nvprof does not support 8.0+). On CPU:
``perf`` if on PATH, an ``uncore_imc`` PMU is exposed and ``perf_event_paranoid`` allows
system-wide counting (or we are root). Otherwise ``model``: only modeled bytes. Permission
errors that show only when profiling (ERR_NVGPUCTRPERM) make the profile fall back at run time.
The answer (`Choice`, every `Check` made) is part of the run document.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hardnet_analysis.backends import Backend, get_backend, list_backends
from hardnet_analysis.documents.profile_run import Check, Choice
from hardnet_analysis.profiler.counters.perf import imc_events


def check_ncu() -> Check:
    path = shutil.which("ncu")
    return Check("ncu", path is not None, f"found {path}" if path else "ncu not on PATH")


def check_nvprof(capability: tuple[int, int] | None) -> Check:
    path = shutil.which("nvprof")
    if path is None:
        return Check("nvprof", False, "nvprof not on PATH")
    if capability is not None and capability >= (8, 0):
        major, minor = capability
        return Check("nvprof", False, f"compute capability {major}.{minor} >= 8.0 unsupported")
    return Check("nvprof", True, f"found {path}")


def _paranoid() -> int:
    try:
        return int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        return 2


def check_perf(pmu_root: Path | None = None) -> Check:
    path = shutil.which("perf")
    if path is None:
        return Check("perf", False, "perf not on PATH")
    events = imc_events(pmu_root) if pmu_root else imc_events()
    if not events:
        return Check("perf", False, "no memory-controller PMU (uncore_imc) exposed")
    if os.geteuid() != 0 and _paranoid() > 0:
        return Check("perf", False, "perf_event_paranoid > 0 forbids system-wide counting")
    return Check("perf", True, f"{len(events)} uncore_imc events")


def probe(
    backend: Backend, capability: tuple[int, int] | None = None, wanted: str = "auto"
) -> Choice:
    """Pick the DRAM counter source for `backend` (its `counter_sources`, in order). `wanted` is
    ``auto``, ``none`` or one source name (checked like the others; ``model`` if it does not
    work, or if `backend` cannot read it)."""
    if wanted == "none":
        return Choice("model", (Check("counters", False, "disabled by --counters none"),))
    candidates = backend.counter_sources if wanted == "auto" else (wanted,)
    checks: list[Check] = []
    for source in candidates:
        check = _check(source, backend, capability)
        checks.append(check)
        if check.ok:
            return Choice(source, tuple(checks))
    return Choice("model", tuple(checks))


def _check(source: str, backend: Backend, capability: tuple[int, int] | None) -> Check:
    """Whether `source` works here, for `backend`."""
    if source not in backend.counter_sources:
        owners = [b for b in list_backends() if source in get_backend(b).counter_sources]
        where = " or ".join(f"--device {b}" for b in owners) or "another device"
        return Check(source, False, f"needs {where}")
    if source == "nvprof":
        return check_nvprof(capability)
    return check_ncu() if source == "ncu" else check_perf()
