"""ONNX Runtime as a runtime: run a model the way it is deployed, time it whole and per node.

A torch model is exported once with PyTorch's default exporter (``torch.onnx.export``, the
dynamo exporter since PyTorch 2.9, which also folds each BN that follows a conv) into
``$XDG_CACHE_HOME/hda/onnx/`` under a name that holds the model, input, torch version and a
digest of the module's structure; an ``.onnx`` file is run as it is. ONNX Runtime then runs it
on its CPU execution provider at ``--threads`` intra-op threads with every graph optimization
on (``ORT_ENABLE_ALL``: constant folding, Conv+BN+activation fusion, NCHWc layouts).

Per-node times come from ONNX Runtime's own profiler (its ``<node>_kernel_time`` events, one
group per ``model_run``), for the nodes of the *optimized* graph that ORT actually ran. Each
optimized node is joined to the nodes of the exported graph it stands for: ORT names a fused
node after the value it writes (``/layer1/layer1.0/relu/Relu_output_0_nchwc``), so the node owns
the exported node that wrote that value and everything upstream of it that no other optimized
node writes (Conv, BN and ReLU fused into one kernel own the three). hda's graph of the exported
file names those nodes, so a fused kernel's time lands on a layer with its conv's name and the
three nodes' metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import networkx as nx

from hardnet_analysis.errors import UsageError, first_line
from hardnet_analysis.graph.onnx_graph import EXTRA_HINT, ONNX_SUFFIX, require_onnx
from hardnet_analysis.shapes import InputShape

if TYPE_CHECKING:
    from hardnet_analysis.profiler.pace import Control

#: ONNX Runtime's graph optimization level hda runs at, as its run files name it.
OPT_LEVEL = "all"
#: The suffix ORT's NCHWc transformer gives the nodes and values it rewrites.
_NCHWC = "_nchwc"
_KERNEL = "_kernel_time"
#: What ORT's rewrites append to the name of the value a node is named after.
_REWRITE_SUFFIXES = (_NCHWC, "_bn")


def check_cpu_provider(device_type: str, thread_time: bool) -> None:
    """What ORT's CPU execution provider cannot do for any command is a one-line UsageError:
    run on another `device_type` than ``cpu``, or be timed by torch's thread clock."""
    if device_type != "cpu":
        raise UsageError("--runtime onnxruntime runs on --device cpu (its CPU execution provider)")
    if thread_time:
        raise UsageError("--thread-time clocks torch's thread; ONNX Runtime runs on its own")


def require_onnxruntime() -> ModuleType:
    """The `onnxruntime` package, or a one-line UsageError naming the extra."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError(f"--runtime onnxruntime needs the onnx extra: {EXTRA_HINT}") from None
    module: ModuleType = onnxruntime
    return module


def cache_dir() -> Path:
    """Where exports are kept: ``$XDG_CACHE_HOME/hda/onnx`` (``~/.cache/hda/onnx``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "hda" / "onnx"


@dataclass(frozen=True)
class Exported:
    """An ONNX file to run and how it was made (``torch.onnx.export (dynamo), torch 2.14.1``,
    or ``file`` for a file the user gave)."""

    path: Path
    how: str


def _digest(module: Any) -> str:
    """A short digest of a module's structure and parameter shapes: another architecture under
    the same name (a user's file.py:callable after an edit) gets another cache entry."""
    text = repr(module) + repr([(n, tuple(p.shape)) for n, p in module.named_parameters()])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def export_cached(model: str, module: Any, shape: InputShape) -> Exported:
    """`module` (eval mode, fp32, CPU) exported at `shape` by PyTorch's default exporter, from
    the cache when it was exported before; written atomically (a temporary file, then a
    rename). A module the exporter cannot handle is a one-line UsageError."""
    import torch

    stem = model.replace("/", "_").replace(":", "_")
    dims = "-".join("x".join(map(str, s)) for s in shape.shapes)
    how = f"torch.onnx.export (dynamo), torch {torch.__version__}"
    path = cache_dir() / f"{stem}-{dims}-torch{torch.__version__}-{_digest(module)}.onnx"
    if path.is_file():
        return Exported(path, how)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = tuple(torch.randn(s) for s in shape.shapes)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        partial = Path(tmp) / path.name
        try:
            with quiet_exporter():
                torch.onnx.export(
                    module.eval(), inputs, str(partial), dynamo=True, external_data=False
                )
        except Exception as exc:
            raise UsageError(
                f"{model} cannot be exported to ONNX: {type(exc).__name__}: {first_line(exc)}"
            ) from None
        os.replace(partial, path)
    return Exported(path, how)


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """No exporter progress lines on the terminal (``[torch.onnx] Obtain model graph...``)."""
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
    ):
        yield


def session(source: Path | bytes, threads: int, profile_dir: Path | None = None) -> Any:
    """An ONNX Runtime session of `source` (a file, or a model's bytes) on the CPU execution
    provider: `threads` intra-op threads, one inter-op, sequential, every optimization;
    profiling into `profile_dir` (the optimized graph as ``optimized.onnx``). A model ORT
    cannot run (an opset it lacks, an op it has no kernel for) is a one-line UsageError."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warning about NCHWc-specific files
    if profile_dir is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_dir / "ort")
        options.optimized_model_filepath = str(profile_dir / "optimized.onnx")
    model = source if isinstance(source, bytes) else str(source)
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        what = "the model" if isinstance(source, bytes) else source.name
        raise UsageError(
            f"ONNX Runtime {ort.__version__} cannot run {what}: {first_line(exc)}"
        ) from None


def feeds(sess: Any, shape: InputShape) -> dict[str, Any]:
    """Random inputs for `sess`, one per graph input, of `shape`'s shapes (integers for
    integer inputs)."""
    import numpy as np

    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for value, dims in zip(sess.get_inputs(), shape.shapes, strict=True):
        if "int" in value.type:
            out[value.name] = rng.integers(0, 2, size=dims, dtype=np.int64)
        else:
            out[value.name] = rng.random(dims, dtype=np.float32)
    return out


def kernel_times(events: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Seconds per optimized node in each ``model_run`` of an ORT profile (its JSON events):
    the node's ``_kernel_time`` events inside the run's span, summed."""
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"])
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    out: list[dict[str, float]] = [{} for _ in runs]
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith(_KERNEL):
            continue
        for index, (start, end) in enumerate(runs):
            if start <= event["ts"] <= end:
                node = name.removesuffix(_KERNEL)
                out[index][node] = out[index].get(node, 0.0) + event["dur"] / 1e6
                break
    return out


def ownership(original: Any, optimized: Any) -> dict[str, list[str]]:
    """Per node of the `optimized` graph (in order), the nodes of the `original` graph it stands
    for: the one that wrote the value it is named after, everything upstream of that which no
    other optimized node writes, and the epilogue after it that ORT fuses into a conv (a
    residual Add and an activation, when each is the only consumer of what precedes it). A
    node standing for no original value, or a layout copy (ORT's NCHWc reorders), owns
    nothing."""
    producer = {out: node for node in original.graph.node for out in node.output if out}
    consumers: dict[str, list[Any]] = {}
    for node in original.graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    # A node ORT kept keeps its name; one it rewrote is named after the value it writes.
    by_name = {node.name: node.output[0] for node in original.graph.node if node.output}
    anchors: dict[str, str] = {}
    for node in optimized.graph.node:
        if node.op_type in _LAYOUT_OPS:
            continue  # a copy of a value another kernel computed, under that value's name
        for candidate in _anchor_candidates(node):
            value = by_name.get(candidate, candidate)
            if value in producer and value not in anchors.values():
                anchors[node.name] = value
                break
    written = set(anchors.values())
    owned: set[str] = set()
    out: dict[str, list[str]] = {}
    for node in optimized.graph.node:
        anchor = anchors.get(node.name)
        if anchor is None:
            out[node.name] = []
            continue
        found = _upstream(producer, anchor, written, owned)
        found += _epilogue(consumers, anchor, written, owned)
        out[node.name] = found
    return out


#: ONNX Runtime's layout copies: they own no node of the exported graph.
_LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost"})
#: Ops ONNX Runtime fuses into the conv before them (its Sum input and activation).
_EPILOGUE = frozenset(
    {"Add", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh"}
)


def _epilogue(
    consumers: dict[str, list[Any]], anchor: str, written: set[str], owned: set[str]
) -> list[str]:
    """The chain of epilogue ops after `anchor`, each the only consumer of the value before it
    and writing no value another optimized node is named after."""
    found: list[str] = []
    value = anchor
    while len(consumers.get(value, [])) == 1:
        node = consumers[value][0]
        if node.op_type not in _EPILOGUE or node.name in owned or not node.output:
            break
        if any(out in written for out in node.output):
            break
        owned.add(node.name)
        found.append(node.name)
        value = node.output[0]
    return found


def _anchor_candidates(node: Any) -> list[str]:
    """The original node or value an optimized node may be named after: its own name, then its
    outputs, without the suffixes ORT's rewrites add (``getitem_3_bn_nchwc``: a BatchNorm ORT
    turned into a per-channel NCHWc conv, named after the value ``getitem_3`` it writes;
    ``node_silu/QuickGeluFusion/``: the sigmoid and mul of the node ``node_silu`` as one)."""
    out = []
    for name in (n for n in [node.name, *node.output] if n):
        if name.endswith("Fusion/"):  # a fused node: ``node_silu/QuickGeluFusion/``
            name = name[: name.rindex("/", 0, len(name) - 1)]
        while name.endswith(_REWRITE_SUFFIXES):
            name = name.rsplit("_", 1)[0]
        out.append(name)
    return out


def _upstream(
    producer: dict[str, Any], anchor: str, written: set[str], owned: set[str]
) -> list[str]:
    """The original nodes from the writer of `anchor` back to values other optimized nodes
    write (or graph inputs and initializers), not owned yet; in graph order."""
    found: list[Any] = []
    stack = [producer[anchor]]
    while stack:
        node = stack.pop()
        if node.name in owned:
            continue
        owned.add(node.name)
        found.append(node)
        for value in node.input:
            if value and value in producer and value not in written:
                stack.append(producer[value])
    order = {id(n): i for i, n in enumerate(producer.values())}
    return [n.name for n in sorted(found, key=lambda n: order.get(id(n), 0))]


def hda_nodes_of(graph: nx.DiGraph) -> dict[str, str]:
    """ONNX node name -> the hda node built from it (nodes that made no hda node, plumbing such
    as ``Shape`` and ``Constant``, are absent)."""
    return {
        attrs["onnx_node"]: name
        for name, attrs in graph.nodes(data=True)
        if attrs.get("onnx_node") is not None
    }


@dataclass(frozen=True)
class OrtProfile:
    """What the profiled session gave: per optimized node (in execution order) the hda nodes it
    owns, its seconds in each profiled run, the optimized graph's op counts, and the speed
    control beside each profiled run (`profiler.pace`; empty when none was taken)."""

    owners: dict[str, list[str]]
    per_run: list[dict[str, float]]
    optimized_ops: dict[str, int]
    controls: list[float] = field(default_factory=list)

    def kernel_medians(self) -> dict[str, float]:
        """Median seconds of each kernel that owns hda nodes, over the runs it ran in, keyed
        by its first hda node (the key its group's time goes under)."""
        out = {}
        for opt, nodes in self.owners.items():
            times = [run[opt] for run in self.per_run if opt in run]
            if nodes and times:
                out[nodes[0]] = statistics.median(times)
        return out

    def kernel_paced(self) -> dict[str, float]:
        """Each kernel's paced figure (`pace.paced_each`: the median of its seconds over the
        control beside each run), keyed as `kernel_medians`; empty without controls."""
        if not self.controls:
            return {}
        from hardnet_analysis.profiler.pace import paced_each  # imports torch

        paced = paced_each(self.per_run, self.controls)
        return {nodes[0]: paced[o] for o, nodes in self.owners.items() if nodes and o in paced}


def profile_sessions(
    path: Path,
    graph: nx.DiGraph,
    shape: InputShape,
    threads: int,
    repeat: int,
    control: Control | None = None,
) -> OrtProfile:
    """Run `path` `repeat` times under ORT's profiler after one warm-up run, with a speed
    `control` beside each run where one is given, and join its kernel events to `graph`
    (hda's graph of the same file)."""
    onnx = require_onnx()
    controls: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(path, threads, Path(tmp))
        data = feeds(sess, shape)
        sess.run(None, data)
        if control is None:
            for _ in range(repeat):
                sess.run(None, data)
        else:
            from hardnet_analysis.profiler.pace import beside_controls  # imports torch

            controls = beside_controls(lambda: sess.run(None, data), control, repeat)
        events = json.loads(Path(sess.end_profiling()).read_text())
        optimized = onnx.load(Path(tmp) / "optimized.onnx", load_external_data=False)
    owners = _hda_owners(path, optimized, graph)
    runs = kernel_times(events)[1:]  # the first is the warm-up
    ops: dict[str, int] = {}
    for node in optimized.graph.node:
        key = f"{node.domain}.{node.op_type}".lstrip(".")
        ops[key] = ops.get(key, 0) + 1
    return OrtProfile(owners, runs, ops, controls if len(controls) == len(runs) else [])


def kernel_owners(path: Path, graph: nx.DiGraph, threads: int) -> dict[str, list[str]]:
    """Per node of the graph ORT optimizes `path` into (at `threads`), the hda nodes of `graph`
    (hda's graph of the same file) it stands for; nothing is run."""
    onnx = require_onnx()
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(path, threads, Path(tmp))
        sess.end_profiling()
        optimized = onnx.load(Path(tmp) / "optimized.onnx", load_external_data=False)
    return _hda_owners(path, optimized, graph)


def _hda_owners(path: Path, optimized: Any, graph: nx.DiGraph) -> dict[str, list[str]]:
    """`ownership` of the `optimized` graph of `path`, in hda's node names (`graph`)."""
    original = require_onnx().load(path, load_external_data=False)
    names = hda_nodes_of(graph)
    return {
        opt: [names[n] for n in nodes if n in names]
        for opt, nodes in ownership(original, optimized).items()
    }


def is_onnx_file(model: str) -> bool:
    return model.endswith(ONNX_SUFFIX)


def forward_of(sess: Any, data: dict[str, Any]) -> Callable[[], object]:
    """One inference of `sess` on `data`, as a forward to time."""

    def forward() -> object:
        return sess.run(None, data)

    return forward


def nchwc_layout() -> tuple[int, int]:
    """How ONNX Runtime's NCHWc convs take channels on this CPU, probed on lone convs: (block,
    step). `block` (8 with AVX2, 16 with AVX-512, 0: no NCHWc) is the channels per group a
    grouped conv needs: 16 -> 16 in 2 groups runs NCHWc at block 8. `step` is what a dense
    conv's input channels (or a depthwise conv's channels) must be a multiple of: 4 on an
    AVX2 AMD EPYC, where 20 -> 20 runs NCHWc and 18 -> 18 does not. See
    ``metrics.conv_paths.nchwc_path``."""
    block = next((b for b in (8, 16) if _runs_nchwc(2 * b, 2 * b, 2)), 0)
    if not block:
        return 0, 0
    step = next(s for s in (1, 2, 4, 8, block) if _runs_nchwc(2 * block + s, 2 * block + s, 1))
    return block, step


def _runs_nchwc(c_in: int, c_out: int, groups: int) -> bool:
    """Whether ORT runs a 3x3 conv `c_in` -> `c_out` in `groups` at 8x8 as an NCHWc conv."""
    import numpy as np

    onnx = require_onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    weight = np.zeros((c_out, c_in // groups, 3, 3), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=groups)],
        "conv",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, c_in, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, c_out, 8, 8])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with tempfile.TemporaryDirectory() as tmp:
        session(model.SerializeToString(), 1, Path(tmp)).end_profiling()
        optimized = onnx.load(Path(tmp) / "optimized.onnx", load_external_data=False)
    return any(node.domain == "com.microsoft.nchwc" for node in optimized.graph.node)
