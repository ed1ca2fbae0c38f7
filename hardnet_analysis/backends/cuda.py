"""The ``cuda`` backend: eager PyTorch on an NVIDIA GPU.

Its clock is CUDA events on the current stream, read after a synchronisation; cuDNN autotunes
per shape; its roofline is the device table's entry for the GPU's name (a probe where the
table has none); its cache is the L2 size the device reports; its ranges are NVTX (what
``ncu --nvtx-include`` filters on); its DRAM counters come from Nsight Compute, or nvprof
below compute capability 8.0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from hardnet_analysis.backends import Backend, MiB, register_backend
from hardnet_analysis.backends.specs import DeviceSpec, find_device, probe_machine
from hardnet_analysis.documents.machine import DeviceRecord
from hardnet_analysis.errors import UsageError

if TYPE_CHECKING:
    import torch


class CudaClock:
    """CUDA events recorded on the current stream; read after ``torch.cuda.synchronize``."""

    def mark(self) -> Any:
        import torch

        event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        event.record()
        return event

    def sync(self) -> None:
        import torch

        torch.cuda.synchronize()

    def elapsed(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end)) / 1e3


class CudaBackend(Backend):
    name = "cuda"
    description = "eager PyTorch on an NVIDIA GPU (CUDA events, NVTX ranges, Nsight counters)"
    priority = 10
    counter_sources = ("ncu", "nvprof")
    distributed = "nccl"

    def __init__(self) -> None:
        self._probed: dict[int, DeviceSpec] = {}

    def unavailable(self) -> str | None:
        import torch

        if torch.cuda.is_available():
            return None
        return "no CUDA GPU is available (torch.cuda.is_available() is False)"

    def device(self, index: int | None = None) -> torch.device:
        import torch

        device = torch.device("cuda", index if index is not None else torch.cuda.current_device())
        torch.cuda.set_device(device)
        return device

    def prepare(self, threads: int | None) -> int:
        import torch

        torch.backends.cudnn.benchmark = True
        return super().prepare(threads)

    def autotunes(self) -> bool:
        return True

    def clock(self, thread_time: bool = False) -> CudaClock:
        return CudaClock()

    def clock_name(self, thread_time: bool = False) -> str:
        return "cuda events"

    def synchronize(self, device: torch.device) -> None:
        import torch

        torch.cuda.synchronize(device)

    def record(self, requested: str, device: torch.device, fallback: str | None) -> DeviceRecord:
        import torch

        props = torch.cuda.get_device_properties(device)
        return DeviceRecord(
            requested,
            self.name,
            fallback,
            props.name,
            capability=tuple(torch.cuda.get_device_capability(device)),
            memory_bytes=props.total_memory,
            sm_count=props.multi_processor_count,
        )

    def roofline(self, device: torch.device) -> DeviceSpec:
        """The device table's entry for this GPU's name, else a probe (once per device)."""
        import torch

        try:
            return find_device(torch.cuda.get_device_name(device))
        except UsageError:
            index = device.index or 0
            if index not in self._probed:
                self._probed[index] = probe_machine(self, device)
            return self._probed[index]

    def cache_sizes(self, device: torch.device) -> dict[int, str]:
        import torch

        size = int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0))
        return {size: "L2 (CUDA device properties)"} if size else {32 * MiB: "default"}

    def capability(self, device: torch.device) -> tuple[int, int]:
        import torch

        major, minor = torch.cuda.get_device_capability(device)
        return major, minor

    def versions(self) -> dict[str, str]:
        import torch

        return {
            "cuda": str(torch.version.cuda),
            "cudnn": str(torch.backends.cudnn.version()),  # type: ignore[no-untyped-call]
        }

    @contextlib.contextmanager
    def range(self, name: str) -> Iterator[None]:
        import torch

        torch.cuda.nvtx.range_push(name)  # type: ignore[no-untyped-call]
        try:
            yield
        finally:
            torch.cuda.nvtx.range_pop()  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        import torch

        torch.cuda.profiler.start()  # type: ignore[no-untyped-call]
        try:
            yield
        finally:
            torch.cuda.synchronize()
            torch.cuda.profiler.stop()  # type: ignore[no-untyped-call]

    def profiler_activities(self) -> list[Any]:
        from torch.profiler import ProfilerActivity

        return [ProfilerActivity.CPU, ProfilerActivity.CUDA]

    def op_seconds(self, event: Any) -> float:
        """The device time of the op's kernels, linked to it by correlation ids."""
        total = getattr(event, "device_time_total", None)
        if total is None:  # torch before 2.4 named it after CUDA
            total = event.cuda_time_total
        return float(total) / 1e6

    def release_memory(self) -> None:
        import torch

        torch.cuda.empty_cache()

    def supports_amp(self) -> bool:
        return True

    def pin_memory(self) -> bool:
        return True

    def peak_memory_mb(self, device: torch.device) -> float:
        import torch

        return torch.cuda.max_memory_allocated(device) / MiB

    def reset_peak_memory(self, device: torch.device) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats(device)

    def ddp_device_ids(self, device: torch.device) -> list[int] | None:
        return [device.index] if device.index is not None else None

    def rng_state(self) -> Any:
        import torch

        return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def set_rng_state(self, state: Any) -> None:
        import torch

        if state is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state)


register_backend(CudaBackend())
