"""Device ceilings, what a backend's `Backend.roofline` answers with: a table of devices (DRAM
bandwidth, peak rates, with sources), a quick probe of this machine, and per-layer arithmetic
intensity, bound and roofline time. Not a backend itself: it registers none.

Roofline time of a layer = max(FLOPs / peak FLOP/s, bytes / bandwidth), FLOPs = 2 x MACs. The
layer is memory-bound when its arithmetic intensity (FLOPs per DRAM byte) is below the ridge
point peak / bandwidth. Peak rates are dense (no sparsity); ``fp32`` is the non-tensor-core
rate, ``fp16``/``bf16`` the tensor-core rate where the device has tensor cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hardnet_analysis.documents.profile_run import RooflinePoint
from hardnet_analysis.errors import UsageError

if TYPE_CHECKING:
    import torch

    from hardnet_analysis.backends import Backend

TB = 1e12
T = 1e12


@dataclass(frozen=True)
class DeviceSpec:
    """DRAM bandwidth in bytes/s and peak FLOP/s per dtype, with where the figures come from."""

    name: str
    bandwidth: float
    peak_flops: dict[str, float]
    source: str
    aliases: tuple[str, ...] = field(default=())

    def peak(self, dtype: str) -> float:
        """Peak FLOP/s at `dtype`, falling back to fp32 where the table has no entry."""
        return self.peak_flops.get(dtype, self.peak_flops["fp32"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bandwidth_Bps": self.bandwidth,
            "peak_flops": self.peak_flops,
            "source": self.source,
        }


DEVICES: dict[str, DeviceSpec] = {
    d.name: d
    for d in (
        DeviceSpec(
            "H100",
            3.35 * TB,
            {"fp32": 67 * T, "fp16": 989 * T, "bf16": 989 * T},
            "NVIDIA H100 Tensor Core GPU datasheet (SXM5: 3.35 TB/s HBM3, 67 TFLOPS FP32, "
            "989 TFLOPS dense FP16/BF16 tensor)",
            ("h100",),
        ),
        DeviceSpec(
            "H200",
            4.8 * TB,
            {"fp32": 67 * T, "fp16": 989 * T, "bf16": 989 * T},
            "NVIDIA H200 Tensor Core GPU datasheet (SXM: 4.8 TB/s HBM3e, compute as H100 SXM)",
            ("h200",),
        ),
        DeviceSpec(
            "A100",
            2.039 * TB,
            {"fp32": 19.5 * T, "fp16": 312 * T, "bf16": 312 * T},
            "NVIDIA A100 Tensor Core GPU datasheet (80GB SXM: 2,039 GB/s HBM2e, 19.5 TFLOPS "
            "FP32, 312 TFLOPS dense FP16/BF16 tensor)",
            ("a100",),
        ),
        DeviceSpec(
            "V100",
            900e9,
            {"fp32": 15.7 * T, "fp16": 125 * T},
            "NVIDIA Tesla V100 datasheet (SXM2: 900 GB/s HBM2, 15.7 TFLOPS FP32, 125 TFLOPS "
            "tensor)",
            ("v100",),
        ),
        DeviceSpec(
            "Titan V",
            652.8e9,
            {"fp32": 14.9 * T, "fp16": 110 * T},
            "NVIDIA TITAN V product page (652.8 GB/s HBM2, ~14.9 TFLOPS FP32 at boost, "
            "110 TFLOPS tensor)",
            ("titan v", "titanv"),
        ),
        DeviceSpec(
            "1080 Ti",
            484e9,
            {"fp32": 11.34 * T, "fp16": 0.177 * T},
            "NVIDIA GeForce GTX 1080 Ti specifications (484 GB/s GDDR5X, 11.34 TFLOPS FP32; "
            "FP16 at 1/64 rate on GP102)",
            ("1080ti", "gtx 1080 ti"),
        ),
        DeviceSpec(
            "Jetson Nano",
            25.6e9,
            {"fp32": 236e9, "fp16": 472e9},
            "NVIDIA Jetson Nano module datasheet (25.6 GB/s LPDDR4, 472 GFLOPS FP16 on the "
            "128-core Maxwell GPU, half that in FP32)",
            ("nano", "jetson nano"),
        ),
    )
}


def find_device(name: str) -> DeviceSpec:
    """The table entry whose name or alias occurs in `name` (``"NVIDIA H100 80GB HBM3"`` ->
    H100); unknown names are a usage error listing the table."""
    low = name.lower()
    for spec in DEVICES.values():
        if any(alias in low for alias in (spec.name.lower(), *spec.aliases)):
            return spec
    raise UsageError(f"no roofline entry for device {name!r}; known: {', '.join(DEVICES)}")


def roofline(macs: int, bytes_moved: int, spec: DeviceSpec, dtype: str) -> RooflinePoint:
    """Where a layer of `macs` MACs moving `bytes_moved` DRAM bytes sits on `spec`'s roofline.

    A 1x1 conv, 1x256x56x56 -> 64 channels, fp32: 51.4 M MACs, 4.08 MB -> 25.2 FLOP/B; on the
    V100 (ridge 15.7e12 / 900e9 = 17.4 FLOP/B) it is compute-bound, time 6.55 us.
    """
    flops = 2 * macs
    peak = spec.peak(dtype)
    intensity = flops / bytes_moved if bytes_moved else None
    ridge = peak / spec.bandwidth
    compute_bound = (intensity is None and flops > 0) or (intensity or 0.0) >= ridge
    return RooflinePoint(
        intensity,
        "compute" if compute_bound else "memory",
        max(flops / peak, bytes_moved / spec.bandwidth),
    )


def probe_machine(
    backend: Backend, device: torch.device, megabytes: int = 256, n: int = 1024
) -> DeviceSpec:
    """This machine's measured bandwidth and fp32 compute on `device`: best of 5 copies of a
    `megabytes` fp32 array (read + write = 2 x size bytes each) and best of 5 `n` x `n` matmuls
    (2 n^3 FLOPs each), on `backend`'s clock."""
    import torch

    clock = backend.clock()
    src = torch.ones(megabytes * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    copy = min(time_forward_once(lambda: dst.copy_(src), clock) for _ in range(5))
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    matmul = min(time_forward_once(lambda: a @ b, clock) for _ in range(5))
    bandwidth = 2 * src.numel() * 4 / copy
    flops = 2 * n**3 / matmul
    return DeviceSpec(
        f"this machine ({backend.name})",
        bandwidth,
        {"fp32": flops},
        f"probed {time.strftime('%Y-%m-%d')}: {megabytes} MiB fp32 copy, {n}x{n} fp32 matmul",
    )


def time_forward_once(fn: Any, clock: Any) -> float:
    """Seconds of one call of `fn` on `clock`."""
    start = clock.mark()
    fn()
    end = clock.mark()
    clock.sync()
    return float(clock.elapsed(start, end))
