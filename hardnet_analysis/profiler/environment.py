"""Where a profile ran: the device record, library versions and the clock read.

These go into the run file so a timing can be traced back to the machine and software.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from hardnet_analysis.profiler.document import DeviceRecord


def versions() -> dict[str, str]:
    """Versions of hda, Python and the libraries that produced the timings."""
    import torchvision

    from hardnet_analysis import __version__

    return {
        "hda": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": str(torch.version.cuda),
        "cudnn": str(torch.backends.cudnn.version()),  # type: ignore[no-untyped-call]
    }


def _cpu_name_and_mhz() -> tuple[str, tuple[float, ...] | None]:
    """This CPU's model name and its cores' current clocks (MHz), from /proc/cpuinfo."""
    name = platform.processor() or platform.machine()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, None
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line]
    return (names[0] if names else name), (tuple(mhz) or None)


def device_record(requested: str, device: torch.device, fallback: str | None) -> DeviceRecord:
    """The device asked for and used, with its name and details (clocks, or GPU properties)."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        capability = tuple(torch.cuda.get_device_capability(device))
        return DeviceRecord(
            requested,
            "cuda",
            fallback,
            props.name,
            capability=capability,
            memory_bytes=props.total_memory,
            sm_count=props.multi_processor_count,
        )
    name, mhz = _cpu_name_and_mhz()
    return DeviceRecord(requested, device.type, fallback, name, mhz=mhz)


def clock_name(device: torch.device, thread_time: bool) -> str:
    """The clock the timings were read from (see `profiler.latency.clock_for`)."""
    if device.type == "cuda":
        return "cuda events"
    return "time.thread_time_ns" if thread_time else "time.perf_counter_ns"
