"""``hda calibrate --runtime onnxruntime``: the micro-benchmarks and context networks timed as
ONNX Runtime runs them, for a device model that predicts deployed latency.

A benchmark's module is exported in memory by PyTorch's TorchScript exporter (``dynamo=False``:
about 12 ms for a conv, where the dynamo exporter takes over a second, and a module of one op
exports to the same graph either way) and run in ORT sessions on the CPU execution provider,
one per thread count, every graph optimization on (``profiler.onnxrt.session``). Its time is
what ORT's own profiler says its kernels took (``<node>_kernel_time``), the median over calls:
ORT wraps a lone conv in NCHWc layout reorders (45 + 41 us around a 5 ms 64->64 3x3 conv at
56x56) that a network pays once per region, not per conv, and a chunk that torch takes as a
view is a Split copy in ORT; both are left out, so a kind's time is its op's kernel. A cold run
cycles through copies of the input spanning twice the largest cache (as the eager calibration
does), which evict the weights between calls too. It runs in one session: sessions cycled
round-robin each keep an intra-op thread spinning after its run, and at 2 threads on 2 cores
those spinning threads took the cores from the session running (the 2-thread convs' fit was
23-29% off leave-one-out with 16 sessions).

A context network is exported by the default exporter (cached, as ``hda profile --runtime
onnxruntime`` does), timed whole (wall clock, un-profiled), and its kernels timed under ORT's
profiler and joined to hda's nodes of the exported graph (``profiler.onnxrt.profile_sessions``):
an op sample is a kernel, predicted as ``metrics.predict.merged_features`` merges its nodes.

Both are paced (``profiler.pace``, one-thread controls on the wall clock): a benchmark by the
controls just before and after its calls, a network's run and each of its kernels by the
control beside each run, and fitted at the calibration's median control, as eager PyTorch's are.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import statistics
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from hardnet_analysis.analysis import analyze
from hardnet_analysis.backends import Clock, Picked
from hardnet_analysis.documents.context_fit import ContextModel
from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.errors import UsageError, first_line
from hardnet_analysis.graph.traced import trace_module
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.metrics.conv_paths import ConvPaths
from hardnet_analysis.metrics.fit_device import Measurement, context_model
from hardnet_analysis.metrics.predict import layer_features, merged_features, predict_layers
from hardnet_analysis.models import create_model
from hardnet_analysis.profiler.latency import time_forward
from hardnet_analysis.profiler.microbench import Bench
from hardnet_analysis.profiler.onnxrt import (
    check_cpu_provider,
    export_cached,
    feeds,
    forward_of,
    kernel_times,
    profile_sessions,
    quiet_exporter,
    require_onnxruntime,
    session,
)
from hardnet_analysis.profiler.pace import Control, PacedSeconds, PacedSpans, paced, time_paced
from hardnet_analysis.shapes import InputShape

if TYPE_CHECKING:  # calibrate imports this module
    from hardnet_analysis.profiler.calibrate import CalibrationSettings

#: ORT kernels that are no benchmark's op: layout reorders and copies, and the Split a chunk
#: becomes (a view in torch).
_NOT_THE_OP = frozenset(
    {"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost", "Split"}
)
#: Calls a benchmark is timed over at most, per thread count.
MAX_CALLS = 400


def export_bench(bench: Bench, module: torch.nn.Module) -> bytes:
    """`module` (the benchmark's, eval mode) as an ONNX model in memory; a module the
    exporter cannot take is a one-line UsageError naming the benchmark."""
    buffer = io.BytesIO()
    try:
        # Grad on: without it attention takes a fused fast path no exporter knows.
        with quiet_exporter(), warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")
            with torch.enable_grad():
                torch.onnx.export(
                    module,
                    (torch.rand(bench.shape),),
                    buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to a buffer
                    dynamo=False,
                )
    except Exception as exc:
        raise UsageError(
            f"benchmark {bench.label!r} cannot be exported to ONNX: {first_line(exc)}"
        ) from None
    return buffer.getvalue()


def op_seconds(events: Sequence[dict[str, Any]]) -> list[float]:
    """Per ``model_run`` of an ORT profile (its JSON events), the seconds of the kernels that
    run the benchmark's op (all but `_NOT_THE_OP`)."""
    kept = [
        e
        for e in events
        if e.get("cat") != "Node" or e.get("args", {}).get("op_name") not in _NOT_THE_OP
    ]
    return [sum(run.values()) for run in kernel_times(kept)]


def check(picked: Picked, thread_time: bool) -> None:
    """What ORT's CPU provider cannot calibrate is a one-line UsageError; so is a missing
    onnx extra."""
    require_onnxruntime()
    check_cpu_provider(picked.device.type, thread_time)


def measure_ort(
    bench: Bench,
    counts: Sequence[int],
    settings: CalibrationSettings,
    pool_size: Callable[[int], int],
    controls: Mapping[int, Control] | None = None,
) -> dict[int, list[Measurement]]:
    """The warm and (where `pool_size` of its bytes is above 1) cold kernel times of one
    benchmark in ORT at each thread count of `counts` (`settings`: ``repeat`` and
    ``budget_s`` as the eager calibration's), of the benchmark's kind (which kernel ORT ran
    it as is told at the fit: ``profiler.calibrate.kinds_as_run``), paced by the count's
    control where `controls` has one (`_timed`)."""
    with torch.inference_mode(False):  # the exporter cannot take inference tensors
        module = bench.make().eval()
    analysis = measure_graph(trace_module(module, bench.shape, bench.label))
    model = export_bench(bench, module)
    x = torch.rand(bench.shape).numpy()
    weights = sum(p.numel() for p in module.parameters()) * 4
    out: dict[int, list[Measurement]] = {n: [] for n in counts}
    output = math.prod(analysis.output_shape) * 4
    for pool in sorted({1, pool_size(x.nbytes + weights)}):
        inputs = [x] + [x.copy() for _ in range(pool - 1)]
        label = bench.label + (f" cold x{pool}" if pool > 1 else "")
        spans = pool * (x.nbytes + weights)  # the inputs between two calls evict the weights
        blocks = (_kept(len(inputs)) + 1) * output
        for threads in counts:
            control = (controls or {}).get(threads)
            seconds, paced = _timed(model, inputs, threads, settings, control)
            found = Measurement(bench.kind, label, analysis, spans, seconds, blocks, paced)
            out[threads].append(found)
    return out


def _kept(pool: int) -> int:
    """Outputs `_timed` keeps alive over a pool of `pool` inputs."""
    return min(64, pool + 1)


def _timed(
    model: bytes,
    inputs: list[np.ndarray],
    threads: int,
    settings: CalibrationSettings,
    control: Control | None = None,
) -> tuple[float, float | None]:
    """Median kernel seconds per call of `model` over `inputs` in turn, after two warm-up
    calls (the first allocates); each output kept alive over a ring of calls, as the eager
    calibration keeps them (``profiler.calibrate.measure``); and with a speed `control`, that
    median over the mean of the controls just before and just after the timed calls
    (`Measurement.paced`; None without). The calls take ``budget_s`` (or ``repeat`` calls):
    ORT's profiler gives one time per call, but a control between every two would be most of
    a benchmark's time."""
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(model, threads, Path(tmp))
        name = sess.get_inputs()[0].name
        ring: deque[object] = deque(maxlen=_kept(len(inputs)))
        ring.append(sess.run(None, {name: inputs[0]}))
        start = time.perf_counter()
        ring.append(sess.run(None, {name: inputs[-1]}))
        per = max(time.perf_counter() - start, 1e-6)
        calls = min(
            MAX_CALLS, max(settings.repeat, math.ceil(settings.repeat * settings.budget_s / per))
        )
        before = control() if control else 0.0
        for x in itertools.islice(itertools.cycle(inputs), calls):
            ring.append(sess.run(None, {name: x}))
        after = control() if control else 0.0
        times = op_seconds(json.loads(Path(sess.end_profiling()).read_text()))
    seconds = statistics.median(times[2:])  # the warm-up calls left out
    return seconds, (seconds / ((before + after) / 2) if control else None)


def time_network(
    name: str,
    shape: InputShape,
    clocks: Mapping[int, Clock],
    settings: CalibrationSettings,
    controls: Mapping[int, Control] | None = None,
) -> dict[int, Callable[[DeviceModel, float | None], ContextModel]]:
    """Context network `name` at input `shape` timed in ORT at each thread count of `clocks`
    (count -> clock; see the module docstring), paced by the count's control where
    `controls` has one (beside each timed and each profiled run), each to be modelled once
    the device model it is set against exists."""
    path = export_cached(name, create_model(name).eval(), shape).path
    # Named after the network, not its cached file, as the eager context networks are.
    analysis = replace(analyze(str(path), shape), model=name)
    out: dict[int, Callable[[DeviceModel, float | None], ContextModel]] = {}
    for threads, clock in clocks.items():
        sess = session(path, threads)
        forward = forward_of(sess, feeds(sess, shape))
        control = (controls or {}).get(threads)
        if control is None:
            samples, figure = time_forward(forward, clock, 2, settings.repeat), 0.0
        else:
            samples, beside = time_paced(forward, control, 2, settings.repeat)
            figure = paced(samples, beside)
        repeat = settings.repeat
        profile = profile_sessions(path, analysis.graph, shape, threads, repeat, control)
        groups = {nodes[0]: nodes for nodes in profile.owners.values() if nodes}
        whole = PacedSeconds(statistics.median(samples), figure)
        spans = PacedSpans(profile.kernel_medians(), profile.kernel_paced())
        out[threads] = partial(_network, analysis, whole, groups, spans)
    return out


def _network(
    analysis: Analysis,
    whole: PacedSeconds,
    groups: dict[str, list[str]],
    timed: PacedSpans,
    isolated: DeviceModel,
    reference: float | None,
) -> ContextModel:
    """One context network at one thread count as a `ContextModel` of ORT's kernels, its run
    and kernels at the speed of the `reference` control (the calibration's median) where they
    were paced."""
    measured_s, spans = whole.at(reference), timed.at(reference)
    features = layer_features(analysis, isolated.cache_bytes)
    merged = merged_features(analysis, features, groups, ConvPaths.of(isolated))
    # A group's merged row is named after its first node with features, its span after its
    # first node: map one to the other.
    named = {n: key for key, nodes in groups.items() for n in nodes}
    keyed = {f.name: spans[named[f.name]] for f in merged if named.get(f.name) in spans}
    layers = predict_layers(merged, isolated)
    return context_model(analysis, measured_s, merged, layers, isolated, keyed)
