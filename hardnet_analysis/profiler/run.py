"""`profile_model`: time a model and its layers, join the graph metrics and counters, and return
the run (what ``hda profile`` saves as JSON).

The run (`ProfileRun`, ``documents.profile_run``) holds the model, its definition (for
definitions), the device (requested, used, name, fallback), versions, threads and clocks, the
settings, whole-model latency (median and spread over the repeats), totals (params, MACs, CIO,
modeled bytes unfused and fused), measured DRAM bytes with their source (or None), and one
record per layer key (see ``latency``): time, its graph nodes and their metrics, roofline.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import nn

from hardnet_analysis.analysis import analyze
from hardnet_analysis.backends import Backend, Clock, check_thread_time, pick, specs
from hardnet_analysis.documents.machine import LoadProbe, Pace, busy_warning
from hardnet_analysis.documents.profile_run import (
    Choice,
    DramBytes,
    OpJoin,
    ProfiledLayer,
    ProfiledTotals,
    ProfileRun,
    RooflineSpec,
    RunSettings,
    SubnormalInputs,
)
from hardnet_analysis.families.serialize import to_dict
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.traffic import NodeTraffic, traffic
from hardnet_analysis.models import create_model
from hardnet_analysis.profiler.allocator import (
    RESERVE_LIMIT,
    FaultCount,
    fault_warning,
    kept_memory,
)
from hardnet_analysis.profiler.dram import DramResult, measure_dram
from hardnet_analysis.profiler.environment import versions
from hardnet_analysis.profiler.latency import ROOT, Stats, time_forward
from hardnet_analysis.profiler.ops import OpTimes, graph_nodes, node_times, profile_forwards
from hardnet_analysis.profiler.pace import Control, controls_of, pace_of, time_paced
from hardnet_analysis.profiler.probe import probe
from hardnet_analysis.profiler.quiet import probe_load
from hardnet_analysis.profiler.subnormals import subnormal_inputs, subnormal_warning
from hardnet_analysis.resolve import ModuleSpec, resolve
from hardnet_analysis.shapes import InputShape

#: Where progress lines go (``hda profile`` prints them to stderr).
Log = Callable[[str], None]

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: The input a `Settings` left at its default profiles: one 224x224 RGB image.
DEFAULT_INPUT = InputShape.of_image(224)


@dataclass(frozen=True)
class Settings:
    """How to profile: device (a backend's name, `hardnet_analysis.backends`), the input (one
    NCHW image, batch and channels included, or an ONNX file's inputs whose first is that image:
    ``hda profile`` builds it with the model's channels, `resolve.input_shape_of`), dtype,
    layout, warm-up and repeats, CPU threads, counter source (``auto``, ``none``, ``ncu``,
    ``nvprof``, ``perf``), whether a device that cannot run here is an error (`strict_device`)
    rather than a fall-back to the CPU, the runtime (``torch``, eager; ``onnxruntime``:
    `profiler.run_ort`) and the C allocator's state on a CPU (``kept`` or ``default``:
    `documents.profile_run.ALLOCATORS`)."""

    device: str = "cpu"
    input: InputShape = DEFAULT_INPUT
    dtype: str = "fp32"
    channels_last: bool = False
    warmup: int = 2
    repeat: int = 10
    threads: int | None = None
    counters: str = "auto"
    strict_device: bool = False
    thread_time: bool = False
    runtime: str = "torch"
    allocator: str = "kept"


def prepare(
    model: str, shape: InputShape, dtype: str, channels_last: bool, device: torch.device
) -> tuple[nn.Module, torch.Tensor]:
    """The model in eval mode on `device` at `dtype`, and a random input of `shape`."""
    return convert(create_model(model), shape, dtype, channels_last, device)


def convert(
    module: nn.Module, shape: InputShape, dtype: str, channels_last: bool, device: torch.device
) -> tuple[nn.Module, torch.Tensor]:
    """`module` in eval mode moved to `device`, `dtype` and layout, and a random input of
    `shape` (its one NCHW image)."""
    module = module.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module = module.to(device=device, dtype=TORCH_DTYPES[dtype]).to(memory_format=fmt)
    x = torch.randn(shape.image, device=device, dtype=TORCH_DTYPES[dtype])
    return module, x.contiguous(memory_format=fmt)


def layer_of_node(name: str, leaves: set[str], containers: set[str]) -> str | None:
    """The layer key whose time covers graph node `name`: the node itself for a leaf module's
    call (``layer1.0.relu:2``), the owning container's path for ops in a container's forward
    (``base.3.cat:1`` -> ``base.3``; ``flatten`` -> ``(model)``), None for graph boundaries."""
    base = name.split(":", 1)[0]
    if base in leaves:
        return name
    owner = base.rsplit(".", 1)[0] if "." in base else ""
    if owner in containers:
        return owner or ROOT
    return None


def roofline_spec(backend: Backend, device: torch.device) -> specs.DeviceSpec:
    """The roofline ceilings of `device`, from its backend (a table entry or a probe)."""
    return backend.roofline(device)


class NodeMetrics(Protocol):
    """What a layer key sums of each graph node it covers (a record of `Analysis.layers`)."""

    @property
    def name(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def params(self) -> int: ...
    @property
    def macs(self) -> int: ...
    @property
    def cio(self) -> int: ...


@dataclass
class _LayerSums:
    """The graph nodes a layer key covers and their summed metrics (filled node by node)."""

    nodes: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    cio: int = 0
    model_bytes: int = 0
    model_fused_bytes: int = 0

    def add(self, record: NodeMetrics, flow: NodeTraffic) -> None:
        self.nodes.append(record.name)
        if record.op not in self.ops:
            self.ops.append(record.op)
        self.params += record.params
        self.macs += record.macs
        self.cio += record.cio
        self.model_bytes += flow.bytes
        self.model_fused_bytes += flow.fused_bytes


def _layer_sums(
    analysis: Analysis, leaves: set[str], containers: set[str], dtype: str
) -> dict[str, _LayerSums]:
    """Per layer key, in the order the keys first ran, the graph nodes whose time it holds
    (see `layer_of_node`), summed."""
    flow = traffic(analysis.graph, dtype).by_name()
    sums: dict[str, _LayerSums] = {}
    for record in sorted(analysis.layers, key=lambda r: analysis.graph.nodes[r.name]["order"]):
        if record.op in ("input", "output"):
            continue
        owner = layer_of_node(record.name, leaves, containers)
        if owner is not None:
            sums.setdefault(owner, _LayerSums()).add(record, flow[record.name])
    return sums


def _layer_samples(ops: OpTimes, sums: dict[str, _LayerSums]) -> dict[str, list[float]]:
    """Per layer key, its nodes' profiled seconds summed, one sample per profiled forward (keys
    none of whose nodes joined an op event are left out)."""
    samples: dict[str, list[float]] = {}
    for times in ops.per_forward:
        for key, acc in sums.items():
            timed = [times[n] for n in acc.nodes if n in times]
            if timed:
                samples.setdefault(key, []).append(sum(timed))
    return samples


def _layers(
    ops: OpTimes,
    sums: dict[str, _LayerSums],
    leaves: set[str],
    dram: dict[str, DramBytes],
    roof: tuple[specs.DeviceSpec, str],
) -> tuple[ProfiledLayer, ...]:
    """One record per layer key: time stats (its nodes' op times, summed per forward), its
    nodes' median times, graph nodes and their summed metrics, measured DRAM bytes (ncu), and
    the roofline point of `roof` (spec, dtype) at the bytes moved: measured where there are
    counts, modeled otherwise."""
    out = []
    for key, times in _layer_samples(ops, sums).items():
        stats, acc, measured = Stats.of(times), sums[key], dram.get(key)
        moved = acc.model_bytes if measured is None else int(measured.total)
        out.append(
            ProfiledLayer(
                name=key,
                kind="layer" if key.split(":", 1)[0] in leaves else "self",
                time_s=stats.median,
                time_p25_s=stats.p25,
                time_p75_s=stats.p75,
                nodes=tuple(acc.nodes),
                ops=tuple(acc.ops),
                params=acc.params,
                macs=acc.macs,
                cio=acc.cio,
                model_bytes=acc.model_bytes,
                model_fused_bytes=acc.model_fused_bytes,
                dram=measured,
                roofline=specs.roofline(acc.macs, moved, *roof),
                node_times={n: ops.node_s[n] for n in acc.nodes if n in ops.node_s},
                node_paced=(
                    {n: ops.node_paced[n] for n in acc.nodes if n in ops.node_paced}
                    if ops.controls
                    else None
                ),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class _Measured:
    """What timing and counters gave: whole-model stats, the ops' times joined to the graph's
    nodes, the counter source chosen and the DRAM bytes it measured."""

    whole: Stats
    ops: OpTimes
    choice: Choice
    dram: DramResult
    end_probe: LoadProbe | None = None
    subnormals: tuple[SubnormalInputs, ...] | None = None
    pace: Pace | None = None
    page_faults: float | None = None


def _measure(net: nn.Module, x: torch.Tensor, analysis: Analysis, run: _Run, say: Log) -> _Measured:
    """Time `net` on `x` whole (un-profiled) and per op (``torch.profiler``, no hooks: see
    `hardnet_analysis.profiler.ops`), then read the DRAM counters that work here."""
    device, backend, settings = x.device, run.backend, run.settings
    clock = backend.clock(settings.thread_time)
    forward = FaultCount(lambda: net(x))
    # the speed control beside every timed and profiled forward, where kernels run on the CPU
    control = Control(clock) if backend.cpu_threads else None
    reserve = min(2 * analysis.totals.act_bytes, RESERVE_LIMIT)
    kept = backend.thread_time and settings.allocator == "kept"  # a CPU backend: glibc's heap
    with kept_memory(reserve) if kept else nullcontext(), torch.inference_mode():
        whole, pace = _timed(forward, clock, control, run)
        end = _load(backend, run.threads, settings.thread_time, say)  # brackets the timing
        forwards, walls, controls = profile_forwards(forward, settings.repeat, backend, control)
        nodes = graph_nodes(analysis.graph)
        ops = node_times(nodes, forwards, walls, whole.median, controls)
        say(_join_line(ops, len(nodes)))
        faults = forward.per_call(settings.warmup, settings.repeat) if backend.cpu_threads else None
        warning = fault_warning(faults, settings.allocator) if faults is not None else None
        if warning:
            say(f"warning: {warning}")
        choice = probe(backend, backend.capability(device), settings.counters)
        say(choice.summary())
        dram = measure_dram(choice, run.model, settings, forward)
    # after every timing: counting every op's inputs takes several forwards' time
    subnormals = subnormal_inputs(net, forward) if backend.cpu_threads else None
    warning = subnormal_warning(subnormals or ())
    if warning:
        say(f"warning: {warning}")
    return _Measured(whole, ops, choice, dram, end, subnormals, pace, faults)


def _timed(
    forward: Callable[[], object], clock: Clock, control: Control | None, run: _Run
) -> tuple[Stats, Pace | None]:
    """The whole-model timing: paced by speed controls (`profiler.pace`) where there is a
    `control`, plain on `clock` otherwise."""
    settings = run.settings
    if control is None:
        return Stats.of(time_forward(forward, clock, settings.warmup, settings.repeat)), None
    samples, controls = time_paced(forward, control, settings.warmup, settings.repeat)
    return Stats.of(samples), pace_of(samples, controls, run.threads, settings.thread_time)


def _set_up(settings: Settings, backend: Backend) -> int:
    """Set the backend up for the run (threads, autotuning); returns the thread count."""
    if settings.thread_time:
        check_thread_time(backend, settings.threads or torch.get_num_threads())
    return backend.prepare(settings.threads)


def run_size(shape: InputShape) -> tuple[tuple[int, int], int]:
    """The (H, W) and batch a run file records of `shape` (`ProfileRun.input` and ``batch``,
    and its name): those of its first input, one NCHW image. ``hda profile`` runs one image, or
    an ONNX file's inputs, whose first is the image ``--input`` sizes; the others ride along."""
    first = InputShape((shape.shapes[0],), (shape.dtypes[0],))
    return first.hw, first.batch


def check_input(model: str, shape: InputShape) -> None:
    """A ShapeError when `shape` is too small for `model`, worded as under `hda cio`, for a model
    with a definition (its analytic graph takes milliseconds; a module fails when traced)."""
    if not isinstance(resolve(model), ModuleSpec):
        analyze(model, shape)


def profile_model(model: str, settings: Settings, log: Log | None = None) -> ProfileRun:
    """Profile `model` (anything `resolve` takes) and return the run (see the module
    docstring); `log` gets progress lines (the device fall-back, the counter source)."""
    say: Log = log or (lambda message: None)
    picked = pick(settings.device, settings.strict_device)
    device, fallback = picked.device, picked.fallback
    if fallback:
        say(f"warning: {picked.warning(settings.device)}")
    threads = _set_up(settings, picked.backend)
    shape = settings.input
    check_input(model, shape)
    module = create_model(model).eval()
    # Trace before the dtype/device change: the tracer's meta input is fp32.
    analysis = analyze(module, shape, dtype=settings.dtype)
    s = settings
    net, x = convert(module, shape, s.dtype, s.channels_last, device)
    leaves = {p for p, m in net.named_modules() if next(m.children(), None) is None}
    containers = {p for p, m in net.named_modules()} - leaves
    run = _Run(model, settings, picked.backend, device, fallback, threads, _definition(net))
    load = _load(picked.backend, threads, s.thread_time, say)
    measured = _measure(net, x, analysis, run, say)
    sums = _layer_sums(analysis, leaves, containers, s.dtype)
    spec = roofline_spec(picked.backend, device)
    layers = _layers(measured.ops, sums, leaves, measured.dram.layers, (spec, s.dtype))
    document = run.document(analysis, measured, layers, spec)
    return replace(
        document,
        load_probe=load,
        end_probe=measured.end_probe,
        subnormals=measured.subnormals,
        pace=measured.pace,
        page_faults=measured.page_faults,
    )


def _load(backend: Backend, threads: int, thread_time: bool, say: Log) -> LoadProbe | None:
    """How busy the CPU is now and how fast it runs (`profiler.quiet`, on the run's clock),
    with a warning when it is busy: for backends whose kernels run on the CPU's threads (None
    for the others)."""
    if not backend.cpu_threads:
        return None
    load = probe_load(threads, thread_time)
    message = busy_warning(load)
    if message:
        say(f"warning: {message}")
    return load


@dataclass(frozen=True)
class _Run:
    """What was asked and what ran: the model, settings, backend and device (and why it fell
    back), threads and the model's definition (None for models without one)."""

    model: str
    settings: Settings
    backend: Backend
    device: torch.device
    fallback: str | None
    threads: int
    definition: Any

    def document(
        self,
        analysis: Analysis,
        measured: _Measured,
        layers: tuple[ProfiledLayer, ...],
        spec: specs.DeviceSpec,
    ) -> ProfileRun:
        """The run record joining the graph metrics, timings, counters and roofline."""
        s, flow = self.settings, traffic(analysis.graph, self.settings.dtype)
        totals = analysis.totals
        layer_sum = sum(layer.time_s for layer in layers)
        unhandled = {u.op for u in analysis.unhandled}
        unhandled |= {analysis.graph.nodes[n]["op"] for n in flow.unhandled}
        hw, batch = run_size(s.input)
        return ProfileRun(
            model=self.model,
            definition=_definition_dict(self.definition),
            input=hw,
            batch=batch,
            dtype=s.dtype,
            channels_last=s.channels_last,
            device=self.backend.record(s.device, self.device, self.fallback),
            threads=self.threads,
            versions=versions(),
            settings=self.run_settings(),
            latency=measured.whole.timing(),
            layer_sum_s=layer_sum,
            layer_sum_ratio=layer_sum / measured.whole.median,
            totals=ProfiledTotals(
                totals.params,
                totals.macs,
                totals.cio,
                totals.act_bytes,
                flow.bytes,
                flow.fused_bytes,
            ),
            unhandled_ops=tuple(sorted(unhandled)),
            counters=measured.choice,
            dram=measured.dram.total,
            roofline=RooflineSpec(spec.name, spec.bandwidth, spec.peak_flops, spec.source),
            layers=layers,
            failures=measured.dram.failures,
            ops=op_join(measured.ops, "torch.profiler", self.threads, s.thread_time),
        )

    def run_settings(self) -> RunSettings:
        s, backend = self.settings, self.backend
        clock = backend.clock_name(s.thread_time)
        argv = tuple(sys.argv)
        allocator = s.allocator if backend.cpu_threads else None
        return RunSettings(
            s.warmup, s.repeat, backend.autotunes(), clock, os.getpid(), argv, allocator
        )


def _join_line(ops: OpTimes, nodes: int) -> str:
    """``per-op times: 210 of 210 nodes joined (torch.profiler, 5 forwards); ...``."""
    line = (
        f"per-op times: {len(ops.node_s)} of {nodes} nodes joined (torch.profiler, "
        f"{ops.forwards} forwards); ops cover {ops.op_sum_ratio:.2f} of the un-profiled "
        f"forward, the profiled forward takes {ops.profiled_ratio:.2f}x"
    )
    if ops.unjoined_events:
        share = ops.unjoined_s / ops.forward_s
        line += f"; {len(ops.unjoined_events)} op names joined no node ({share:.1%} of it)"
    if ops.unjoined_nodes:
        line += f"; {len(ops.unjoined_nodes)} nodes got no op (e.g. {ops.unjoined_nodes[0]})"
    return line


def op_join(ops: OpTimes, source: str, threads: int, thread_time: bool) -> OpJoin:
    """The run's `OpJoin` of `ops` timed by `source`, with their controls (taken at `threads`
    threads on the run's clock) where there are any."""
    controls = controls_of(threads, thread_time, ops.controls) if ops.controls else None
    return OpJoin(
        source,
        ops.forwards,
        ops.profiled_ratio,
        ops.op_sum_ratio,
        ops.unjoined_events,
        ops.unjoined_nodes,
        controls,
    )


def _definition(net: nn.Module) -> Any:
    return getattr(net, "definition", None)


def _definition_dict(defn: Any) -> dict[str, Any] | None:
    if defn is None:
        return None
    document: dict[str, Any] = to_dict(defn)
    return document
