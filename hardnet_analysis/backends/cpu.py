"""The ``cpu`` backend: eager PyTorch on this machine's cores.

Its clock is ``time.perf_counter_ns`` (wall time) or, for one thread, ``time.thread_time_ns``
(the calling thread's CPU time, blind to time spent descheduled on a shared machine). Its
roofline is this machine's probed bandwidth and fp32 compute; its caches are read from sysfs;
its DRAM counters come from ``perf`` where the memory controller's PMU is exposed.
"""

from __future__ import annotations

import contextlib
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from hardnet_analysis.backends import Backend, Clock, MiB, register_backend
from hardnet_analysis.backends.specs import DeviceSpec, probe_machine
from hardnet_analysis.documents.machine import DeviceRecord

if TYPE_CHECKING:
    import torch


class CpuClock:
    """``perf_counter_ns`` marks (wall time); synchronous execution needs no sync.

    With `thread_time` the marks are ``thread_time_ns``: CPU time of the calling thread only,
    which ignores time the thread spends descheduled on a shared machine. It is the forward's
    latency only when torch runs on that one thread (``--threads 1``).
    """

    def __init__(self, thread_time: bool = False) -> None:
        self._now = time.thread_time_ns if thread_time else time.perf_counter_ns

    def mark(self) -> int:
        return self._now()

    def sync(self) -> None:
        return None

    def elapsed(self, start: int, end: int) -> float:
        return (end - start) / 1e9


def cpu_name_and_mhz() -> tuple[str, tuple[float, ...] | None]:
    """This CPU's model name and its cores' current clocks (MHz), from /proc/cpuinfo."""
    name = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, None
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    return (names[0] if names else name), (tuple(mhz) or None)


def sysfs_caches(sysfs: Path = Path("/sys/devices/system/cpu")) -> dict[int, str]:
    """Data or unified cache levels >= 2 of cpu0 from sysfs (bytes -> ``L2 (sysfs)``)."""
    found: dict[int, str] = {}
    for index in sorted((sysfs / "cpu0" / "cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if level >= 2 and kind in ("Data", "Unified") and text.endswith("K"):
            found[int(text[:-1]) * 1024] = f"L{level} (sysfs)"
    return found


class CpuBackend(Backend):
    name = "cpu"
    description = "eager PyTorch on this machine's CPU cores"
    counter_sources: ClassVar[tuple[str, ...]] = ("perf",)
    thread_time = True
    cpu_threads = True

    def __init__(self) -> None:
        self._roofline: DeviceSpec | None = None

    def device(self, index: int | None = None) -> torch.device:
        import torch

        return torch.device("cpu")  # one device however many cores; a rank index means nothing

    def peak_memory_mb(self, device: torch.device) -> float:
        """This process's peak resident set since the last reset, in MiB: Linux's ``VmHWM``
        (of this address space), else ``ru_maxrss``. On Linux ``ru_maxrss`` survives exec: a
        training worker started by an 800 MiB parent reported 800 MiB (a 5 GB pytest: 5182
        MB), whatever it used itself."""
        try:
            status = Path("/proc/self/status").read_text()
        except OSError:
            status = ""
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def reset_peak_memory(self, device: torch.device) -> None:
        """Lower ``VmHWM`` to the current resident set (Linux 4.0+: writing 5 to clear_refs);
        elsewhere the peak stays the process's."""
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")

    def clock(self, thread_time: bool = False) -> Clock:
        return CpuClock(thread_time)

    def clock_name(self, thread_time: bool = False) -> str:
        return "time.thread_time_ns" if thread_time else "time.perf_counter_ns"

    def record(self, requested: str, device: torch.device, fallback: str | None) -> DeviceRecord:
        name, mhz = cpu_name_and_mhz()
        return DeviceRecord(requested, self.name, fallback, name, mhz=mhz)

    def roofline(self, device: torch.device) -> DeviceSpec:
        """This machine's probed bandwidth and compute (probed once per process)."""
        if self._roofline is None:
            self._roofline = probe_machine(self, device)
        return self._roofline

    def cache_sizes(self, device: torch.device) -> dict[int, str]:
        return sysfs_caches() or {32 * MiB: "default"}


register_backend(CpuBackend())
