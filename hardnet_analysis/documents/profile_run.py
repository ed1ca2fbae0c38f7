"""The profile run file: what ``hda profile`` writes and ``correlate``/``report`` read.

A run file is ``{"format": "hda-profile-run", "version": 1, "status": "ok", ...}`` followed by
the fields of `ProfileRun` by name (a failed run, status ``failed``, holds those of
`FailedRun`). Both are `RunDocument`s (`hardnet_analysis.documents.base.Document`): ``write`` is
the only writer and ``read`` the only reader; ``RunDocument.read`` gives either kind,
``ProfileRun.read`` a successful run only. A file of another format or version, or with a
missing key, is a one-line UsageError. Times are seconds, bytes are bytes, MACs and CIO are
counts (CIO in elements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hardnet_analysis.documents.base import Document
from hardnet_analysis.documents.machine import Controls, DeviceRecord, LoadProbe, Pace
from hardnet_analysis.documents.records import decode, omitted_if_none
from hardnet_analysis.errors import UsageError

R = TypeVar("R", bound="RunDocument")


#: The C allocator's states a CPU timing can take (`RunSettings.allocator`,
#: ``profiler.allocator``): ``kept`` (freed memory kept, a reserve faulted in up front) and
#: ``default`` (glibc's malloc as a plain process has it, page faults and all: what a
#: deployment without tuning pays).
ALLOCATORS = ("kept", "default")


def setup_fields(
    device: str,
    dtype: str,
    batch: int,
    channels_last: bool,
    threads: int,
    repeat: int,
    runtime: str | None = None,
    allocator: str | None = None,
) -> dict[str, str]:
    """What besides the model and input changes a run's numbers, by name: the runtime where it
    is not eager PyTorch (``onnxruntime``), the device actually used (a CUDA request that fell
    back is a ``cpu`` run), dtype, batch, layout, threads and repeat count, each in words
    (``cpu``, ``fp32``, ``b1``, ``nchw``, ``2 threads``, ...), and ``default malloc`` for a run
    timed with the C allocator as a plain process has it (`RunSettings.allocator`)."""
    return {
        **({"runtime": runtime} if runtime else {}),
        "device": device,
        "dtype": dtype,
        "batch": f"b{batch}",
        "layout": "nhwc" if channels_last else "nchw",
        "threads": f"{threads} threads",
        "repeats": f"{repeat} repeats",
        **({"allocator": "default malloc"} if allocator == "default" else {}),
    }


def run_stem(model: str) -> str:
    """The model's part of a run file name: a definition file's stem, else the model as given
    with path separators replaced (``net.py:make`` stays, ``a/b.py:f`` becomes ``a_b.py:f``)."""
    return Path(model).stem if model.endswith(".json") else model.replace("/", "_")


def run_file_name(
    stem: str,
    hw: tuple[int, int],
    device: str,
    dtype: str,
    batch: int,
    channels_last: bool,
    threads: int,
    repeat: int,
    runtime: str | None = None,
    allocator: str | None = None,
) -> str:
    """``STEM-HxW-[RUNTIME-]DEVICE-DTYPE-bN[-nhwc]-tT-rR[-malloc].json``: runs that differ in
    anything that changes their numbers (see `setup_fields`) get different files. DEVICE is the
    device used; RUNTIME is there for runtimes other than eager PyTorch (``onnxruntime``);
    ``-malloc`` marks a run timed with the C allocator's defaults (``--allocator default``)."""
    layout = "-nhwc" if channels_last else ""
    where = f"{runtime}-{device}" if runtime else device
    malloc = "-malloc" if allocator == "default" else ""
    name = f"{stem}-{hw[0]}x{hw[1]}-{where}-{dtype}-b{batch}{layout}-t{threads}-r{repeat}"
    return f"{name}{malloc}.json"


@dataclass(frozen=True)
class Timing:
    """Repeated timings summarised in seconds: median, quartiles (inclusive), min, max, count."""

    median_s: float
    p25_s: float
    p75_s: float
    min_s: float
    max_s: float
    n: int


@dataclass(frozen=True)
class DramBytes:
    """DRAM bytes one forward read and wrote (whole model or one layer), measured by `source`
    (``perf``, ``ncu``, ``nvprof``); per layer, ncu adds its kernels' summed time (s) and count."""

    source: str
    read_bytes: float
    write_bytes: float
    time_s: float | None = omitted_if_none()
    kernels: int | None = omitted_if_none()

    @property
    def total(self) -> float:
        """Bytes read plus bytes written."""
        return self.read_bytes + self.write_bytes


@dataclass(frozen=True)
class ProfiledTotals:
    """Whole-model graph metrics: parameters, MACs, CIO (elements), activation bytes written,
    and the traffic model's bytes unfused and fused."""

    params: int
    macs: int
    cio: int
    act_bytes: int
    model_bytes: int
    model_fused_bytes: int


@dataclass(frozen=True)
class RooflinePoint:
    """One layer on the roofline: intensity in FLOP/byte, bound, time in seconds
    (`hardnet_analysis.backends.specs.roofline`)."""

    intensity: float | None
    bound: str
    time_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"intensity": self.intensity, "bound": self.bound, "time_s": self.time_s}


@dataclass(frozen=True)
class ProfiledLayer:
    """One layer key (see ``profiler.latency``): its median time and quartiles (s), whether it is
    a leaf module (``layer``) or a container's own ops (``self``), the graph nodes it covers with
    their summed metrics, measured DRAM bytes (ncu only, else None) and its roofline point."""

    name: str
    kind: str
    time_s: float
    time_p25_s: float
    time_p75_s: float
    nodes: tuple[str, ...]
    ops: tuple[str, ...]
    params: int
    macs: int
    cio: int
    model_bytes: int
    model_fused_bytes: int
    dram: DramBytes | None
    roofline: RooflinePoint
    #: Each node's median seconds where the ops were timed by the profiler (absent in runs
    #: timed by module hooks, before it).
    node_times: Mapping[str, float] | None = omitted_if_none()
    #: Each node's paced figure where speed controls lay beside the profiled forwards
    #: (`OpJoin.controls`): the median of its seconds over the control beside them (a pure
    #: number: a 2.0 ms conv beside 1.4 ms controls, 1.43). Times a calibration's median
    #: control, the node's time at the speed the calibration ran at.
    node_paced: Mapping[str, float] | None = omitted_if_none()
    #: Bytes the runtime's kernel reads and writes (`metrics.traffic.grouped_traffic`; ONNX
    #: Runtime runs only, where a layer is one fused kernel).
    kernel_bytes: int | None = omitted_if_none()


@dataclass(frozen=True)
class Check:
    """One DRAM counter source tried (`hardnet_analysis.profiler.probe`): whether it can be
    used, and why (not)."""

    source: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class Choice:
    """The DRAM counter source picked (``model`` when none works) and every check made."""

    source: str
    checks: tuple[Check, ...] = field(default=())

    def summary(self) -> str:
        """One line: ``counters: model (ncu: not on PATH; ...)``."""
        why = "; ".join(f"{c.source}: {c.reason}" for c in self.checks)
        return f"DRAM counters: {self.source}" + (f" ({why})" if why else "")

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "checks": [c.__dict__ for c in self.checks]}


@dataclass(frozen=True)
class RuntimeRecord:
    """The runtime a run measured where it is not eager PyTorch: its name and version
    (``onnxruntime``, ``1.32.0``), execution provider, graph optimization level, where the ONNX
    file came from (``torch.onnx.export (dynamo), torch 2.14.1`` or ``file``), the optimized
    graph's op counts (``{"com.microsoft.nchwc.Conv": 20, "Gemm": 1}``), the bytes its kernels
    read and write by hda's traffic model (`metrics.traffic.grouped_traffic`: the run's
    ``totals`` hold the unfused and fused views beside it), and per op how hda's fused view and
    the runtime's kernels fuse it (`metrics.traffic.FusionRule`: op, nodes, hda, runtime,
    both)."""

    name: str
    version: str
    provider: str
    optimization: str
    source: str
    optimized_ops: Mapping[str, int]
    kernel_bytes: int
    fusion: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class RunSettings:
    """Untimed and timed forwards, whether cuDNN autotuned, the clock read, and the process."""

    warmup: int
    repeat: int
    cudnn_benchmark: bool
    clock: str
    pid: int
    argv: tuple[str, ...]
    #: The C allocator's state during the timing on a CPU (`profiler.allocator`): ``kept``,
    #: freed memory kept and a reserve faulted in up front; ``default``, glibc's malloc as a
    #: plain process has it. Absent on GPUs and in older files (timed in a state near kept).
    allocator: str | None = omitted_if_none()


@dataclass(frozen=True)
class OpJoin:
    """How per-op times were taken (`hardnet_analysis.profiler.ops`): by `source`
    (``torch.profiler``) over `forwards` forwards; the profiled forward and the sum of every op
    event, each over the un-profiled forward (the profiler's cost, and the Python between ops
    that no op covers); the seconds per forward of op events that joined no graph node, by op
    name; the graph nodes with work that joined no event; and the speed controls beside the
    profiled forwards (one per forward; absent in runs taken before them, and on GPUs), against
    which each layer's `ProfiledLayer.node_paced` is figured."""

    source: str
    forwards: int
    profiled_ratio: float
    op_sum_ratio: float
    unjoined_events: Mapping[str, float]
    unjoined_nodes: tuple[str, ...]
    controls: Controls | None = omitted_if_none()  # noqa: RUF009 (a field spec, made once)


@dataclass(frozen=True)
class SubnormalInputs:
    """An op that read subnormal floats (`hardnet_analysis.profiler.subnormals`): the module
    that called it (its path; ``""`` for the model's own forward), the aten op, the share of
    subnormal values among its floating-point tensor inputs over its `calls` in one forward
    (Swin-T's shifted-window attention at 224: ``features.1.1.attn``, ``matmul``, 0.072)."""

    module: str
    op: str
    share: float
    calls: int


@dataclass(frozen=True)
class RooflineSpec:
    """The roofline the layers were placed on: DRAM bandwidth (bytes/s), peak FLOP/s per dtype,
    and where the figures come from."""

    name: str
    bandwidth_Bps: float  # the JSON key
    peak_flops: Mapping[str, float]
    source: str


@dataclass(frozen=True)
class Failure:
    """A stage that failed (``profile``, ``counters:ncu``) and its error message."""

    stage: str
    error: str


class RunDocument(Document):
    """A run file: a `ProfileRun` or a `FailedRun`, told apart by its ``status``."""

    FORMAT: ClassVar[str] = "hda-profile-run"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "run file"
    WHAT: ClassVar[str] = "hda profile run"
    WRITER: ClassVar[str] = "`hda profile --out DIR`"
    STATUS: ClassVar[str]

    def header(self) -> dict[str, Any]:
        """Format, version and status."""
        return {**super().header(), "status": self.STATUS}

    @classmethod
    def decode_fields(cls: type[R], document: dict[str, Any], where: str, version: int) -> R:
        """The run of `document`'s status; read as `ProfileRun`, a failed run is a UsageError."""
        status = document.get("status")
        kinds: dict[Any, type[RunDocument]] = {k.STATUS: k for k in (ProfileRun, FailedRun)}
        if status not in kinds:
            problem = f"status {status!r} is neither 'ok' nor 'failed'"
            raise UsageError(f"{where}: {problem}; {cls.accepted()}")
        run = decode(kinds[status], document, where, cls.accepted())
        if not isinstance(run, cls):
            raise UsageError(f"{where} holds a {status} run, not a successful one")
        return run


@dataclass(frozen=True)
class ProfileRun(RunDocument):
    """A successful profile of `model` at `input` (H, W): whole-model latency, the layer times
    summed (s) and over the whole, totals, measured DRAM bytes (or None) and one record per
    layer key, with the settings, device and versions that produced them."""

    STATUS: ClassVar[str] = "ok"

    model: str
    definition: Mapping[str, Any] | None
    input: tuple[int, int]
    batch: int
    dtype: str
    channels_last: bool
    device: DeviceRecord
    threads: int
    versions: Mapping[str, str]
    settings: RunSettings
    latency: Timing
    layer_sum_s: float
    layer_sum_ratio: float
    totals: ProfiledTotals
    unhandled_ops: tuple[str, ...]
    counters: Choice
    dram: DramBytes | None
    roofline: RooflineSpec
    layers: tuple[ProfiledLayer, ...]
    failures: tuple[Failure, ...]
    ops: OpJoin | None = omitted_if_none()  # noqa: RUF009 (a field spec, made once)
    #: How busy the machine was just before the timing (absent on GPUs and in older runs).
    load_probe: LoadProbe | None = omitted_if_none()  # noqa: RUF009
    #: The same probe just after the whole-model timing (absent on GPUs and in older runs).
    end_probe: LoadProbe | None = omitted_if_none()  # noqa: RUF009
    #: The whole-model timing paced by speed controls beside each forward (`Pace`; absent on
    #: GPUs and in older runs).
    pace: Pace | None = omitted_if_none()  # noqa: RUF009
    #: The runtime, where it is not eager PyTorch (absent for eager runs and older files).
    runtime: RuntimeRecord | None = omitted_if_none()  # noqa: RUF009
    #: The ops that read subnormal floats, most first (empty: none did); None where they were
    #: not looked for (ONNX Runtime, GPUs, older files).
    subnormals: tuple[SubnormalInputs, ...] | None = omitted_if_none()
    #: Minor page faults per timed forward, the mean over those `latency` summarises
    #: (`profiler.allocator.FaultCount`; process-wide): near 0 where the allocator kept its
    #: freed memory, thousands where tensors landed on fresh pages (MobileNetV2 at 320 with
    #: glibc's defaults: 4,768). The profiled forwards are left out: the profiler's own
    #: records, kept to its end, take fresh pages in some of them. None on GPUs and in older
    #: files.
    page_faults: float | None = omitted_if_none()

    def probes(self) -> tuple[LoadProbe, ...]:
        """The run's load probes, before and after its timing, as far as the file holds them."""
        return tuple(p for p in (self.load_probe, self.end_probe) if p is not None)

    @property
    def runtime_name(self) -> str | None:
        """``onnxruntime`` for an ONNX Runtime run, None for eager PyTorch."""
        return self.runtime.name if self.runtime is not None else None

    @property
    def size(self) -> str:
        """The input size as ``HxW``."""
        return "x".join(map(str, self.input))

    @property
    def setup_fields(self) -> dict[str, str]:
        """What besides the model and input changes the numbers (see `setup_fields`)."""
        return setup_fields(
            self.device.used,
            self.dtype,
            self.batch,
            self.channels_last,
            self.threads,
            self.settings.repeat,
            self.runtime_name,
            self.settings.allocator,
        )

    @property
    def setup(self) -> str:
        """`setup_fields` in words: ``cpu fp32 b1 nchw 2 threads 10 repeats``."""
        return " ".join(self.setup_fields.values())

    @property
    def file_name(self) -> str:
        """The run file's name `run_file_name` gives this run (`hda profile --out`)."""
        return run_file_name(
            run_stem(self.model),
            self.input,
            self.device.used,
            self.dtype,
            self.batch,
            self.channels_last,
            self.threads,
            self.settings.repeat,
            self.runtime_name,
            self.settings.allocator,
        )

    def out_of_range(self) -> str | None:
        """The first value no profile writes (a latency that is not positive, a negative layer
        time, an empty input or batch), or None."""
        if not (self.latency.median_s > 0 and math.isfinite(self.latency.median_s)):
            return f"latency.median_s must be a positive number, not {self.latency.median_s}"
        if min(self.input) < 1 or self.batch < 1 or self.threads < 1:
            return "input sides, batch and threads must be >= 1"
        if any(not layer.time_s >= 0 for layer in self.layers):
            return "a layer's time_s is negative"
        return None


@dataclass(frozen=True)
class RequestedDevice:
    """The device a failed run asked for."""

    requested: str


@dataclass(frozen=True)
class FailedRun(RunDocument):
    """A run that failed (out of memory, a model too small for its input): what was asked and
    why it failed; the sweep records it and goes on."""

    STATUS: ClassVar[str] = "failed"

    model: str
    input: tuple[int, int]
    batch: int
    dtype: str
    device: RequestedDevice
    failures: tuple[Failure, ...]
