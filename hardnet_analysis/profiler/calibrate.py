"""``hda calibrate``: time the micro-benchmarks on this device and fit its device model.

Each benchmark (``profiler.microbench``) is traced for its features, then timed: a warm-up call,
then `repeat` samples of enough calls to fill `budget_s`, the median per call kept. A cold run
cycles through a pool of copies (inputs and weights) spanning more than twice the largest
candidate cache, so every call finds its data evicted. Then a few whole networks (`CONTEXT`,
none of them a model the predictor sweep scores) are timed in a forward, and the context fit
(``device_model.ContextFit``) says how much slower an op runs there than alone in a loop.
The clock and the candidate cache capacities come from the backend (`hardnet_analysis.backends`:
wall or thread CPU time and the sysfs cache levels from L2 up on the CPU, events and the L2
size on a GPU); the fit keeps the capacity that predicts the benchmarks best leave-one-out
(``metrics.fit_device``).
"""

from __future__ import annotations

import copy
import itertools
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch

from hardnet_analysis.backends import Backend, Clock, Picked, check_thread_time, pick
from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.analysis import measure_graph
from hardnet_analysis.metrics.device_model import ContextFit, ContextModel, DeviceModel, FitSummary
from hardnet_analysis.metrics.fit_device import DeviceFit, Measurement, fit_context, fit_device
from hardnet_analysis.profiler.document import LoadProbe
from hardnet_analysis.profiler.environment import versions
from hardnet_analysis.profiler.latency import prime_allocator, time_forward
from hardnet_analysis.profiler.microbench import Bench, grid
from hardnet_analysis.profiler.quiet import busy_warning, drift_warning, probe_load
from hardnet_analysis.resolve import resolve

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
    to the CPU, CPU threads (None: torch's default), the per-thread clock,
    the grid (``full``/``quick``/``tiny``), timing (samples, seconds per sample), the most
    bytes a cold pool may hold, a cache size that replaces the probed candidates, and the whole
    networks of the context fit and their input sides (None: the grid's, `CONTEXT`; no
    networks: no context fit)."""

    device: str = "cpu"
    strict_device: bool = False
    threads: int | None = None
    thread_time: bool = False
    grid: str = "full"
    repeat: int = 5
    budget_s: float = 0.01
    pool_limit: int = 768 * MiB
    cache_bytes: int | None = None
    models: tuple[str, ...] | None = None
    context_sizes: tuple[int, ...] | None = None

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
    device: torch.device,
    clock: Clock,
    settings: CalibrationSettings,
    caches: dict[int, str],
) -> list[Measurement]:
    """The warm and (where it differs) cold timings of one benchmark. Each call's output is kept
    alive over a ring of calls that spans twice the smallest cache (`_ring`), so it is written
    to a buffer that cache does not hold, as in a forward, where the allocator hands an op a
    block last touched many ops ago; a loop that frees and reallocates the same block writes
    into cache (a 1x1 conv 24->144 at 56x56, 1 thread: 154 us so, 304 us with cold outputs)."""
    module = bench.make().eval()
    analysis = measure_graph(trace_module(module, bench.shape, bench.label))
    module = module.to(device)
    x = torch.rand(bench.shape, device=device)
    weights = sum(p.numel() for p in module.parameters()) * 4
    nbytes = x.numel() * 4 + weights
    ring: deque[object] = deque(maxlen=_ring(module, x, min(caches)))
    out = []
    for copies in sorted({1, _pool_size(nbytes, settings, caches)}):
        modules = [module] + [
            copy.deepcopy(module) if weights else module for _ in range(copies - 1)
        ]
        inputs = [x] + [x.clone() for _ in range(copies - 1)]
        calls: list[Callable[[], object]] = [
            partial(_kept, ring, m, i) for m, i in zip(modules, inputs, strict=True)
        ]
        seconds = seconds_per_call(calls, clock, settings.budget_s, settings.repeat)
        label = bench.label + (f" cold x{copies}" if copies > 1 else "")
        out.append(Measurement(bench.kind, label, analysis, copies * nbytes, seconds))
    return out


def _picked(settings: CalibrationSettings, say: Log) -> Picked:
    """The backend and device to calibrate (`hardnet_analysis.backends.pick`), checked with
    the settings that depend on it, before anything is timed."""
    if settings.grid not in ("full", "quick", "tiny"):
        raise UsageError(f"unknown grid {settings.grid!r}; accepted: full, quick, tiny")
    picked = pick(settings.device, settings.strict_device)
    if settings.thread_time:
        check_thread_time(picked.backend, settings.threads)
    if picked.fallback:
        say(f"hda: warning: {picked.warning(settings.device)}")
    return picked


def _context(
    isolated: DeviceModel,
    device: torch.device,
    clock: Clock,
    settings: CalibrationSettings,
    done: Callable[[], None],
) -> ContextFit | None:
    """Time the context networks in a forward and fit how ops run there (None: no networks);
    `done` is called after each network."""
    from hardnet_analysis.analysis import analyze
    from hardnet_analysis.metrics.predict import predict
    from hardnet_analysis.profiler.run import prepare

    names, sizes = settings.context()
    found = []
    for name in names:
        for side in sizes:
            size = (side, side)
            net, x = prepare(name, size, 1, "fp32", False, device)
            with torch.inference_mode():
                samples = time_forward(partial(net, x), clock, 2, settings.repeat)
            layers = predict(analyze(name, size), isolated).layers
            ops = sum(layer.kind != "view" for layer in layers)
            seconds = sum(layer.time_s for layer in layers)
            found.append(ContextModel(name, size, statistics.median(samples), seconds, ops, 0.0))
            done()
    return fit_context(found) if found else None


def calibrate(
    settings: CalibrationSettings, log: Log | None = None, step: Step | None = None
) -> DeviceModel:
    """Time the grid on the device, fit the device model, check it on whole models. `log` gets
    stage and warning lines; `step(done, total)` is called after each benchmark and each
    context network (a progress bar's hook)."""
    say: Log = log or (lambda message: None)
    advance: Step = step or (lambda done, total: None)
    started = time.perf_counter()
    picked = _picked(settings, say)
    backend, device = picked.backend, picked.device
    threads = backend.prepare(settings.threads)
    load = _load(backend, threads, None, say)
    caches = (
        {settings.cache_bytes: "--cache-bytes"}
        if settings.cache_bytes
        else backend.cache_sizes(device)
    )
    clock = backend.clock(settings.thread_time)
    for name in settings.context()[0]:
        resolve(name)  # an unknown network is a one-line error now, not after the benchmarks
    benches = grid(settings.grid)
    names, sizes = settings.context()
    total = len(benches) + len(names) * len(sizes)
    prime_allocator()
    measured: list[Measurement] = []
    with torch.inference_mode():
        for number, bench in enumerate(benches, start=1):
            measured.extend(measure(bench, device, clock, settings, caches))
            advance(number, total)
    fit = fit_device(measured, caches)
    model = _document(settings, picked, fit, time.perf_counter() - started)
    prime_allocator()
    counted = itertools.count(len(benches) + 1)
    context = _context(model, device, clock, settings, lambda: advance(next(counted), total))
    _load(backend, threads, load, say)
    seconds = time.perf_counter() - started
    return replace(model, context=context, fit=replace(model.fit, seconds=seconds), load_probe=load)


def _load(backend: Backend, threads: int, start: LoadProbe | None, say: Log) -> LoadProbe | None:
    """Probe how busy the CPU is (backends on its threads only) and warn when it is busy, or
    when it now runs at another speed than at the `start` probe."""
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
    settings: CalibrationSettings, picked: Picked, fit: DeviceFit, seconds: float
) -> DeviceModel:
    errors = [abs(s.predicted_s - s.time_s) / s.time_s for s in fit.samples]
    summary = FitSummary(
        len(errors),
        statistics.fmean(errors),
        float(fit.loo.mean()),
        float((fit.loo <= 0.1).mean()),
        seconds,
    )
    backend, device = picked.backend, picked.device
    return DeviceModel(
        device=backend.name,
        machine=backend.record(settings.device, device, picked.fallback),
        threads=torch.get_num_threads() if backend.cpu_threads else 0,
        clock=backend.clock_name(settings.thread_time),
        dtype="fp32",
        versions=versions(),
        cache_bytes=fit.cache_bytes,
        cache_choices=fit.choices,
        kinds=fit.kinds,
        fit=summary,
        samples=fit.samples,
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
