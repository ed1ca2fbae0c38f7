"""``hda calibrate``: time the micro-benchmarks on this device and fit its device model, one
per thread count (by default 1 and every core).

Each benchmark (``profiler.microbench``) is traced for its features, then timed, kinds
interleaved (`spread`): a warm-up call,
then `repeat` samples of enough calls to fill `budget_s`, the median per call kept, at each
thread count in turn (the module and its pool built once; a drift of the machine's speed
then touches every count alike). On the CPU in eager PyTorch a speed control
(``profiler.pace``) is taken beside each sample, and the fit takes each benchmark at the
calibration's median control (`at_speed`): a benchmark timed in a slow spell of a shared VM
is fitted at the speed the others ran at, and a run's paced timing is compared at that same
speed (``documents.machine.pace_ratio``). The context networks are paced alike, whole and per
op (a control beside each profiled forward too). In ONNX Runtime a control lies before and
after each benchmark's calls (``calibrate_ort._timed``), on one thread as the runs' are
(``pace.control_threads``). A cold run
cycles through a pool of copies (inputs and weights) spanning more than twice the largest
candidate cache, so every call finds its data evicted. A few whole networks (`CONTEXT`, none
of them a model the predictor sweep scores), spaced evenly among the benchmarks
(`interleaved`), are timed in a forward, whole and per op under ``torch.profiler``; once the
benchmarks are fitted, the context fit (``device_model.ContextFit``) says how much slower an
op of each kind runs there than alone in a loop.
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
from hardnet_analysis.documents.context_fit import ContextModel
from hardnet_analysis.documents.device_model import (
    DeviceModel,
    DeviceModels,
    FitSummary,
)
from hardnet_analysis.documents.machine import (
    Controls,
    LoadProbe,
    busy_warning,
    drift_warning,
    spread_warning,
)
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
from hardnet_analysis.profiler.allocator import kept_memory
from hardnet_analysis.profiler.environment import versions
from hardnet_analysis.profiler.latency import time_forward
from hardnet_analysis.profiler.microbench import Bench, grid
from hardnet_analysis.profiler.onednn import onednn_paths
from hardnet_analysis.profiler.onnxrt import nchwc_layout
from hardnet_analysis.profiler.ops import graph_nodes, node_times, profile_forwards
from hardnet_analysis.profiler.pace import (
    Control,
    PacedSeconds,
    PacedSpans,
    control_threads,
    paced,
    take_controls,
    time_paced,
)
from hardnet_analysis.profiler.quiet import probe_load
from hardnet_analysis.profiler.run import prepare
from hardnet_analysis.resolve import input_shape_of, resolve

Log = Callable[[str], None]
#: What a calibration times, in order: a micro-benchmark, or a context network at a side.
Job = Bench | tuple[str, int]
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
    calls: list[Callable[[], object]],
    clock: Clock,
    budget_s: float,
    repeat: int,
    control: Control | None = None,
    warmup: int = 1,
) -> tuple[float, float | None]:
    """Median seconds per call of `calls` run round-robin (a sample is enough calls to fill
    `budget_s`, continuing the cycle where the last sample stopped, so a pool's calls stay
    cold however few a sample takes), after `warmup` calls; and with a speed `control` (on
    `clock`) beside each sample, the median of the samples' seconds per call over their
    controls' seconds (`Measurement.paced`; None without). 6 ms samples of 120 calls of 50 us
    beside 1.5 ms controls: (50e-6, 0.0333)."""
    cycle = itertools.cycle(calls)

    def run(n: int) -> None:
        for _ in range(n):
            next(cycle)()

    def sample(n: int) -> float:
        start = clock.mark()
        run(n)
        end = clock.mark()
        clock.sync()
        return clock.elapsed(start, end) / n

    run(warmup)
    per = max(sample(1), 1e-7)
    n = max(1, math.ceil(budget_s / per))
    if control is None:
        return statistics.median(sample(n) for _ in range(repeat)), None
    samples, beside = time_paced(partial(run, n), control, 0, repeat)
    return statistics.median(samples) / n, paced(samples, beside) / n


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


def output_ring(module: torch.nn.Module, x: torch.Tensor, cache: int) -> tuple[int, int]:
    """Outputs to keep alive so that they span twice `cache` (1 to 64), and the bytes the
    calls' outputs then rotate through (those kept and the one being written: 4 x 0.8 MB for
    a ReLU over 64 x 56 x 56 fp32 at a 512 KiB cache)."""
    with torch.inference_mode():
        result = module(x)
    nbytes = result.numel() * result.element_size() if isinstance(result, torch.Tensor) else 0
    kept = max(1, min(64, math.ceil(2 * cache / max(nbytes, 1)) + 1))
    return kept, (kept + 1) * nbytes


def measure(
    bench: Bench,
    backend: Backend,
    device: torch.device,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    caches: dict[int, str],
    controls: Mapping[int, Control] | None = None,
) -> dict[int, list[Measurement]]:
    """The warm and (where it differs) cold timings of one benchmark, of its kind (which
    kernel it ran as is told at the fit: `kinds_as_run`), at each thread count of
    `clocks` (count -> clock), the module, pool and features shared between counts; paced
    by the count's speed control where `controls` has one (`seconds_per_call`). Each
    call's output is kept alive over a ring of calls that spans twice the smallest cache
    (`output_ring`), so it is written to a buffer that cache does not hold, as in a forward, where
    the allocator hands an op a block last touched many ops ago; a loop that frees and
    reallocates the same block writes into cache (a 1x1 conv 24->144 at 56x56, 1 thread:
    154 us so, 304 us with cold outputs)."""
    module = bench.make().eval()
    analysis = measure_graph(trace_module(module, bench.shape, bench.label))
    module = module.to(device)
    x = torch.rand(bench.shape, device=device)
    weights = sum(p.numel() for p in module.parameters()) * 4
    nbytes = x.numel() * 4 + weights
    kept, span = output_ring(module, x, min(caches))
    ring: deque[object] = deque(maxlen=kept)
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
            control = (controls or {}).get(threads)
            # the first warm-up fills the ring of outputs, so that no timed call takes fresh
            # pages (a 19 -> 19 bilinear x4 at 128, 20 MB out: 15.2 ms a call so, 7.2 ms after)
            warmup = 1 if ring else kept + 1
            seconds, paced = seconds_per_call(
                calls, clock, settings.budget_s, settings.repeat, control, warmup
            )
            pool = copies * nbytes
            timed = Measurement(bench.kind, label, analysis, pool, seconds, span, paced)
            out[threads].append(timed)
    return out


def _measured(
    bench: Bench,
    picked: Picked,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    caches: dict[int, str],
    controls: Mapping[int, Control],
) -> dict[int, list[Measurement]]:
    """One benchmark's timings at each thread count, in the settings' runtime, paced by
    `controls` (per sample in PyTorch, per benchmark in ORT: ``calibrate_ort._timed``)."""
    if settings.runtime != "onnxruntime":
        return measure(bench, picked.backend, picked.device, clocks, settings, caches, controls)
    pool = partial(_pool_size, settings=settings, caches=caches)
    return calibrate_ort.measure_ort(bench, tuple(clocks), settings, pool, controls)


def kinds_as_run(measured: list[Measurement], paths: ConvPaths, threads: int) -> list[Measurement]:
    """`measured` (at `threads` threads) each of the kind its conv ran as on `paths`
    (`ConvPaths.benchmark_kind`): a 1x1 conv 64 -> 64 at 14x14 is ``conv_1x1_gemm`` in
    PyTorch at 1 and 2 threads, at 56x56 ``conv_1x1_gemm`` at 1 and ``conv_1x1`` at 2; a 3x3
    conv 26 -> 26 ``conv_nchw`` in ORT at (8, 4)."""
    at = replace(paths, threads=threads)
    return [replace(m, kind=at.benchmark_kind(m.kind, m.analysis)) for m in measured]


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
    return {n: backend.clock(thread_timed(settings, n)) for n in counts}


def thread_timed(settings: CalibrationSettings, threads: int) -> bool:
    """Whether `threads` threads are timed by the thread's CPU time (1 with ``--thread-time``),
    their benchmarks and their load probes alike."""
    return settings.thread_time and threads == 1


#: A context network timed at one thread count, to be modelled (`ContextModel`) once the
#: device model it is compared with has been fitted, with the calibration's median speed
#: control (seconds; None: none taken): a paced network's times are scaled to that speed, as
#: the benchmarks' are (`at_speed`).
Timed = Callable[[DeviceModel, float | None], ContextModel]


def _network_timings(
    name: str,
    side: int,
    picked: Picked,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    controls: Mapping[int, Control],
) -> dict[int, Timed]:
    """Time context network `name` at input `side` in a forward at each thread count (paced
    by the count's control where `controls` has one), and its ops under the runtime's
    profiler (``torch.profiler``; ORT's own in ``calibrate_ort.time_network``)."""
    shape = input_shape_of(resolve(name), (side, side))
    if settings.runtime == "onnxruntime":
        return calibrate_ort.time_network(name, shape, clocks, settings, controls)
    net, x = prepare(name, shape, "fp32", False, picked.device)
    analysis = analyze(name, shape)
    out = {}
    for threads, clock in clocks.items():
        picked.backend.prepare(threads)
        forward = partial(net, x)
        control = controls.get(threads)
        out[threads] = _timed_network(forward, analysis, picked.backend, clock, settings, control)
    return out


def _timed_network(
    forward: Callable[[], object],
    analysis: Analysis,
    backend: Backend,
    clock: Clock,
    settings: CalibrationSettings,
    control: Control | None,
) -> Timed:
    """One context network at one thread count: its median forward (un-profiled; paced by
    `control` where there is one) and its ops' profiled spans, to be set against their kind
    times. Scaled to a reference control, the forward is its paced figure x that control, and
    each span its own paced figure (the controls lie beside the profiled forwards too) x that
    control."""
    with torch.inference_mode():
        beside: list[float] = []
        if control is None:
            samples = time_forward(forward, clock, 2, settings.repeat)
        else:
            samples, beside = time_paced(forward, control, 2, settings.repeat)
        measured = statistics.median(samples)
        forwards, walls, controls = profile_forwards(forward, settings.repeat, backend, control)
    ops = node_times(graph_nodes(analysis.graph), forwards, walls, measured, controls)
    whole = PacedSeconds(measured, paced(samples, beside) if beside else 0.0)
    spans = PacedSpans(ops.node_s, ops.node_paced)

    def model(isolated: DeviceModel, reference: float | None) -> ContextModel:
        features = layer_features(analysis, isolated.cache_bytes)  # the cache traffic, once
        features = runtime_features(analysis, features, ConvPaths.of(isolated))
        layers = predict_layers(features, isolated)
        timed, op_s = whole.at(reference), spans.at(reference)
        return context_model(analysis, timed, features, layers, isolated, op_s)

    return model


def interleaved(benches: list[Bench], networks: list[tuple[str, int]]) -> list[Job]:
    """The benchmarks (in `spread` order) with the context `networks` spaced evenly among
    them, so that a drift of the machine's speed between the start and the end of a
    calibration touches both alike. Timed after every benchmark, the networks of one 2-thread
    calibration on a 2-core AMD EPYC VM ran when its probe took 33% longer than at the start,
    and the conv kinds' scales in a forward came out 1.00-1.27, against 0.94-1.05 in one
    calibrated minutes before. E.g. 6 benchmarks, 2 networks:
    b, b, n, b, b, b, n, b (each network at the middle of its share)."""
    keyed: list[tuple[float, int, Job]] = [
        ((i + 0.5) / len(benches), 0, bench) for i, bench in enumerate(benches)
    ]
    keyed += [((i + 0.5) / len(networks), 1, net) for i, net in enumerate(networks)]
    return [job for *_, job in sorted(keyed, key=lambda k: k[:2])]


def calibrate(
    settings: CalibrationSettings, log: Log | None = None, step: Step | None = None
) -> DeviceModels:
    """Time the grid on the device at each thread count, fit one device model per count,
    check each on whole networks. `log` gets stage and warning lines; `step(done, total)` is
    called after each benchmark and each context network (a progress bar's hook)."""
    started = time.perf_counter()
    timed = time_calibration(settings, log, step)
    return fit_calibration(timed, started=started)


@dataclass(frozen=True)
class Timings:
    """What a calibration timed, before any fit: the settings, backend and conv paths it ran
    with, and per thread count the benchmarks (each of its nominal kind), the context
    networks (`Timed`), and the load probes at start and end; the cache capacities to try."""

    settings: CalibrationSettings
    picked: Picked
    paths: ConvPaths
    caches: dict[int, str]
    measured: dict[int, list[Measurement]]
    networks: dict[int, list[Timed]]
    loads: dict[int, LoadProbe | None]
    ends: dict[int, LoadProbe | None]
    #: The probes taken at `SPEED_PROBES` even points through the timing (`speed_probes`).
    during: dict[int, list[LoadProbe]]
    #: The speed controls (`profiler.pace`) taken at the start and beside those probes: the
    #: reference a paced run's timing is scaled to (`DeviceModel.controls`).
    controls: dict[int, Controls | None]


def time_calibration(
    settings: CalibrationSettings, log: Log | None = None, step: Step | None = None
) -> Timings:
    """The timing half of `calibrate` (`log` and `step` as there)."""
    say: Log = log or (lambda message: None)
    advance: Step = step or (lambda done, total: None)
    picked = _picked(settings, say)
    counts = thread_counts(picked.backend, settings.threads)
    before = torch.get_num_threads()
    try:
        return _timed_all(settings, picked, counts, say, advance)
    finally:
        torch.set_num_threads(before)


def _timed_all(
    settings: CalibrationSettings,
    picked: Picked,
    counts: tuple[int, ...],
    say: Log,
    advance: Step,
) -> Timings:
    backend, device = picked.backend, picked.device
    for name in settings.context()[0]:
        resolve(name)  # an unknown network is a one-line error now, before anything is timed
    loads = {n: _load(backend, n, thread_timed(settings, n), None, say) for n in counts}
    caches = (
        {settings.cache_bytes: "--cache-bytes"}
        if settings.cache_bytes
        else backend.cache_sizes(device)
    )
    clocks = _clocks(backend, counts, settings)
    paths = _conv_paths(settings, picked)
    names, sizes = settings.context()
    jobs = interleaved(spread(grid(settings.grid)), [(n, s) for n in names for s in sizes])
    # the reserve: cold pools span twice the largest cache, output rings twice the smallest
    reserve = min(settings.pool_limit, 4 * max(caches))
    measured: dict[int, list[Measurement]] = {n: [] for n in counts}
    networks: dict[int, list[Timed]] = {n: [] for n in counts}
    during: dict[int, list[LoadProbe]] = {n: [] for n in counts}
    probe_at = speed_probe_points(len(jobs))
    controls = {n: [_controls(n, clocks[n], settings)] for n in counts if backend.cpu_threads}
    pacers = _pacers(picked, clocks, settings)
    with kept_memory(reserve), torch.inference_mode():
        for number, job in enumerate(jobs, start=1):
            if number in probe_at and backend.cpu_threads:
                for n in counts:
                    during[n].append(probe_load(n, thread_timed(settings, n)))
                    controls[n].append(_controls(n, clocks[n], settings))
            if isinstance(job, Bench):
                found = _measured(job, picked, clocks, settings, caches, pacers)
                for threads, timings in found.items():
                    measured[threads].extend(timings)
            else:  # built and exported outside inference mode, timed in it, as before
                with torch.inference_mode(False):
                    found_networks = _network_timings(*job, picked, clocks, settings, pacers)
                for threads, network in found_networks.items():
                    networks[threads].append(network)
            advance(number, len(jobs))
    ends = {n: _load(backend, n, thread_timed(settings, n), loads[n], say) for n in counts}
    for message in filter(None, (spread_warning(during[n]) for n in counts)):
        say(f"hda: warning: calibration: {message}")
    joined = {n: _joined(controls.get(n, [])) for n in counts}
    return Timings(settings, picked, paths, caches, measured, networks, loads, ends, during, joined)


#: Speed controls taken at the start of a calibration and at each speed-probe point.
CONTROLS_PER_POINT = 4


def _pacers(
    picked: Picked, clocks: Mapping[int, Clock], settings: CalibrationSettings
) -> dict[int, Control]:
    """Per thread count, the speed control beside each sample of the benchmarks and context
    networks, on `control_threads` as the runs' controls (none on GPUs)."""
    if not picked.backend.cpu_threads:
        return {}
    return {n: Control(clock, control_threads(n, settings.runtime)) for n, clock in clocks.items()}


def at_speed(measured: Measurement, reference: float | None) -> Measurement:
    """`measured` at the speed of the `reference` control (seconds; the calibration's
    median): its paced figure x the reference; unchanged where either is missing. Paced 0.0333
    against a 1.5 ms reference: 50 us a call, whatever the machine's speed while it ran."""
    if measured.paced is None or reference is None:
        return measured
    return replace(measured, time_s=measured.paced * reference)


def _reference(controls: Controls | None) -> float | None:
    """The median of a thread count's controls (None: none taken)."""
    return statistics.median(controls.seconds) if controls and controls.seconds else None


def _controls(threads: int, clock: Clock, settings: CalibrationSettings) -> Controls:
    """Controls as the runs this calibration predicts take them (`control_threads`)."""
    on = control_threads(threads, settings.runtime)
    return take_controls(on, clock, thread_timed(settings, threads), CONTROLS_PER_POINT)


def _joined(parts: list[Controls]) -> Controls | None:
    """One thread count's controls, in the order taken (None: none taken)."""
    if not parts:
        return None
    return replace(parts[0], seconds=tuple(s for part in parts for s in part.seconds))


#: Load probes taken through a calibration, beside its start and end ones: on a 2-core Intel
#: Xeon VM the speed of a 1 ms matmul in one 2 s window told that of the next only at a
#: correlation of 0.48 (``benchmarks/bench_speed_states.py``), so two probes two minutes apart
#: say little of the speed the benchmarks ran at; 16 more cost about 2 s at two thread counts.
SPEED_PROBES = 16


def speed_probe_points(jobs: int) -> set[int]:
    """The job numbers (1-based) before which a calibration of `jobs` jobs takes its speed
    probes: `SPEED_PROBES` evenly spaced ones, none at the ends (the start and end probes are
    there). 551 jobs: 33, 66, 98, ..., 520."""
    points = {round((i + 1) * jobs / (SPEED_PROBES + 1)) + 1 for i in range(SPEED_PROBES)}
    return points - {1, jobs + 1}


def fit_calibration(
    timed: Timings, paths: ConvPaths | None = None, started: float | None = None
) -> DeviceModels:
    """The fitting half of `calibrate`: one device model per thread count of `timed`, each
    benchmark of the kind its conv ran as on `paths` (default: those probed when timing;
    ``replace(timed.paths, native_limit=0)`` fits PyTorch's own convs with oneDNN's, as
    calibrations before that rule did), then the context fit. The seconds recorded run
    from `started` (``time.perf_counter()``; None: 0)."""
    paths = paths or timed.paths
    settings, counts = timed.settings, tuple(timed.measured)
    reference = {n: _reference(timed.controls[n]) for n in counts}
    fits = {
        n: fit_device(
            kinds_as_run([at_speed(m, reference[n]) for m in timed.measured[n]], paths, n),
            timed.caches,
            replace(paths, threads=n),
        )
        for n in counts
    }
    isolated = {n: _document(settings, timed.picked, fits[n], n, paths) for n in counts}
    context = {
        n: fit_context([net(isolated[n], reference[n]) for net in timed.networks[n]])
        if timed.networks[n]
        else None
        for n in counts
    }
    seconds = time.perf_counter() - started if started is not None else 0.0
    return DeviceModels(
        tuple(
            replace(
                isolated[n],
                context=context[n],
                fit=replace(isolated[n].fit, seconds=seconds),
                load_probe=timed.loads[n],
                end_probe=timed.ends[n],
                speed_probes=tuple(timed.during[n]),
                controls=timed.controls[n],
            )
            for n in counts
        )
    )


def _load(
    backend: Backend, threads: int, thread_time: bool, start: LoadProbe | None, say: Log
) -> LoadProbe | None:
    """Probe how busy the CPU is at `threads` threads, on the clock that times them (backends
    with CPU threads only), and warn when it is busy, or when it now runs at another speed than
    at the `start` probe."""
    if not backend.cpu_threads:
        return None
    load = probe_load(threads, thread_time)
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
        clock=backend.clock_name(thread_timed(settings, threads)),
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
        onednn_layout_block=paths.layout_block,
        native_limit=paths.native_limit,
    )


def _conv_paths(settings: CalibrationSettings, picked: Picked) -> ConvPaths:
    """What decides each conv's kernel here, probed (`ConvPaths`): ORT's NCHWc layout, or
    for PyTorch on a CPU oneDNN's grouped-conv block and the input size up to which PyTorch
    keeps a conv off oneDNN (none on a GPU)."""
    if settings.runtime == "onnxruntime":
        return ConvPaths("onnxruntime", nchwc_layout())
    if not picked.backend.cpu_threads:
        return ConvPaths("torch")
    block, limit, layout = onednn_paths()
    return ConvPaths("torch", onednn_block=block, native_limit=limit, layout_block=layout)
