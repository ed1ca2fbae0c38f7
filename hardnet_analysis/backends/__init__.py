"""Backends: where and how a model runs (a device type, with its clock, ranges and ceilings).

A backend is one module in this folder that registers a `Backend` subclass instance with
`register_backend` when imported; `list_backends` and `get_backend` scan the folder (as the
families registry does), so adding one touches no other file: it then shows in ``hda profile
--device``, ``hda calibrate --device`` and ``hda train --device``, in their errors and their
``--help``. Modules here import torch only inside methods, so building the CLI stays light.
`specs` (device ceilings: the roofline table and probe) is the one module here that registers
no backend; the package imports nothing from `hardnet_analysis.profiler`, which sits above it.

`pick` is the one place a requested device becomes a backend and a ``torch.device``: one
behaviour and one message everywhere. A backend that cannot run here (``cuda`` without a GPU)
falls back to ``cpu`` with a warning naming why, or with ``--strict-device`` is a UsageError.
Nothing outside this folder branches on the device type; it asks the backend.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from hardnet_analysis.errors import UsageError

if TYPE_CHECKING:
    import torch

    from hardnet_analysis.backends.specs import DeviceSpec
    from hardnet_analysis.documents.machine import DeviceRecord

#: The backend every other one falls back to.
FALLBACK = "cpu"
#: The request that picks the best backend available (the highest `priority`).
AUTO = "auto"
MiB = 2**20


class Clock(Protocol):
    """Marks points in time; `elapsed` is in seconds, valid after `sync`."""

    def mark(self) -> Any: ...

    def sync(self) -> None: ...

    def elapsed(self, start: Any, end: Any) -> float: ...


class Backend:
    """One way to run a model. The defaults describe a synchronous device with no counters,
    no ranges and no memory statistics; a backend overrides what it has.

    `name` is what ``--device`` takes (``cuda:1`` picks index 1); `priority` orders ``auto``
    (the highest available wins); `counter_sources` are the DRAM-counter tools it can read, in
    order of preference (`hardnet_analysis.profiler.probe`).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    priority: ClassVar[int] = 0
    counter_sources: ClassVar[tuple[str, ...]] = ()
    #: Whether `clock(thread_time=True)` exists: per-thread CPU time, valid at one thread.
    thread_time: ClassVar[bool] = False
    #: Whether kernels run on torch's CPU threads, so timings depend on the thread count.
    cpu_threads: ClassVar[bool] = False
    #: torch.distributed's process-group backend for data-parallel training here.
    distributed: ClassVar[str] = "gloo"

    def unavailable(self) -> str | None:
        """Why this backend cannot run here, or None when it can."""
        return None

    def device(self, index: int | None = None) -> torch.device:
        import torch

        return torch.device(self.name, index) if index is not None else torch.device(self.name)

    def prepare(self, threads: int | None) -> int:
        """Set the process up to run here (torch's thread count, autotuning); returns the
        thread count used."""
        import torch

        if threads:
            torch.set_num_threads(threads)
        return torch.get_num_threads()

    def autotunes(self) -> bool:
        """Whether `prepare` turned on per-shape autotuning (cuDNN benchmark mode)."""
        return False

    def clock(self, thread_time: bool = False) -> Clock:
        raise NotImplementedError

    def clock_name(self, thread_time: bool = False) -> str:
        raise NotImplementedError

    def synchronize(self, device: torch.device) -> None:
        return None

    def record(self, requested: str, device: torch.device, fallback: str | None) -> DeviceRecord:
        """The run file's device record: asked for, used, why it fell back, name, details."""
        raise NotImplementedError

    def roofline(self, device: torch.device) -> DeviceSpec:
        """Bandwidth and peak compute for the roofline: a table entry or a probe."""
        raise NotImplementedError

    def cache_sizes(self, device: torch.device) -> dict[int, str]:
        """Cache capacities worth trying as the cache-aware model's cache (bytes -> source)."""
        return {32 * MiB: "default"}

    def capability(self, device: torch.device) -> tuple[int, int] | None:
        """A GPU's compute capability (for the counter tools), None elsewhere."""
        return None

    def versions(self) -> dict[str, str]:
        """Library versions this backend's timings depend on (added to every run file)."""
        return {}

    @contextlib.contextmanager
    def range(self, name: str) -> Iterator[None]:
        """A named range a profiler can filter on (NVTX on CUDA); nothing by default."""
        yield

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        """The span a whole-run counter tool records (cudaProfilerStart/Stop)."""
        yield

    def profiler_activities(self) -> list[Any]:
        """The ``torch.profiler`` activities whose events time this backend's ops."""
        from torch.profiler import ProfilerActivity

        return [ProfilerActivity.CPU]

    def op_seconds(self, event: Any) -> float:
        """The seconds an op took, from its ``torch.profiler`` event: its span on the CPU
        (wall time, every intra-op thread inside it)."""
        return float(event.time_range.elapsed_us()) / 1e6

    def release_memory(self) -> None:
        """Give cached device memory back (after a failed run)."""
        return None

    # --- training ---
    def supports_amp(self) -> bool:
        return False

    def pin_memory(self) -> bool:
        return False

    def peak_memory_mb(self, device: torch.device) -> float:
        """Peak memory allocated on `device` since the last reset, in MiB; 0 where unknown."""
        return 0.0

    def reset_peak_memory(self, device: torch.device) -> None:
        return None

    def ddp_device_ids(self, device: torch.device) -> list[int] | None:
        return None

    def rng_state(self) -> Any:
        """This device's random generators' state for a checkpoint, None if it has none."""
        return None

    def set_rng_state(self, state: Any) -> None:
        return None


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Register `backend` (once, from its module in this folder)."""
    known = _BACKENDS.get(backend.name)
    if known is not None and type(known) is not type(backend):
        raise ValueError(f"backend {backend.name!r} is registered twice")
    _BACKENDS[backend.name] = backend
    return backend


def discover() -> None:
    """Import every module of this folder not imported yet (each registers its backend)."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")


def list_backends() -> list[str]:
    """Registered backend names, the fallback first, then by name."""
    discover()
    return sorted(_BACKENDS, key=lambda name: (name != FALLBACK, name))


def get_backend(name: str) -> Backend:
    """Backend `name` (``cuda:1`` names ``cuda``); an unknown one is a UsageError listing
    the known ones."""
    base = name.split(":", 1)[0]
    if base not in _BACKENDS:
        discover()
    try:
        return _BACKENDS[base]
    except KeyError:
        raise UsageError(
            f"unknown device {name!r}; accepted: {', '.join(list_backends())}"
        ) from None


def device_choices(auto: bool = False) -> str:
    """The ``--device`` values for a help text: ``cpu, cuda`` (with ``auto`` first)."""
    return ", ".join([AUTO] * auto + list_backends())


@dataclass(frozen=True)
class Picked:
    """The backend a request became, its ``torch.device``, and why it fell back (or None)."""

    backend: Backend
    device: torch.device
    fallback: str | None

    def warning(self, requested: str) -> str | None:
        """The warning line's text after a fall-back (None when there was none)."""
        return f"--device {requested}: {self.fallback}" if self.fallback else None


def pick(requested: str, strict: bool = False, index: int | None = None) -> Picked:
    """The backend and device for ``--device`` `requested` (``cpu``, ``cuda``, ``cuda:1`` or
    ``auto``, the best one available). One that cannot run here falls back to ``cpu`` (the
    reason in `Picked.fallback`), or with `strict` is a UsageError; `index` is the device index
    when the request names none (a torchrun rank's local rank)."""
    if requested == AUTO:
        usable = [b for b in map(get_backend, list_backends()) if b.unavailable() is None]
        return pick(max(usable, key=lambda b: b.priority).name, strict, index)
    backend = get_backend(requested)
    number = requested.partition(":")[2]
    if number and not (number.isascii() and number.isdigit()):
        raise UsageError(f"--device {requested!r}: the index after ':' must be a number")
    why = backend.unavailable()
    if why is not None:
        if strict:
            raise UsageError(
                f"--device {requested}: {why}; drop --strict-device to fall back to {FALLBACK}"
            )
        fallback = get_backend(FALLBACK)
        return Picked(fallback, fallback.device(), f"{why}; fell back to {FALLBACK}")
    chosen = int(number) if number else index
    return Picked(backend, backend.device(chosen), None)


def backend_of(device: torch.device) -> Backend:
    """The backend of a ``torch.device`` already picked."""
    return get_backend(device.type)


def check_thread_time(backend: Backend, threads: int | None) -> None:
    """``--thread-time`` clocks one thread's CPU time: a UsageError unless the backend has
    such a clock and the run uses one thread."""
    if not backend.thread_time or threads != 1:
        runs = [b for b in map(get_backend, list_backends()) if b.thread_time]
        where = " or ".join(f"--device {b.name}" for b in runs) or "a CPU backend"
        raise UsageError(f"--thread-time needs {where} and --threads 1 (it clocks one thread)")
