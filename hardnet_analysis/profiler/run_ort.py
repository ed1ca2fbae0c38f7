"""`profile_ort`: `hda profile --runtime onnxruntime`, a model timed as ONNX Runtime runs it.

The run is a `ProfileRun` like an eager one (``profiler.run``), with a `RuntimeRecord` that says
so: whole-model latency over ``session.run`` calls (wall clock), one layer per node of the
graph ORT optimized and ran (a fused Conv+BN+ReLU kernel is one layer holding the three hda
nodes' metrics, named after its conv), the DRAM counters that work here, the CPU roofline.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

from hardnet_analysis.analysis import analyze
from hardnet_analysis.backends import pick
from hardnet_analysis.documents.profile_run import ProfileRun, RuntimeRecord
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.traffic import fusion_rules, grouped_traffic, traffic
from hardnet_analysis.models import create_model
from hardnet_analysis.profiler.allocator import FaultCount, fault_warning, kept_memory
from hardnet_analysis.profiler.dram import measure_dram
from hardnet_analysis.profiler.latency import Stats
from hardnet_analysis.profiler.onnxrt import (
    OPT_LEVEL,
    Exported,
    OrtProfile,
    check_cpu_provider,
    export_cached,
    feeds,
    forward_of,
    is_onnx_file,
    profile_sessions,
    require_onnxruntime,
    session,
)
from hardnet_analysis.profiler.ops import OpTimes
from hardnet_analysis.profiler.pace import (
    Control,
    control_threads,
    pace_of,
    time_paced,
)
from hardnet_analysis.profiler.probe import probe
from hardnet_analysis.profiler.run import (
    Log,
    Settings,
    _layers,
    _LayerSums,
    _load,
    _Measured,
    _Run,
    op_join,
    roofline_spec,
)
from hardnet_analysis.shapes import InputShape

#: The principal ops a fused kernel is named after, in order of preference.
_PRINCIPAL = ("conv", "conv_transpose", "linear", "matmul", "einsum", "attention")


def check_settings(settings: Settings) -> None:
    """What ONNX Runtime's CPU provider cannot honour is a one-line UsageError."""
    check_cpu_provider(settings.device.split(":", 1)[0], settings.thread_time)
    if settings.dtype != "fp32" or settings.channels_last:
        raise UsageError(
            "--runtime onnxruntime runs the fp32 NCHW export (ORT picks its own layouts): "
            "drop --dtype and --channels-last"
        )


def _source(model: str, shape: InputShape, say: Log) -> tuple[Exported, Analysis]:
    """The ONNX file to run (the model's own, or its cached export) and hda's analysis of it."""
    if is_onnx_file(model):
        return Exported(Path(model), "file"), analyze(model, shape)
    exported = export_cached(model, create_model(model).eval(), shape)
    say(f"onnx: {exported.path} ({exported.how})")
    return exported, analyze(str(exported.path), shape, name=model)


def named_groups(owners: dict[str, list[str]], analysis: Analysis) -> dict[str, list[str]]:
    """Each optimized node's hda nodes under a layer name: its principal op's node (its conv),
    else its last node (nodes that own none, layout reorders, are left out)."""
    ops = {r.name: r.op for r in analysis.layers}
    groups: dict[str, list[str]] = {}
    for opt, nodes in owners.items():
        if not nodes:
            continue
        principal = [n for n in nodes if ops.get(n) in _PRINCIPAL]
        name = (principal or nodes[-1:])[0]
        groups[name if name not in groups else opt] = nodes
    return groups


def _op_times(profile: OrtProfile, groups: dict[str, list[str]], whole_s: float) -> OpTimes:
    """ORT's kernel times as `OpTimes` keyed by each group's first node (the group's time
    lands on its layer), over the un-profiled run's median `whole_s`."""
    key_of = {opt: nodes[0] for opt, nodes in profile.owners.items() if nodes}
    per_run = [{key_of[o]: t for o, t in run.items() if o in key_of} for run in profile.per_run]
    node_s = profile.kernel_medians()
    # Kernels that stand for no node of the exported graph (ORT's NCHWc layout reorders).
    unjoined = {
        o: Stats.of([run.get(o, 0.0) for run in profile.per_run]).median
        for o in profile.owners
        if not profile.owners[o]
    }
    sums = [sum(run.values()) for run in profile.per_run] or [0.0]
    return OpTimes(
        node_s=node_s,
        unjoined_events=unjoined,
        unjoined_nodes=(),
        forwards=len(per_run),
        forward_s=whole_s,
        profiled_ratio=1.0,
        op_sum_ratio=Stats.of(sums).median / whole_s,
        per_forward=tuple(per_run),
        controls=tuple(profile.controls),
        node_paced=profile.kernel_paced(),
    )


def profile_ort(model: str, settings: Settings, log: Log | None = None) -> ProfileRun:
    """Profile `model` (anything `resolve` takes, or an ``.onnx`` file) in ONNX Runtime; see the
    module docstring."""
    say: Log = log or (lambda message: None)
    check_settings(settings)
    ort = require_onnxruntime()
    picked = pick("cpu")
    threads = picked.backend.prepare(settings.threads)
    shape = settings.input
    exported, analysis = _source(model, shape, say)
    sess = session(exported.path, threads)
    forward = FaultCount(forward_of(sess, feeds(sess, shape)))
    run = _Run(model, settings, picked.backend, picked.device, None, threads, None)
    load = _load(picked.backend, threads, False, say)
    control = Control(picked.backend.clock(), control_threads(threads, "onnxruntime"))
    path, graph, repeat = exported.path, analysis.graph, settings.repeat
    with kept_memory() if settings.allocator == "kept" else nullcontext():
        samples, controls = time_paced(forward, control, settings.warmup, repeat)
        end = _load(picked.backend, threads, False, say)  # brackets the timing
        profile = profile_sessions(path, graph, shape, threads, repeat, control)
    whole = Stats.of(samples)
    faults = forward.per_call(settings.warmup, repeat)
    warning = fault_warning(faults, settings.allocator) if faults is not None else None
    if warning:
        say(f"warning: {warning}")
    groups = named_groups(profile.owners, analysis)
    ops = _op_times(profile, groups, whole.median)
    say(_join_line(profile, ops))
    choice = probe(picked.backend, None, settings.counters)
    dram = measure_dram(choice, model, settings, forward)
    pace = pace_of(samples, controls, control_threads(threads, "onnxruntime"), False)
    measured = _Measured(whole, ops, choice, dram, end, pace=pace, page_faults=faults)
    keys = {nodes[0] for nodes in groups.values()}
    sums = _group_sums(analysis, groups, settings.dtype)
    spec = roofline_spec(picked.backend, picked.device)
    layers = _layers(ops, sums, keys, dram.layers, (spec, settings.dtype))
    kernels = {g.nodes[0]: g.bytes for g in grouped_traffic(analysis, groups)}
    names = {nodes[0]: name for name, nodes in groups.items()}  # layer key -> group name
    layers = tuple(
        replace(layer, name=names.get(layer.name, layer.name), kernel_bytes=kernels.get(layer.name))
        for layer in layers
    )
    record = RuntimeRecord(
        "onnxruntime",
        ort.__version__,
        "CPUExecutionProvider",
        OPT_LEVEL,
        exported.how,
        profile.optimized_ops,
        sum(kernels.values()),
        tuple(asdict(rule) for rule in fusion_rules(analysis, groups)),
    )
    document = run.document(analysis, measured, layers, spec)
    join = op_join(ops, "onnxruntime profiler", pace.controls.threads, False)
    return replace(
        document,
        load_probe=load,
        end_probe=measured.end_probe,
        runtime=record,
        ops=join,
        pace=pace,
        page_faults=faults,
    )


def _join_line(profile: OrtProfile, ops: OpTimes) -> str:
    """``per-node times: 97 of 148 ONNX Runtime kernels joined to hda nodes (its profiler, 3
    runs); 51 own none (layout reorders: 9.3% of the run)``."""
    joined = sum(1 for nodes in profile.owners.values() if nodes)
    line = (
        f"per-node times: {joined} of {len(profile.owners)} ONNX Runtime kernels joined to hda "
        f"nodes (its profiler, {ops.forwards} runs)"
    )
    if ops.unjoined_events:
        share = ops.unjoined_s / ops.forward_s
        line += f"; {len(ops.unjoined_events)} own none (layout reorders: {share:.1%} of the run)"
    return line


def _group_sums(
    analysis: Analysis, groups: dict[str, list[str]], dtype: str
) -> dict[str, _LayerSums]:
    """Per group, keyed by its first node (the key its time is under), its nodes' summed
    metrics."""
    flow = traffic(analysis.graph, dtype).by_name()
    records = {r.name: r for r in analysis.layers}
    sums: dict[str, _LayerSums] = {}
    for nodes in groups.values():
        acc = sums.setdefault(nodes[0], _LayerSums())
        for node in nodes:
            if node in records:
                acc.add(records[node], flow[node])
    return sums
