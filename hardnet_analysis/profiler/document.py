"""The profile run file: what ``hda profile`` writes and ``correlate``/``report`` read.

A run file is ``{"format": "hda-profile-run", "version": 1, "status": "ok", ...}`` followed by
the fields of `ProfileRun` by name (a failed run, status ``failed``, holds those of
`FailedRun`). `ProfileRun.save`/`FailedRun.save` are the only writers and `read_run`/`load_run`
the only readers; a file of another format or version, or with a missing key, is a one-line
UsageError. Times are seconds, bytes are bytes, MACs and CIO are counts (CIO in elements).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json, read_json
from hardnet_analysis.profiler.devices import RooflinePoint
from hardnet_analysis.profiler.probe import Choice
from hardnet_analysis.records import check_header, decode, encode, omitted_if_none

FORMAT = "hda-profile-run"
VERSION = 1
ACCEPTED = f"accepted: format {FORMAT!r} version {VERSION} as `hda profile --out DIR` writes it"


def setup_fields(
    device: str, dtype: str, batch: int, channels_last: bool, threads: int, repeat: int
) -> dict[str, str]:
    """What besides the model and input changes a run's numbers, by name: the device actually
    used (a CUDA request that fell back is a ``cpu`` run), dtype, batch, layout, threads and
    repeat count, each in words (``cpu``, ``fp32``, ``b1``, ``nchw``, ``2 threads``, ...)."""
    return {
        "device": device,
        "dtype": dtype,
        "batch": f"b{batch}",
        "layout": "nhwc" if channels_last else "nchw",
        "threads": f"{threads} threads",
        "repeats": f"{repeat} repeats",
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
) -> str:
    """``STEM-HxW-DEVICE-DTYPE-bN[-nhwc]-tT-rR.json``: runs that differ in anything that
    changes their numbers (see `setup_fields`) get different files. DEVICE is the device used."""
    layout = "-nhwc" if channels_last else ""
    return f"{stem}-{hw[0]}x{hw[1]}-{device}-{dtype}-b{batch}{layout}-t{threads}-r{repeat}.json"


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


@dataclass(frozen=True)
class LoadProbe:
    """A short probe of how busy the machine is, taken before timing
    (`hardnet_analysis.profiler.quiet`): at `threads` threads, the seconds of one 384x384 fp32
    matmul and of one 16 MiB copy, and `cpu_share`, the process's CPU time over wall time x
    threads during the matmuls (1.0: every thread ran the whole time; 0.5: other processes held
    half the cores)."""

    threads: int
    matmul_s: float
    copy_s: float
    cpu_share: float


@dataclass(frozen=True)
class DeviceRecord:
    """The device asked for and used (``cpu``/``cuda``), why it fell back (or None), its name;
    CPU clocks in MHz, or a GPU's compute capability, memory bytes and SM count."""

    requested: str
    used: str
    fallback: str | None
    name: str
    mhz: tuple[float, ...] | None = omitted_if_none()
    capability: tuple[int, ...] | None = omitted_if_none()
    memory_bytes: int | None = omitted_if_none()
    sm_count: int | None = omitted_if_none()


@dataclass(frozen=True)
class RunSettings:
    """Untimed and timed forwards, whether cuDNN autotuned, the clock read, and the process."""

    warmup: int
    repeat: int
    cudnn_benchmark: bool
    clock: str
    pid: int
    argv: tuple[str, ...]


@dataclass(frozen=True)
class OpJoin:
    """How per-op times were taken (`hardnet_analysis.profiler.ops`): by `source`
    (``torch.profiler``) over `forwards` forwards; the profiled forward and the sum of every op
    event, each over the un-profiled forward (the profiler's cost, and the Python between ops
    that no op covers); the seconds per forward of op events that joined no graph node, by op
    name; and the graph nodes with work that joined no event."""

    source: str
    forwards: int
    profiled_ratio: float
    op_sum_ratio: float
    unjoined_events: Mapping[str, float]
    unjoined_nodes: tuple[str, ...]


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


@dataclass(frozen=True)
class ProfileRun:
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
        )

    def to_json(self) -> dict[str, Any]:
        """The run file's JSON object."""
        return {"format": FORMAT, "version": VERSION, "status": self.STATUS, **encode(self)}

    def save(self, path: str | Path) -> Path:
        """Write the run file to `path` atomically."""
        return atomic_write_json(path, self.to_json())


@dataclass(frozen=True)
class RequestedDevice:
    """The device a failed run asked for."""

    requested: str


@dataclass(frozen=True)
class FailedRun:
    """A run that failed (out of memory, a model too small for its input): what was asked and
    why it failed; the sweep records it and goes on."""

    STATUS: ClassVar[str] = "failed"

    model: str
    input: tuple[int, int]
    batch: int
    dtype: str
    device: RequestedDevice
    failures: tuple[Failure, ...]

    def to_json(self) -> dict[str, Any]:
        """The run file's JSON object."""
        return {"format": FORMAT, "version": VERSION, "status": self.STATUS, **encode(self)}

    def save(self, path: str | Path) -> Path:
        """Write the run file to `path` atomically."""
        return atomic_write_json(path, self.to_json())


def read_run(document: Any, where: str) -> ProfileRun | FailedRun:
    """The run in the JSON `document` of the file `where` names (``run file 'x.json'``)."""
    check_header(document, where, "hda profile run", FORMAT, VERSION)
    status = document.get("status")
    if status == ProfileRun.STATUS:
        run: ProfileRun = decode(ProfileRun, document, where, ACCEPTED)
        problem = _out_of_range(run)
        if problem:
            raise UsageError(f"{where}: {problem}; {ACCEPTED}")
        return run
    if status == FailedRun.STATUS:
        return decode(FailedRun, document, where, ACCEPTED)
    raise UsageError(f"{where}: status {status!r} is neither 'ok' nor 'failed'; {ACCEPTED}")


def _out_of_range(run: ProfileRun) -> str | None:
    """The first value no profile writes (a latency that is not positive, a negative layer
    time, an empty input or batch), or None."""
    if not (run.latency.median_s > 0 and math.isfinite(run.latency.median_s)):
        return f"latency.median_s must be a positive number, not {run.latency.median_s}"
    if min(run.input) < 1 or run.batch < 1 or run.threads < 1:
        return "input sides, batch and threads must be >= 1"
    if any(not layer.time_s >= 0 for layer in run.layers):
        return "a layer's time_s is negative"
    return None


def load_run(path: str | Path) -> ProfileRun | FailedRun:
    """The run file at `path`; a missing, unparsable or foreign file is a one-line UsageError."""
    return read_run(read_json(path, "run file"), f"run file {str(path)!r}")
