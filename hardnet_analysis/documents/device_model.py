"""The device model: what ``hda calibrate`` writes and ``hda predict`` reads.

A file holds one model per thread count (`DeviceModels`): ``{"format": "hda-device-model",
"version": 2, "models": [{"device": "cpu", "machine": {...}, "threads": 1, "versions": {...},
"cache_bytes": ..., "kinds": [...], "fit": {...}, "samples": [...]}, {... "threads": 2 ...}]}``;
version 1 files hold one model at the top level and read as a file of one. Each thread count
has its own fit: how an op speeds up with threads depends on its kind and size (torch runs an
op of fewer than 32,768 elements on one thread, and a parallel region has a fixed cost), which
a kind's overhead and rates at that count absorb.

Every op is of one *kind* (``metrics.op_kinds.op_kind``: dense k x k conv, 1x1 conv,
depthwise, grouped, linear, matmul, BN, elementwise, transcendental activations, GELU, norm,
max/average/global pooling, concat, copy, view). A kind's time for one op is

    t = overhead_s + combine(work * flop_s, dram_bytes * dram_byte_s, bytes * cache_byte_s)

where combine is ``max`` (a roofline: the slowest resource bounds the op) or ``sum`` (a blend:
the resources do not overlap), chosen per kind by leave-one-out error on the micro-benchmarks,
as is, for convs with groups, whether the overhead is paid once per op or once per group.
`work` is the FLOPs (2 x MACs), or the window taps of a pooling op (``op_kinds.op_work``),
`dram_bytes` the cache-aware estimate (``metrics.cache``) through `cache_bytes`, `bytes` the
unfused bytes read + written (traffic through the cache hierarchy).
The coefficients are seconds per unit: 1 / flop_s is the kind's attainable FLOP/s. E.g. a conv
kind with overhead 5e-6 s, flop_s 2e-11 (50 GFLOP/s), dram_byte_s 1e-10 (10 GB/s), cache_byte_s
2e-11 (50 GB/s), max form, on a 3x3 conv of 115.6 M MACs moving 1.2 MB all from DRAM: 5e-6 +
max(4.62e-3, 1.2e-4, 2.4e-5) = 4.63 ms, compute-bound.

`DeviceModels` is the file (`hardnet_analysis.documents.base.Document`): ``write`` is the only
writer and ``read`` the only reader (``DeviceModel.read`` reads one thread count's model).
The fits that make one are ``metrics.fit_device``'s, the predictions ``metrics.predict``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import isfinite
from pathlib import Path
from typing import Any, ClassVar, Literal

from hardnet_analysis.documents.base import Document
from hardnet_analysis.documents.context_fit import ContextFit
from hardnet_analysis.documents.machine import Controls, DeviceRecord, LoadProbe
from hardnet_analysis.documents.records import decode, omitted_if_none
from hardnet_analysis.errors import UsageError

#: The runtimes a device model is calibrated for: eager PyTorch (one op, one kernel) and ONNX
#: Runtime (its CPU fusions: ``metrics.fusion``).
RUNTIMES = ("torch", "onnxruntime")

#: The kind whose coefficients stand in for a kind the device model lacks.
FALLBACK = {
    "conv_grouped": "conv_kxk",
    "conv_dw": "conv_grouped",
    "conv_1x1": "conv_kxk",
    "conv_nchw": "conv_kxk",
    # Files calibrated before grouped convs on oneDNN's GEMM path were told apart.
    "conv_grouped_gemm": "conv_grouped",
    # PyTorch's own path and oneDNN's stand in for each other where a grid timed one only:
    # at one thread, batch 1, every stride-1 1x1 conv takes PyTorch's path.
    "conv_1x1_gemm": "conv_1x1",
    "conv_kxk_gemm": "conv_kxk",
    "conv_kxk": "conv_kxk_gemm",
    "conv_dw_nchw": "conv_dw",
    # Files calibrated before padded depthwise convs were told apart.
    "conv_dw_padded": "conv_dw",
    # Files calibrated before grouped convs in oneDNN's narrowest layout were told apart.
    "conv_grouped_narrow": "conv_grouped",
    # Files calibrated before strided 1x1 convs had micro-benchmarks of their own.
    "conv_1x1_strided": "conv_1x1",
    "matmul": "linear",
    "norm": "eltwise",
    "transcendental": "eltwise",
    # Files calibrated before GELU had micro-benchmarks of its own.
    "gelu": "transcendental",
    "copy": "eltwise",
    "concat": "copy",
    # Files calibrated before resampling was a kind of its own.
    "resize": "copy",
    "max_pool": "pool",
    "avg_pool": "pool",
    "global_pool": "pool",
    # "pool", one kind for all pooling, is what device models before the split hold.
    "pool": "eltwise",
    "bn": "eltwise",
}


def padded(channels: int, block: int) -> int:
    """`channels` rounded up to a multiple of `block`, as a blocked memory layout stores them
    (oneDNN's nChw16c for fp32 on AVX-512: 20 -> 32), except fewer than `block` channels,
    which such libraries keep in a plain layout (a stem's 3 input channels stay 3)."""
    return channels if channels < block else -(-channels // block) * block


def padded_work(work: float, channels: tuple[int, int], block: int, out_block: int = 0) -> float:
    """`work` of a conv with `channels` (input per group, output) once the input channels are
    `padded` to `block` and the output channels to `out_block` (0: `block`): a 3x3 conv
    20 -> 24 at block 16 computes 32 x 32 channels, 2.13x its FLOPs; a depthwise conv of 40
    channels computes 48, 1.2x; a conv 102 -> 40 at blocks (8, 32) computes 104 x 64, 1.63x."""
    c_in, c_out = channels
    if not c_in:
        return work
    return work * padded(c_in, block) / c_in * padded(c_out, out_block or block) / c_out


Form = Literal["max", "sum"]
TERMS = ("compute", "dram", "cache")


@dataclass(frozen=True)
class KindModel:
    """One kind's fitted time model (see the module docstring): overhead (s), seconds per unit of
    work (`flop_s`: per FLOP, per window tap for pooling), per DRAM byte and per byte through the
    cache, the `form` chosen, the number of micro-benchmarks `n`, and the mean |relative error|
    of the fit (`train_error`) and leave-one-out for each form (`loo_max`, `loo_sum`)."""

    kind: str
    form: Form
    overhead_s: float
    flop_s: float
    dram_byte_s: float
    cache_byte_s: float
    n: int
    train_error: float
    loo_max: float
    loo_sum: float
    #: Input channels are counted padded to multiples of this (`padded_work`, conv kinds);
    #: 1: not.
    channel_block: int = 1
    #: The overhead is paid once per group of a conv, not once per op: ONNX Runtime runs a
    #: depthwise conv off NCHWc as one small GEMM per channel (0.6 us each at 1 thread on a
    #: 2-core AMD EPYC; a 462-channel one at 7x7 takes 411 us). Chosen per kind by
    #: leave-one-out error, as the form is; False in older files.
    overhead_per_group: bool = False
    #: Output channels are counted padded to multiples of this; 0 (older files): as the input.
    #: oneDNN splits a blocked conv's output channels among threads in units of two blocks:
    #: on a 2-core AMD EPYC (block 8), a 3x3 conv 102 -> 40, 48, 56 or 64 at 56x56 takes
    #: 4.96-5.46 ms at 2 threads, 72 or 80 7.2-7.3 ms, 32 2.65 ms: steps of 32 = 2 x 8 x 2
    #: threads (`results/channel-blocks/steps.json`).
    out_block: int = 0

    @property
    def blocks(self) -> tuple[int, int]:
        """(input, output) channel blocks (`padded_work`)."""
        return self.channel_block, self.out_block or self.channel_block

    def terms(self, work: float, dram_bytes: float, nbytes: float) -> dict[str, float]:
        """Seconds of each resource term for one op of `work` units (`op_work`)."""
        values = (work * self.flop_s, dram_bytes * self.dram_byte_s, nbytes * self.cache_byte_s)
        return dict(zip(TERMS, values, strict=True))

    def time(
        self, work: float, dram_bytes: float, nbytes: float, groups: int = 1
    ) -> tuple[float, str]:
        """Predicted seconds of one op (of `groups` groups, for `overhead_per_group`) and its
        bound (``compute``, ``dram``, ``cache`` or ``overhead``: the largest share)."""
        return self.time_of(self.terms(work, dram_bytes, nbytes), groups)

    def overhead(self, groups: int = 1) -> float:
        """Seconds of fixed cost of one op of `groups` groups."""
        return self.overhead_s * (groups if self.overhead_per_group else 1)

    def time_of(self, terms: Mapping[str, float], groups: int = 1) -> tuple[float, str]:
        """`time` from the op's resource `terms` (as `terms` returns them)."""
        body = max(terms.values()) if self.form == "max" else sum(terms.values())
        top = max(terms, key=lambda k: terms[k])
        fixed = self.overhead(groups)
        bound = top if terms[top] > fixed else "overhead"
        return fixed + body, bound


@dataclass(frozen=True)
class Sample:
    """One micro-benchmark: its kind and label, MACs, unfused bytes, the DRAM bytes estimated at
    the chosen cache size, the bytes its rotated pool of inputs spans (``pool_bytes``) and
    those its outputs rotate through (``output_span``; together above the cache, every byte
    moves through DRAM: ``metrics.fit_device.steady_dram``), measured and fitted seconds."""

    kind: str
    label: str
    macs: int
    bytes: int
    dram_bytes: int
    pool_bytes: int
    time_s: float
    predicted_s: float
    #: 0 in files calibrated before the outputs' blocks were counted.
    output_span: int = 0


@dataclass(frozen=True)
class CacheChoice:
    """A cache capacity tried (bytes), where it comes from, and the leave-one-out mean |relative
    error| over all micro-benchmarks with it."""

    cache_bytes: int
    source: str
    loo_error: float


@dataclass(frozen=True)
class FitSummary:
    """Over all micro-benchmarks: count, mean |relative error| fitted and leave-one-out, the
    share within +-10% leave-one-out, and the seconds the calibration took."""

    n: int
    train_error: float
    loo_error: float
    loo_within_10pct: float
    seconds: float


@dataclass(frozen=True)
class DeviceModel:
    """A calibrated device (see the module docstring)."""

    device: str
    machine: DeviceRecord
    threads: int
    clock: str
    dtype: str
    versions: Mapping[str, str]
    cache_bytes: int
    cache_choices: tuple[CacheChoice, ...]
    kinds: tuple[KindModel, ...]
    fit: FitSummary
    samples: tuple[Sample, ...]
    created: str
    #: None in files written before the context fit, and with ``hda calibrate --models none``.
    context: ContextFit | None = omitted_if_none()  # noqa: RUF009 (a field(), not a value)
    #: How busy the machine was when the calibration started (`profiler.quiet`); runs scored
    #: with this model are compared with it. None in older files.
    load_probe: LoadProbe | None = omitted_if_none()  # noqa: RUF009
    #: The same probe at the end of the calibration (None in older files).
    end_probe: LoadProbe | None = omitted_if_none()  # noqa: RUF009
    #: The same probe at even points through the calibration (``profiler.calibrate.
    #: SPEED_PROBES``; empty in older files): with the start and end ones, the speed the
    #: benchmarks ran at (`probes`).
    speed_probes: tuple[LoadProbe, ...] = ()
    #: The speed controls (``profiler.pace``) taken at the calibration's start and beside its
    #: speed probes: their median is the speed a paced run's timing is scaled to
    #: (`machine.pace_ratio`). None in older files.
    controls: Controls | None = omitted_if_none()  # noqa: RUF009
    #: What ran the benchmarks and networks (`RUNTIMES`): ``onnxruntime`` predicts ONNX
    #: Runtime's fused kernels; files written before it read as ``torch``.
    runtime: str = "torch"
    #: For ONNX Runtime: the channel block of its NCHWc conv layout on this CPU (8 with AVX2,
    #: 16 with AVX-512; 0: it runs every conv in NCHW) and the step its input channels take
    #: (``metrics.conv_paths.nchwc_path``), which decide each conv's kernel.
    nchwc_block: int = 0
    nchwc_step: int = 0
    #: For PyTorch: the channels per group oneDNN's JIT grouped convs take multiples of on
    #: this CPU (8 on an AVX2 AMD EPYC, 4 on an AVX-512 Intel Xeon;
    #: ``metrics.conv_paths.onednn_gemm_path``); 0 in older files and off oneDNN: no grouped
    #: conv is told apart.
    onednn_block: int = 0
    #: For PyTorch: the largest input (elements) of a dense conv it runs on its own im2col
    #: and GEMM instead of oneDNN (20,480; ``metrics.conv_paths.torch_native_path``); 0 in
    #: older files and off oneDNN: every conv is taken for oneDNN's.
    native_limit: int = 0
    #: For PyTorch: the channel block of oneDNN's blocked layout for dense convs, the fp32
    #: vector width (8 with AVX2, 16 with AVX-512), to which a conv's channels are padded
    #: (``metrics.conv_paths.ConvPaths.channel_blocks``); 0 in older files: `onednn_block`.
    onednn_layout_block: int = 0

    @property
    def nchwc(self) -> tuple[int, int]:
        """(`nchwc_block`, `nchwc_step`)."""
        return self.nchwc_block, self.nchwc_step

    def probes(self) -> tuple[LoadProbe, ...]:
        """The calibration's load probes, start, through and end, as far as the file holds
        them: their geometric mean is the speed its fits stand for (`machine.speed_ratio`)."""
        ends = (self.load_probe, *self.speed_probes, self.end_probe)
        return tuple(p for p in ends if p is not None)

    def kind(self, name: str) -> KindModel:
        """The model of kind `name`, or of its fallback (`FALLBACK`) when it was not fitted."""
        table = {k.kind: k for k in self.kinds}
        seen, tried = name, {name}
        while seen not in table and FALLBACK.get(seen, seen) not in tried:
            seen = FALLBACK[seen]
            tried.add(seen)
        if seen not in table:
            raise UsageError(f"the device model has no fit for op kind {name!r} or a fallback")
        return table[seen]

    def op_time(
        self,
        kind: str,
        work: float,
        dram_bytes: float,
        nbytes: float,
        channels: tuple[int, int] = (0, 0),
        groups: int = 1,
    ) -> tuple[float, str]:
        """Predicted seconds of one op of `kind` inside a network's forward (its kind's time at
        its work padded to the kind's channel block, then the context fit) and its bound
        (`KindModel.time`; ``overhead`` when the context's per-op cost is the larger share)."""
        model = self.kind(kind)
        work = padded_work(work, channels, *model.blocks)
        terms = model.terms(work, dram_bytes, nbytes)
        isolated, bound = model.time_of(terms, groups)
        if self.context is None:
            return isolated, bound
        factor = self.context.factor(kind, isolated, work, nbytes)
        if kind != "view" and self.context.op_s > factor * max(terms.values()):
            bound = "overhead"
        seconds = isolated if kind == "view" else factor * isolated + self.context.op_s
        return seconds, bound

    @classmethod
    def read(cls, path: str | Path, threads: int | None = None) -> DeviceModel:
        """The model for `threads` in the device model file at `path` (`DeviceModels.at`)."""
        return DeviceModels.read(path).at(threads)

    def out_of_range(self) -> str | None:
        """The first value no calibration writes (a negative rate, scale or size, a kind
        fitted twice), or None: a hand-edited file that would predict negative or meaningless
        times is refused on load."""
        kinds = [k.kind for k in self.kinds]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            return f"kind {twice[0]!r} is fitted twice"
        if self.runtime not in RUNTIMES:
            return f"runtime {self.runtime!r} is none of {', '.join(RUNTIMES)}"
        probed = (*self.nchwc, self.onednn_block, self.native_limit, self.onednn_layout_block)
        if self.threads < 0 or self.cache_bytes <= 0 or min(probed) < 0:
            return (
                "threads, the nchwc fields, onednn_block, native_limit and onednn_layout_block "
                "must be >= 0 and cache_bytes > 0"
            )
        for k in self.kinds:
            rates = (k.overhead_s, k.flop_s, k.dram_byte_s, k.cache_byte_s)
            if not all(isfinite(v) and v >= 0 for v in rates) or min(k.blocks) < 1:
                return f"kind {k.kind!r} has a negative or infinite rate or a channel block below 1"
        context = self.context
        if context is not None and not (context.scale > 0 and context.op_s >= 0):
            return "the context fit's scale must be > 0 and its op_s >= 0"
        return None


@dataclass(frozen=True)
class DeviceModels(Document):
    """A device model file: one `DeviceModel` per thread count of one device, fewer threads
    first (a GPU's: one, at threads 0). Version 1 files hold one model at the top level."""

    FORMAT: ClassVar[str] = "hda-device-model"
    VERSION: ClassVar[int] = 2
    READS: ClassVar[tuple[int, ...]] = (1,)
    FILE: ClassVar[str] = "device model"
    WHAT: ClassVar[str] = "hda device model"
    WRITER: ClassVar[str] = "`hda calibrate --out FILE`"

    models: tuple[DeviceModel, ...]

    def counts(self) -> tuple[int, ...]:
        """The thread counts held, e.g. ``(1, 2)``."""
        return tuple(m.threads for m in self.models)

    def at(self, threads: int | None = None) -> DeviceModel:
        """The model for `threads`. None: the count torch uses in this process when the file
        holds it, else the file's only model; a count the file lacks is a UsageError naming
        those it holds. A device without CPU threads (threads 0) answers any count."""
        if len(self.models) == 1 and (threads is None or self.models[0].threads in (0, threads)):
            return self.models[0]
        if threads is None:
            import torch  # only to pick a count: reading a document needs no torch

            threads = torch.get_num_threads()
        for model in self.models:
            if model.threads == threads:
                return model
        held = ", ".join(map(str, self.counts()))
        raise UsageError(
            f"the device model holds threads {held}, not {threads}; accepted: --threads "
            f"{' or '.join(map(str, self.counts()))} (or calibrate with --threads {threads})"
        )

    def closest(self, threads: int) -> DeviceModel:
        """The model for `threads`, or the one nearest to it (ties: fewer threads)."""
        return min(self.models, key=lambda m: (abs(m.threads - threads), m.threads))

    @classmethod
    def decode_fields(cls, document: dict[str, Any], where: str, version: int) -> DeviceModels:
        """The models of `document`; a version 1 file is its one model at the top level."""
        if version == 1:
            return DeviceModels((decode(DeviceModel, document, where, cls.accepted()),))
        return decode(cls, document, where, cls.accepted())

    def out_of_range(self) -> str | None:
        """The first problem no calibration writes (`DeviceModel.out_of_range`, no model, a
        thread count twice or models of several devices), or None."""
        counts = self.counts()
        if not counts or len(set(counts)) < len(counts):
            return "models must hold each thread count once, at least one"
        if len({m.device for m in self.models}) > 1:
            return "models must be of one device"
        if len({m.runtime for m in self.models}) > 1:
            return "models must be of one runtime"
        for model in self.models:
            problem = model.out_of_range()
            if problem:
                return f"threads {model.threads}: {problem}"
        return None
