"""Per-op truth: each graph node's measured time, from ``torch.profiler``'s op events.

A profiled forward runs with no hooks: the profiler records one event per aten op the Python
code calls (``aten::conv2d``, ``aten::batch_norm``, ``aten::relu_``, ``aten::cat``, ...), each
spanning its own work (children such as ``aten::mkldnn_convolution`` included). The events a
forward calls from Python, in call order, are joined one-to-one to the traced graph's nodes in
execution order (`join`): a node's event is the next one whose name is the node's function
(``F.relu(x, inplace=True)`` calls ``aten::relu_``; ``x += y`` is ``__iadd__``, ``aten::add_``).

What does not join is counted, never dropped: events no node claims (an op on tensors the trace
does not follow, such as a factory in the forward) and nodes with work that got no event. A
node whose function is Python code calling several ops (``x[i, j]``, attention off its fused
path, ``F.normalize``) owns the events between its first one and the next node's.

A node's time is its events' span on the CPU (wall time of the op, every intra-op thread
included) or, on a GPU, its kernels' device time, which the profiler links to the op through
correlation ids. What no op covers, the Python between ops, shows as the gap between the sum of
op times and the un-profiled forward (`OpTimes.op_sum_ratio`). On the CPU a speed control
(`profiler.pace`) runs between the profiled forwards, outside their ranges, so that each op's
time can be set against the speed the machine ran at just then (`OpTimes.node_paced`).
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hardnet_analysis.profiler.pace import Control, beside_controls, paced_each

if TYPE_CHECKING:
    from hardnet_analysis.backends import Backend

#: The range each profiled forward runs in; the events directly inside it are the ops the
#: forward called from Python.
FORWARD_RANGE = "hda/forward"

#: Python functions whose ops do not carry their name: the aten prefixes each one's first event
#: may have. Others match ``aten::<name>`` with the dunder and in-place underscores stripped.
EVENT_NAMES: dict[str, tuple[str, ...]] = {
    "getitem": ("slice", "select", "index", "unsqueeze", "alias", "view", "narrow"),
    "setitem": ("slice", "select", "index", "copy", "fill"),
    "iadd": ("add",),
    "radd": ("add",),
    "isub": ("sub",),
    "rsub": ("sub", "rsub"),
    "imul": ("mul",),
    "rmul": ("mul",),
    "truediv": ("div",),
    "itruediv": ("div",),
    "rtruediv": ("div", "reciprocal"),
    "floordiv": ("div", "floor_divide"),
    "interpolate": ("upsample", "_upsample", "interpolate"),
    "upsample": ("upsample", "_upsample"),
    "pad": ("pad", "constant_pad_nd", "reflection_pad", "replication_pad", "zero_pad"),
    "matmul": ("matmul", "mm", "bmm"),
    "multi_head_attention_forward": ("_native_multi_head_attention", "linear"),
    "scaled_dot_product_attention": ("scaled_dot_product_attention", "_scaled_dot_product"),
    "neg": ("neg",),
    "pow": ("pow",),
    "and": ("bitwise_and", "logical_and"),
    "or": ("bitwise_or", "logical_or"),
}

#: Functions that are Python code calling several ops (``x[0, :2]`` slices twice; attention off
#: its fused path runs a dozen): their node owns every event up to the next node's first one.
#: For any other node, such events join nothing.
COMPOSITE = frozenset(
    {"getitem", "setitem", "multi_head_attention_forward", "normalize", "local_response_norm"}
)


def base_name(name: str) -> str:
    """``aten::relu_`` -> ``relu``; ``__iadd__`` -> ``iadd``; ``max_pool2d`` unchanged."""
    return name.removeprefix("aten::").strip("_")


def matches(function: str, event: str) -> bool:
    """Whether op event `event` can be the first one that calling `function` records: its base
    name starts with the function's (``max_pool2d`` -> ``aten::max_pool2d_with_indices``)
    or with one of `EVENT_NAMES`."""
    fn, op = base_name(function), base_name(event)
    return any(op.startswith(base_name(p)) for p in (fn, *EVENT_NAMES.get(fn, ())))


@dataclass(frozen=True)
class Joined:
    """How the events of one forward join the graph's nodes: per node (in `nodes` order) the
    indices of its events; the indices of events no node claimed; the nodes that got none."""

    events_of: tuple[tuple[int, ...], ...]
    unjoined_events: tuple[int, ...]
    unjoined_nodes: tuple[str, ...]


def join(nodes: Sequence[tuple[str, str]], events: Sequence[str], window: int = 64) -> Joined:
    """Join (node name, function) pairs in execution order to op event names in call order.

    Each node takes the first event at or after the cursor that `matches` its function, looking
    at most `window` events ahead (so one node without an event cannot swallow the rest of the
    forward); the events skipped on the way belong to the previous node when it is `COMPOSITE`,
    else to no node. Example: nodes conv, relu and events conv2d, zeros, relu_ give conv ->
    [0], relu -> [2], and event 1 (zeros) unjoined.
    """
    owned: list[list[int]] = [[] for _ in nodes]
    unjoined: list[int] = []
    missing: list[str] = []
    cursor, previous = 0, -1
    for index, (name, function) in enumerate(nodes):
        ahead = range(cursor, min(len(events), cursor + window))
        found = next((j for j in ahead if matches(function, events[j])), None)
        if found is None:
            missing.append(name)
            continue
        _settle(range(cursor, found), previous, nodes, owned, unjoined)
        owned[index].append(found)
        cursor, previous = found + 1, index
    _settle(range(cursor, len(events)), previous, nodes, owned, unjoined)
    return Joined(tuple(tuple(o) for o in owned), tuple(unjoined), tuple(missing))


def _settle(
    skipped: range,
    previous: int,
    nodes: Sequence[tuple[str, str]],
    owned: list[list[int]],
    unjoined: list[int],
) -> None:
    """Give the `skipped` events to the previous node if it is composite, else to no node."""
    if previous >= 0 and base_name(nodes[previous][1]) in COMPOSITE:
        owned[previous].extend(skipped)
    else:
        unjoined.extend(skipped)


@dataclass(frozen=True)
class OpEvent:
    """One op a forward called from Python: its name and its seconds (the op's own span on the
    CPU, its kernels' device time on a GPU)."""

    name: str
    seconds: float


@dataclass(frozen=True)
class OpTimes:
    """Per node, the median over the profiled forwards of its events' summed seconds; what did
    not join (median seconds per unjoined event name, and the nodes without events); and the
    profiler's cost: the median profiled forward and the median sum of every op's seconds, each
    over the un-profiled forward's median (`forward_s`); and where speed controls lay beside
    the profiled forwards (`profiler.pace`), their seconds (one per forward) and per node its
    paced figure (`pace.paced_each`: the median of its seconds over the control beside them)."""

    node_s: dict[str, float]
    unjoined_events: dict[str, float]
    unjoined_nodes: tuple[str, ...]
    forwards: int
    forward_s: float
    profiled_ratio: float
    op_sum_ratio: float
    per_forward: tuple[dict[str, float], ...] = field(default=(), repr=False)
    controls: tuple[float, ...] = ()
    node_paced: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def unjoined_s(self) -> float:
        return sum(self.unjoined_events.values())


def node_times(
    nodes: Sequence[tuple[str, str]],
    forwards: Sequence[Sequence[OpEvent]],
    walls: Sequence[float],
    forward_s: float,
    controls: Sequence[float] = (),
) -> OpTimes:
    """Join every profiled forward's events (`forwards`, with their wall seconds `walls` and the
    speed controls beside them, if any) to `nodes` and summarise them (`OpTimes`) against the
    un-profiled forward's `forward_s`."""
    samples: dict[str, list[float]] = {name: [] for name, _ in nodes}
    per_forward: list[dict[str, float]] = []
    unjoined: dict[str, list[float]] = {}
    missing: set[str] = set()
    op_sums = []
    for events in forwards:
        joined = join(nodes, [e.name for e in events])
        times = {
            name: sum(events[i].seconds for i in indices)
            for (name, _), indices in zip(nodes, joined.events_of, strict=True)
            if indices
        }
        for name, seconds in times.items():
            samples[name].append(seconds)
        per_forward.append(times)
        per_name: dict[str, float] = {}
        for i in joined.unjoined_events:
            per_name[events[i].name] = per_name.get(events[i].name, 0.0) + events[i].seconds
        for key, seconds in per_name.items():
            unjoined.setdefault(key, []).append(seconds)
        missing.update(joined.unjoined_nodes)
        op_sums.append(sum(e.seconds for e in events))
    runs = max(len(forwards), 1)
    return OpTimes(
        node_s={k: statistics.median(v) for k, v in samples.items() if v},
        # an event seen in some forwards only counts 0 in the others
        unjoined_events={k: sum(v) / runs for k, v in unjoined.items()},
        unjoined_nodes=tuple(sorted(missing)),
        forwards=len(forwards),
        forward_s=forward_s,
        profiled_ratio=statistics.median(walls) / forward_s if walls else 0.0,
        op_sum_ratio=statistics.median(op_sums) / forward_s if op_sums else 0.0,
        per_forward=tuple(per_forward),
        controls=tuple(controls),
        node_paced=paced_each(per_forward, controls) if controls else {},
    )


#: A line the profiler's C++ library (kineto) writes to stderr by itself: ``USDT:2026-12-05
#: 12:56:00 13441:13441 SyncActivityProfilerHandler.cpp:39] profiler_start``.
_PROFILER_LOG = re.compile(r"^[A-Z]+:\d{4}-\d\d-\d\d [\d:]+ \d+:\d+ \S+\.cpp:\d+\]")


@contextlib.contextmanager
def _without_profiler_log() -> Iterator[None]:
    """Keep kineto's own log lines (profiler start and stop, "gpuGetDeviceCount failed" on a
    machine without a GPU) off stderr, where hda's errors and warnings are one line each; any
    other line written meanwhile is passed on."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # errors and below: read once, at start
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [
                line
                for line in sink.read().decode(errors="replace").splitlines(keepends=True)
                if not _PROFILER_LOG.match(line)
            ]
            sys.stderr.write("".join(kept))


def graph_nodes(graph: Any) -> list[tuple[str, str]]:
    """The traced graph's nodes that call a function, in execution order, with its name: the
    nodes with work to join (inputs, outputs, constants and the pieces of a split call none)."""
    called = [(d["order"], n, d["fn"]) for n, d in graph.nodes(data=True) if "fn" in d]
    return [(name, fn) for _, name, fn in sorted(called)]


def profile_forwards(
    forward: Callable[[], object], repeat: int, backend: Backend, control: Control | None = None
) -> tuple[list[list[OpEvent]], list[float], list[float]]:
    """`repeat` forwards under ``torch.profiler`` with the backend's activities: each
    forward's ops in call order (`OpEvent`, seconds by `Backend.op_seconds`), each profiled
    forward's wall seconds (its range's span), and with a `control`, the speed control beside
    each forward (`pace.beside_controls`; its ops lie outside every forward's range and join
    nothing; empty without one)."""
    from torch.autograd.profiler import record_function
    from torch.profiler import profile

    def profiled() -> None:
        with record_function(FORWARD_RANGE):
            forward()

    controls: list[float] = []
    with _without_profiler_log(), profile(activities=backend.profiler_activities()) as prof:
        if control is None:
            for _ in range(repeat):
                profiled()
        else:
            controls = beside_controls(profiled, control, repeat)
    ranges = sorted(
        (e for e in prof.events() if e.name == FORWARD_RANGE), key=lambda e: e.time_range.start
    )
    children: dict[int, list[Any]] = {id(r): [] for r in ranges}
    for event in prof.events():
        parent = event.cpu_parent
        if parent is not None and id(parent) in children:
            children[id(parent)].append(event)
    forwards = []
    for forward_range in ranges:
        ops = sorted(children[id(forward_range)], key=lambda e: e.time_range.start)
        forwards.append([OpEvent(e.name, backend.op_seconds(e)) for e in ops])
    walls = [r.time_range.elapsed_us() / 1e6 for r in ranges]
    return forwards, walls, controls
