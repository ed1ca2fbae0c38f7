"""``hda calibrate``: time the micro-benchmarks on this device and fit its device model, one
per thread count (by default 1 and every core).

Each benchmark (``profiler.microbench``) is traced for its features, then timed, kinds
interleaved (`spread`): a warm-up call,
then `repeat` samples of enough calls to fill `budget_s`, the median per call kept, at each
thread count in turn (the module and its pool built once; a drift of the machine's speed
then touches every count alike). A cold run
cycles through a pool of copies (inputs and weights) spanning more than twice the largest
candidate cache, so every call finds its data evicted. Then a few whole networks (`CONTEXT`,
none of them a model the predictor sweep scores) are timed in a forward, whole and per op
under ``torch.profiler``, and the context fit (``device_model.ContextFit``) says how much
slower an op of each kind runs there than alone in a loop.
The clock and the candidate cache capacities come from the backend (`hardnet_analysis.backends`:
wall or thread CPU time and the sysfs cache levels from L2 up on the CPU, events and the L2
size on a GPU); the fit keeps the capacity that predicts the benchmarks best leave-one-out
(``metrics.fit_device``).
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial

import torch

from hardnet_analysis.analysis import analyze
from hardnet_analysis.backends import Backend, Clock, Picked, check_thread_time, pick
from hardnet_analysis.documents.context_fit import ContextFit, ContextModel
from hardnet_analysis.documents.device_model import (
    DeviceModel,
    DeviceModels,
    FitSummary,
)
from hardnet_analysis.documents.machine import LoadProbe, busy_warning, drift_warning
from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.metrics.conv_paths import ConvPaths
from hardnet_analysis.metrics.fit_device import (
    DeviceFit,
    Measurement,
    context_model,
    fit_context,
    fit_device,
)
from hardnet_analysis.metrics.predict import layer_features, predict_layers, runtime_features
from hardnet_analysis.profiler import calibrate_ort
from hardnet_analysis.profiler.environment import versions
from hardnet_analysis.profiler.latency import prime_allocator, time_forward
from hardnet_analysis.profiler.microbench import Bench, grid
from hardnet_analysis.profiler.onednn import grouped_block
from hardnet_analysis.profiler.onnxrt import nchwc_layout
from hardnet_analysis.profiler.ops import graph_nodes, node_times, profile_forwards
from hardnet_analysis.profiler.quiet import probe_load
from hardnet_analysis.profiler.run import prepare
from hardnet_analysis.resolve import input_shape_of, resolve

Log = Callable[[str], None]
#: Progress: called with (steps done, steps in all).
Step = Callable[[int, int], None]
MiB = 2**20

#: Whole networks timed for the context fit, per grid, with their input sides: none is a model
#: that ``benchmarks/sweep_predict.py`` scores, so its figures stay out of sample.
CONTEXT: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "full": (
        (
            "squeezenet1_1",
            "mnasnet1_0",
            "mobilenet_v3_small",
            "regnet_x_400mf",
            "googlenet",
            "resnet34",
            "resnext50_32x4d",
        ),
        (160, 224),
    ),
    "quick": (("squeezenet1_1", "mnasnet1_0", "resnet34"), (160, 224)),
    "tiny": (("squeezenet1_1", "mobilenet_v3_small"), (64, 96)),
}


@dataclass(frozen=True)
class CalibrationSettings:
    """Device (a backend's name) and whether a missing one is an error rather than a fall-back
    to the CPU, the CPU thread counts to fit (None: 1 and torch's default, every core), the
    per-thread clock for the 1-thread model (others run on the wall clock),
    the grid (``full``/``quick``/``tiny``), timing (samples, seconds per sample), the most
    bytes a cold pool may hold, a cache size that replaces the probed candidates, the whole
    networks of the context fit and their input sides (None: the grid's, `CONTEXT`; no
    networks: no context fit), and the runtime that runs them (``torch``, eager, or
    ``onnxruntime``: ``profiler.calibrate_ort``)."""

    device: str = "cpu"
    strict_device: bool = False
    threads: tuple[int, ...] | None = None
    thread_time: bool = False
    grid: str = "full"
    repeat: int = 5
    budget_s: float = 0.006
    pool_limit: int = 768 * MiB
    cache_bytes: int | None = None
    models: tuple[str, ...] | None = None
    context_sizes: tuple[int, ...] | None = None
    runtime: str = "torch"

    def context(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The networks and input sides of the context fit: the settings' or the grid's."""
        models, sizes = CONTEXT[self.grid]
        return (
            models if self.models is None else self.models,
            sizes if self.context_sizes is None else self.context_sizes,
        )


def seconds_per_call(
    calls: list[Callable[[], object]], clock: Clock, budget_s: float, repeat: int
) -> float:
    """Median seconds per call of `calls` run round-robin (a sample is enough calls to fill
    `budget_s`, continuing the cycle where the last sample stopped, so a pool's calls stay
    cold however few a sample takes), after one warm-up call."""
    cycle = itertools.cycle(calls)

    def sample(n: int) -> float:
        start = clock.mark()
        for _ in range(n):
            next(cycle)()
        end = clock.mark()
        clock.sync()
        return clock.elapsed(start, end) / n

    sample(1)
    per = max(sample(1), 1e-7)
    n = max(1, math.ceil(budget_s / per))
    return statistics.median(sample(n) for _ in range(repeat))


def spread(benches: list[Bench]) -> list[Bench]:
    """`benches` in the order to time them: each kind's benchmarks in a fixed shuffled order
    (seed 0), spaced evenly over the whole run (the i-th of a kind's n at (i + 1/2) / n), kinds
    interleaved. A shared VM's speed drifts by several percent over minutes. Timed kind after
    kind and size after size, that drift became one kind's scale or a slope over its sizes (two
    2-thread calibrations minutes apart: 9-18% apart over the grid's first 120 benchmarks, all
    convs); spread, it is noise that each kind's fit averages out. E.g. 4 convs and 2 pools:
    conv, pool, conv, conv, pool, conv."""
    kinds: dict[str, list[Bench]] = {}
    for bench in benches:
        kinds.setdefault(bench.kind, []).append(bench)
    shuffle = random.Random(0).shuffle
    keyed = []
    for group in kinds.values():
        shuffle(group)
        keyed += [((i + 0.5) / len(group), bench) for i, bench in enumerate(group)]
    return [bench for _, bench in sorted(keyed, key=lambda pair: pair[0])]


def _pool_size(bench_bytes: int, settings: CalibrationSettings, caches: dict[int, str]) -> int:
    """Copies in a cold pool: enough to span twice the largest cache, within the limits (1 when
    a cold run would tell nothing a warm one does not)."""
    target = 2 * max(caches)
    copies = min(256, math.ceil(target / bench_bytes), settings.pool_limit // bench_bytes)
    return copies if copies >= 2 and copies * bench_bytes > 2 * min(caches) else 1


def _kept(ring: deque[object], module: torch.nn.Module, x: torch.Tensor) -> None:
    ring.append(module(x))


def _ring(module: torch.nn.Module, x: torch.Tensor, cache: int) -> int:
    """Outputs to keep alive so that they span twice `cache` (1 to 64)."""
    with torch.inference_mode():
        result = module(x)
    nbytes = result.numel() * result.element_size() if isinstance(result, torch.Tensor) else 0
    return max(1, min(64, math.ceil(2 * cache / max(nbytes, 1)) + 1))


def measure(
    bench: Bench,
    backend: Backend,
    device: torch.device,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    caches: dict[int, str],
    paths: ConvPaths,
) -> dict[int, list[Measurement]]:
    """The warm and (where it differs) cold timings of one benchmark, of the kind its conv
    runs as (`ConvPaths.benchmark_kind`), at each thread count of
    `clocks` (count -> clock), the module, pool and features shared between counts. Each
    call's output is kept alive over a ring of calls that spans twice the smallest cache
    (`_ring`), so it is written to a buffer that cache does not hold, as in a forward, where
    the allocator hands an op a block last touched many ops ago; a loop that frees and
    reallocates the same block writes into cache (a 1x1 conv 24->144 at 56x56, 1 thread:
    154 us so, 304 us with cold outputs)."""
    module = bench.make().eval()
    analysis = measure_graph(trace_module(module, bench.shape, bench.label))
    kind = paths.benchmark_kind(bench.kind, analysis)
    module = module.to(device)
    x = torch.rand(bench.shape, device=device)
    weights = sum(p.numel() for p in module.parameters()) * 4
    nbytes = x.numel() * 4 + weights
    ring: deque[object] = deque(maxlen=_ring(module, x, min(caches)))
    out: dict[int, list[Measurement]] = {threads: [] for threads in clocks}
    for copies in sorted({1, _pool_size(nbytes, settings, caches)}):
        modules = [module] + [
            copy.deepcopy(module) if weights else module for _ in range(copies - 1)
        ]
        inputs = [x] + [x.clone() for _ in range(copies - 1)]
        calls: list[Callable[[], object]] = [
            partial(_kept, ring, m, i) for m, i in zip(modules, inputs, strict=True)
        ]
        label = bench.label + (f" cold x{copies}" if copies > 1 else "")
        for threads, clock in clocks.items():
            backend.prepare(threads)  # 0 (no CPU threads): left alone
            seconds = seconds_per_call(calls, clock, settings.budget_s, settings.repeat)
            out[threads].append(Measurement(kind, label, analysis, copies * nbytes, seconds))
    return out


def _measured(
    bench: Bench,
    picked: Picked,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    caches: dict[int, str],
    paths: ConvPaths,
) -> dict[int, list[Measurement]]:
    """One benchmark's timings at each thread count, in the settings' runtime, of the kind
    its conv runs as on `paths`."""
    if settings.runtime != "onnxruntime":
        return measure(bench, picked.backend, picked.device, clocks, settings, caches, paths)
    pool = partial(_pool_size, settings=settings, caches=caches)
    return calibrate_ort.measure_ort(bench, tuple(clocks), settings, pool, paths)


def _picked(settings: CalibrationSettings, say: Log) -> Picked:
    """The backend and device to calibrate (`hardnet_analysis.backends.pick`), checked with
    the settings that depend on it, before anything is timed."""
    if settings.grid not in ("full", "quick", "tiny"):
        raise UsageError(f"unknown grid {settings.grid!r}; accepted: full, quick, tiny")
    picked = pick(settings.device, settings.strict_device)
    if settings.runtime == "onnxruntime":
        calibrate_ort.check(picked, settings.thread_time)
    if settings.thread_time:
        check_thread_time(picked.backend, 1 if 1 in (settings.threads or (1,)) else None)
    if picked.fallback:
        say(f"hda: warning: {picked.warning(settings.device)}")
    return picked


def thread_counts(backend: Backend, asked: tuple[int, ...] | None) -> tuple[int, ...]:
    """The thread counts to calibrate, fewest first: `asked`, or 1 and torch's default (every
    core); ``(0,)`` for a backend without CPU threads."""
    if not backend.cpu_threads:
        return (0,)
    return tuple(sorted(set(asked or (1, backend.prepare(None)))))


def _clocks(
    backend: Backend, counts: tuple[int, ...], settings: CalibrationSettings
) -> dict[int, Clock]:
    """Each count's clock: the thread's CPU time for 1 thread with ``--thread-time``, else the
    wall clock (several threads' work happens at once; their CPU time says nothing of it)."""
    return {n: backend.clock(settings.thread_time and n == 1) for n in counts}


def _context(
    isolated: Mapping[int, DeviceModel],
    backend: Backend,
    device: torch.device,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    done: Callable[[], None],
) -> dict[int, ContextFit | None]:
    """Time the context networks in a forward at each thread count, and their ops under
    ``torch.profiler``, and fit how ops run there (None: no networks); `done` is called after
    each network and input."""
    names, sizes = settings.context()
    found: dict[int, list[ContextModel]] = {n: [] for n in clocks}
    for name in names:
        for side in sizes:
            shape = input_shape_of(resolve(name), (side, side))
            net, x = prepare(name, shape, "fp32", False, device)
            analysis = analyze(name, shape)
            for threads, clock in clocks.items():
                backend.prepare(threads)
                forward = partial(net, x)
                found[threads].append(
                    _timed_network(forward, analysis, isolated[threads], backend, clock, settings)
                )
            done()
    return {n: fit_context(models) if models else None for n, models in found.items()}


def _timed_network(
    forward: Callable[[], object],
    analysis: Analysis,
    isolated: DeviceModel,
    backend: Backend,
    clock: Clock,
    settings: CalibrationSettings,
) -> ContextModel:
    """One context network at one thread count: its median forward (un-profiled) and, per
    kind, its ops' kind times against their profiled spans."""
    with torch.inference_mode():
        measured = statistics.median(time_forward(forward, clock, 2, settings.repeat))
        forwards, walls = profile_forwards(forward, settings.repeat, backend)
    spans = node_times(graph_nodes(analysis.graph), forwards, walls, measured).node_s
    features = layer_features(analysis, isolated.cache_bytes)  # the cache traffic, once
    features = runtime_features(analysis, features, ConvPaths.of(isolated))
    layers = predict_layers(features, isolated)
    return context_model(analysis, measured, features, layers, isolated, spans)


def calibrate(
    settings: CalibrationSettings, log: Log | None = None, step: Step | None = None
) -> DeviceModels:
    """Time the grid on the device at each thread count, fit one device model per count,
    check each on whole networks. `log` gets stage and warning lines; `step(done, total)` is
    called after each benchmark and each context network (a progress bar's hook)."""
    say: Log = log or (lambda message: None)
    advance: Step = step or (lambda done, total: None)
    started = time.perf_counter()
    picked = _picked(settings, say)
    counts = thread_counts(picked.backend, settings.threads)
    before = torch.get_num_threads()
    try:
        return _calibrate(settings, picked, counts, say, advance, started)
    finally:
        torch.set_num_threads(before)


def _calibrate(
    settings: CalibrationSettings,
    picked: Picked,
    counts: tuple[int, ...],
    say: Log,
    advance: Step,
    started: float,
) -> DeviceModels:
    backend, device = picked.backend, picked.device
    for name in settings.context()[0]:
        resolve(name)  # an unknown network is a one-line error now, before anything is timed
    loads = {n: _load(backend, n, None, say) for n in counts}
    caches = (
        {settings.cache_bytes: "--cache-bytes"}
        if settings.cache_bytes
        else backend.cache_sizes(device)
    )
    clocks = _clocks(backend, counts, settings)
    paths = _conv_paths(settings, picked)
    benches = spread(grid(settings.grid))
    names, sizes = settings.context()
    total = len(benches) + len(names) * len(sizes)
    prime_allocator()
    measured: dict[int, list[Measurement]] = {n: [] for n in counts}
    with torch.inference_mode():
        for number, bench in enumerate(benches, start=1):
            found = _measured(bench, picked, clocks, settings, caches, paths)
            for threads, timings in found.items():
                measured[threads].extend(timings)
            advance(number, total)
    fits = {n: fit_device(measured[n], caches) for n in counts}
    isolated = {n: _document(settings, picked, fits[n], n, paths) for n in counts}
    prime_allocator()
    counted = itertools.count(len(benches) + 1)
    done = lambda: advance(next(counted), total)  # noqa: E731
    if settings.runtime == "onnxruntime":
        networks = calibrate_ort.context_ort(isolated, clocks, settings, done)
        context = {n: fit_context(found) if found else None for n, found in networks.items()}
    else:
        context = _context(isolated, backend, device, clocks, settings, done)
    ends = {n: _load(backend, n, loads[n], say) for n in counts}
    seconds = time.perf_counter() - started
    return DeviceModels(
        tuple(
            replace(
                isolated[n],
                context=context[n],
                fit=replace(isolated[n].fit, seconds=seconds),
                load_probe=loads[n],
                end_probe=ends[n],
            )
            for n in counts
        )
    )


def _load(backend: Backend, threads: int, start: LoadProbe | None, say: Log) -> LoadProbe | None:
    """Probe how busy the CPU is at `threads` threads (backends with CPU threads only) and
    warn when it is busy, or when it now runs at another speed than at the `start` probe."""
    if not backend.cpu_threads:
        return None
    load = probe_load(threads)
    for message in (
        busy_warning(load),
        drift_warning(start, [load], "the machine ran {} at the end than at the start")
        if start
        else None,
    ):
        if message:
            say(f"hda: warning: calibration: {message}")
    return load


def _document(
    settings: CalibrationSettings,
    picked: Picked,
    fit: DeviceFit,
    threads: int,
    paths: ConvPaths,
) -> DeviceModel:
    """The device model of `threads` threads from its `fit` (the seconds filled in later),
    with the conv `paths` its benchmarks' kinds were told apart by."""
    errors = [abs(s.predicted_s - s.time_s) / s.time_s for s in fit.samples]
    summary = FitSummary(
        len(errors),
        statistics.fmean(errors),
        float(fit.loo.mean()),
        float((fit.loo <= 0.1).mean()),
        0.0,
    )
    backend, device = picked.backend, picked.device
    return DeviceModel(
        device=backend.name,
        machine=backend.record(settings.device, device, picked.fallback),
        threads=threads,
        clock=backend.clock_name(settings.thread_time and threads == 1),
        dtype="fp32",
        versions=versions(),
        cache_bytes=fit.cache_bytes,
        cache_choices=fit.choices,
        kinds=fit.kinds,
        fit=summary,
        samples=fit.samples,
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
        runtime=settings.runtime,
        nchwc_block=paths.nchwc[0],
        nchwc_step=paths.nchwc[1],
        onednn_block=paths.onednn_block,
    )


def _conv_paths(settings: CalibrationSettings, picked: Picked) -> ConvPaths:
    """What decides each conv's kernel here, probed (`ConvPaths`): ORT's NCHWc layout, or
    oneDNN's grouped-conv block for PyTorch on a CPU (none on a GPU)."""
    if settings.runtime == "onnxruntime":
        return ConvPaths("onnxruntime", nchwc_layout())
    return ConvPaths("torch", onednn_block=grouped_block() if picked.backend.cpu_threads else 0)
