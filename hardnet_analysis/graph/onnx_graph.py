"""ONNX graphs: an ``.onnx`` file becomes hda's operation DAG, costed by the one cost engine.

Shapes come from ONNX's own shape inference on the file, run at the input shape asked for
(a dynamic dim needs ``--input``); initializers are the weights. Each node of the default domain
maps to the hda op of the same work through ``onnx_ops.ONNX_OPS``, so a model exported from
PyTorch has the MACs and CIO of the module it came from, exactly. Values computed only from
constants and shapes (``Shape -> Gather -> Concat -> Reshape``, an ``Identity`` of a weight)
make no node, as ``x.size(0)`` makes none in a traced module; the weights they stand for stay
the weights of the op that consumes them.

Parameters are the floating-point initializers with more than one element that feed a data
input of an op (a BN's running mean and variance are statistics, not parameters; a scalar such
as the 0.5 of ``x * 0.5`` is a constant), each counted once. An exporter that folds each
BatchNorm into the conv before it (PyTorch's in eval mode, by default) leaves the BN's weight and
bias out and gives the conv a bias: the graph's ``folded_bn`` names those convs (and the BN,
where the file says which).

Layers are named by module path where the export kept it: a weighted op by its weight's name
(``layer1.0.conv1.weight`` -> ``layer1.0.conv1``), else by the exporter's scope (the TorchScript
exporter's ``/layer1/layer1.0/relu/Relu``, the dynamo exporter's ``name_scopes``), else by the
node's name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import networkx as nx

from hardnet_analysis.errors import UsageError, first_line
from hardnet_analysis.graph.ir import TOP_BLOCK, GraphBuilder, Shape
from hardnet_analysis.graph.onnx_ops import (
    COMPUTE_OPS,
    CONTROL_INPUTS,
    ONNX_OPS,
    ONNX_UNSUPPORTED,
    STATISTICS,
    VALUE_SOURCES,
    OnnxNode,
    snake,
)
from hardnet_analysis.shapes import InputShape

#: The ending of an ONNX model file.
ONNX_SUFFIX = ".onnx"

#: The install extra that brings onnx and onnxruntime.
EXTRA_HINT = "pip install 'hda[onnx]'"

_DOMAINS = ("", "ai.onnx")
#: The dynamo exporter's rewrite rule that folds a BatchNorm into the conv before it.
_BN_FOLD_RULE = "FuseBatchNormIntoConv"
#: Initializer names the TorchScript exporter gives to tensors it computed (a conv's weight
#: with its BN folded in); a module's own tensors keep their ``layer.weight`` names.
_EXPORTER_MADE = "onnx::"


def require_onnx() -> ModuleType:
    """The `onnx` package, or a one-line UsageError naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise UsageError(f"reading ONNX files needs the onnx extra: {EXTRA_HINT}") from None
    return onnx


@dataclass(frozen=True)
class OnnxInput:
    """One graph input: its name, dims (None where dynamic) and element type (``float32``)."""

    name: str
    dims: tuple[int | None, ...]
    dtype: str

    def text(self) -> str:
        """``1x3x?x?`` for a dynamic height and width."""
        return "x".join("?" if d is None else str(d) for d in self.dims)


@dataclass(frozen=True)
class OnnxSpec:
    """An ONNX model file, read once (weights' values are not needed: only their shapes).
    `input_size` is the first input's static (height, width) when it is an image with both
    fixed, else None; `in_channels` its static channel count."""

    name: str
    path: Path
    inputs: tuple[OnnxInput, ...]
    model: Any = field(repr=False, compare=False)  # onnx.ModelProto

    @property
    def input_size(self) -> tuple[int, int] | None:
        dims = self.inputs[0].dims if self.inputs else ()
        if len(dims) == 4 and dims[2] is not None and dims[3] is not None:
            return dims[2], dims[3]
        return None

    @property
    def in_channels(self) -> int | None:
        dims = self.inputs[0].dims if self.inputs else ()
        return dims[1] if len(dims) >= 2 else None

    def input_shape(
        self, size: tuple[int, int] | None, batch: int, channels: int | None = None
    ) -> InputShape:
        """The shapes to run the file at: the first input at `size` (None: its own) and `batch`
        (its own where fixed and `batch` is 1), every other input at its own dims. A dim the
        file leaves dynamic and nothing here gives is a one-line UsageError."""
        shapes = [self._first_shape(size, batch, channels)] if self.inputs else []
        for other in self.inputs[1:]:
            if None in other.dims:
                raise UsageError(
                    f"{self.name}: input {other.name!r} has dynamic dims {other.text()}; "
                    "only the first input's batch, channels and size can be given (--input)"
                )
            shapes.append(tuple(d for d in other.dims if d is not None))
        if not shapes:
            raise UsageError(f"{self.name}: the ONNX graph has no inputs to give a shape to")
        return InputShape(tuple(shapes))

    def _first_shape(
        self, size: tuple[int, int] | None, batch: int, channels: int | None
    ) -> tuple[int, ...]:
        first = self.inputs[0]
        dims = list(first.dims)
        if dims and (dims[0] is None or batch != 1):
            dims[0] = batch
        if channels is not None and len(dims) == 4:
            dims[1] = channels
        if size is not None:
            if len(dims) != 4:
                raise UsageError(
                    f"{self.name}: --input gives an image's height and width, but input "
                    f"{first.name!r} is {first.text()}, not NCHW"
                )
            dims[2:] = size
        if None in dims:
            raise UsageError(
                f"{self.name}: input {first.name!r} has dynamic dims {first.text()}; give its "
                "size with --input HxW (and --batch)"
            )
        return tuple(d for d in dims if d is not None)


def load_onnx(path: Path) -> OnnxSpec:
    """The ONNX model in `path`, without its external weight data (shapes suffice); a missing,
    truncated or non-ONNX file is a one-line UsageError."""
    onnx = require_onnx()
    if not path.is_file():
        raise UsageError(f"no such file: {str(path)!r} (an ONNX model, .onnx)")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise UsageError(
            f"{str(path)!r} is not an ONNX model that onnx reads: {type(exc).__name__}: "
            f"{first_line(exc)}"
        ) from None
    if not model.graph.node:
        raise UsageError(f"{str(path)!r} holds no ONNX graph (is it an ONNX model file?)")
    _drop_weight_values(model)
    newest = onnx.defs.onnx_opset_version()
    opset = max((o.version for o in model.opset_import if o.domain in _DOMAINS), default=0)
    if opset > newest:
        raise UsageError(
            f"{str(path)!r} uses ONNX opset {opset}; the installed onnx {onnx.__version__} knows "
            f"opsets up to {newest} (pip install -U onnx)"
        )
    return OnnxSpec(path.name, path, _graph_inputs(onnx, model.graph), model)


def _drop_weight_values(model: Any) -> None:
    """Drop the values of initializers too large to be shape arithmetic (weights): analysis
    needs their dims only, and shape inference over a 100 MB model then takes 0.1 s, not 2."""
    for init in model.graph.initializer:
        if _elements(init.dims) > _FOLD_LIMIT:
            for name in ("raw_data", "float_data", "double_data", "int32_data", "int64_data"):
                init.ClearField(name)


def _graph_inputs(onnx: ModuleType, graph: Any) -> tuple[OnnxInput, ...]:
    """The graph's real inputs (older files also list their initializers as inputs)."""
    weights = {init.name for init in graph.initializer}
    inputs = []
    for value in graph.input:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.dim_value > 0 else None for d in tensor.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name
        inputs.append(OnnxInput(value.name, dims, dtype))
    return tuple(inputs)


def dims_per_input(spec: OnnxSpec, shape: InputShape) -> list[tuple[int, ...]]:
    """The dims `shape` gives each graph input of `spec`, in the file's order: positional
    shapes first, keyword shapes by input name (``--input-shape mask=1x1x64x64``). Too few or
    too many shapes, an unknown name or a rank other than the file's are one-line UsageErrors
    that list the file's inputs."""
    names = [i.name for i in spec.inputs]
    listed = ", ".join(f"{i.name} {i.text()}" for i in spec.inputs)
    positional = len(shape.shapes) - len(shape.keywords)
    named = dict(zip(shape.keywords, shape.shapes[positional:], strict=True))
    unknown = [k for k in named if k not in names]
    if unknown:
        raise UsageError(f"{spec.name} has no input {unknown[0]!r}; its inputs: {listed}")
    if positional + len(named) != len(names) or set(names[:positional]) & set(named):
        raise UsageError(
            f"{spec.name} takes {len(names)} inputs ({listed}); {len(shape.shapes)} given"
        )
    dims = [shape.shapes[i] if i < positional else named[n] for i, n in enumerate(names)]
    for value, given in zip(spec.inputs, dims, strict=True):
        if value.dims and len(value.dims) != len(given):
            text = "x".join(map(str, given))
            raise UsageError(f"{spec.name}: input {value.name!r} is {value.text()}, not {text}")
    return dims


def _inferred(spec: OnnxSpec, shape: InputShape) -> Any:
    """A copy of the model with its inputs fixed to `shape`, local functions inlined and every
    value's shape inferred (with the shape arithmetic folded where ONNX's inference alone
    leaves a shape unknown)."""
    onnx = require_onnx()
    model = onnx.ModelProto()
    model.CopyFrom(spec.model)
    given = dict(zip([i.name for i in spec.inputs], dims_per_input(spec, shape), strict=True))
    for value in model.graph.input:
        if value.name not in given:
            continue
        dims = given[value.name]
        del value.type.tensor_type.shape.dim[:]
        for size in dims:
            value.type.tensor_type.shape.dim.add().dim_value = size
    del model.graph.value_info[:]  # shapes recorded at export time may be other sizes'
    try:
        if model.functions:
            model = onnx.inliner.inline_local_functions(model)
        model = _infer(onnx, model)
        for _ in range(_FOLD_ROUNDS):
            if all(s is not None for s in _shapes(model.graph).values()) or not _fold(model):
                break
            model = _infer(onnx, model)
        return model
    except Exception as exc:
        text = " x ".join("x".join(map(str, s)) for s in shape.shapes)
        raise UsageError(
            f"{spec.name}: ONNX shape inference failed at input {text}: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None


def _infer(onnx: ModuleType, model: Any) -> Any:
    return onnx.shape_inference.infer_shapes(
        model, check_type=False, strict_mode=True, data_prop=True
    )


#: At most this many rounds of folding shape arithmetic and inferring again (Swin-T's
#: window shapes, each computed from the last block's, take 17).
_FOLD_ROUNDS = 64
#: The mark of an initializer that folding made.
_FOLDED = "hda: folded shape arithmetic"
#: Values larger than this are never folded (shape arithmetic is a few integers).
_FOLD_LIMIT = 4096


def _fold(model: Any) -> bool:
    """Evaluate, with ONNX's reference evaluator, the nodes whose every input is now known (a
    ``Shape`` of a tensor whose shape is inferred, constants, small initializers) and replace
    them by initializers holding their values, so that the next inference sees the sizes
    ``Slice``, ``Reshape`` and ``ReduceMean`` were computed from. Nothing that reads or makes a
    weight-like tensor (float, more than one element: ViT's class token, a relative position
    table) is folded, so parameters stay parameters. True when any node was folded."""
    import numpy as np
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    shapes = _shapes(graph)
    opsets = {o.domain: o.version for o in model.opset_import}
    known: dict[str, Any] = {
        i.name: numpy_helper.to_array(i)
        for i in graph.initializer
        if i.data_location != 1 and _elements(i.dims) <= _FOLD_LIMIT
    }
    weights = {name for name, array in known.items() if _weight_like(array)}
    weights |= {i.name for i in graph.initializer if _elements(i.dims) > _FOLD_LIMIT}
    folded: list[Any] = []
    for node in graph.node:
        if node.domain not in _DOMAINS or node.op_type in COMPUTE_OPS:
            continue
        if any(name in weights for name in node.input):
            continue
        value = _evaluate(node, known, shapes, opsets, ReferenceEvaluator, np)
        if value is None or any(_weight_like(np.asarray(v)) for v in value):
            continue
        for out, array in zip(node.output, value, strict=False):
            known[out] = array
        folded.append(node)
    if not folded:
        return False
    made = {out for node in folded for out in node.output}
    for node in folded:
        graph.node.remove(node)
    for name in made:
        tensor = numpy_helper.from_array(np.asarray(known[name]), name)
        tensor.doc_string = _FOLDED  # computed here, never a parameter
        graph.initializer.append(tensor)
    return True


def _weight_like(array: Any) -> bool:
    """Whether a value could be a parameter: floating point, more than one element."""
    return bool(array.dtype.kind == "f" and array.size > 1)


def _evaluate(
    node: Any,
    known: dict[str, Any],
    shapes: dict[str, Shape | None],
    opsets: dict[str, int],
    evaluator: Any,
    np: ModuleType,
) -> list[Any] | None:
    """The outputs of `node` when all its inputs are known and they are small, else None."""
    inputs = [name for name in node.input if name]
    if node.op_type == "Shape":
        shape = shapes.get(inputs[0])
        if shape is None:
            return None
        start = next((a.i for a in node.attribute if a.name == "start"), 0)
        end = next((a.i for a in node.attribute if a.name == "end"), len(shape))
        return [np.array(shape[start:end] if end else shape[start:], dtype=np.int64)]
    if not all(name in known for name in inputs) or (node.op_type == "Constant" and inputs):
        return None
    try:
        outputs = evaluator(node, opsets=opsets).run(None, {n: known[n] for n in inputs})
    except Exception:  # an op the reference evaluator lacks: left to shape inference
        return None
    if any(np.asarray(o).size > _FOLD_LIMIT for o in outputs):
        return None
    return list(outputs)


def _elements(dims: Iterable[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


def _shapes(graph: Any) -> dict[str, Shape | None]:
    """Every value's shape by name (None where a dim stayed unknown)."""
    shapes: dict[str, Shape | None] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor = value.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        shapes[value.name] = tuple(dims) if min(dims, default=0) >= 0 else None
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _module_path(scopes: Iterable[str]) -> str:
    """The TorchScript exporter's scope names joined into a module path. A scope names a child
    by its attribute (``conv1``) or by a path that repeats the end of its parent's
    (``layer1.0`` under ``layer1``, ``block.2.0`` under ``features.3.block.2``):
    ``layer2``, ``layer2.0``, ``downsample``, ``downsample.0`` -> ``layer2.0.downsample.0``."""
    path = ""
    for scope in scopes:
        parts = scope.split(".")
        for k in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:k])
            if path == parent or path.endswith(f".{parent}"):
                path = path[: len(path) - len(parent)] + scope
                break
        else:
            path = f"{path}.{scope}".lstrip(".")
    return path


def _metadata(node: Any) -> dict[str, str]:
    return {prop.key: prop.value for prop in node.metadata_props}


def _literal_list(text: str | None) -> list[str]:
    try:
        value = ast.literal_eval(text) if text else []
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _scope(node: Any) -> tuple[str, bool] | None:
    """The module path the exporter recorded for `node` and whether that module is a leaf
    (a ``torch.nn`` layer, so the op is the layer; in a user module's own forward the tracer
    appends the op): from the dynamo exporter's name scopes, or the TorchScript exporter's
    ``/a/a.b/c/Op`` node name (a leaf there when it is not the top level)."""
    meta = _metadata(node)
    scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes"))
    if len(scopes) >= 2:
        classes = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy"))
        leaf = len(classes) >= 2 and classes[-2].startswith("torch.nn.")
        return scopes[-2], leaf
    if node.name.startswith("/"):
        path = _module_path(node.name.strip("/").split("/")[:-1])
        return path, bool(path)
    return None


def _block_of(path: str) -> str:
    """The first component of a module path, two when the second is an index (``layer1.0``,
    ``features.3``), as the tracer labels a container's children; `TOP_BLOCK` at the top."""
    parts = path.split(".") if path else []
    if not parts:
        return TOP_BLOCK
    return ".".join(parts[:2]) if len(parts) > 1 and parts[1].isdigit() else parts[0]


@dataclass
class _Walk:
    """The state of one pass over the nodes."""

    builder: GraphBuilder
    shapes: dict[str, Shape | None]
    weights: dict[str, int]  # float initializers of more than one element -> elements
    nodes: dict[str, str] = field(default_factory=dict)  # value name -> hda node
    stands_for: dict[str, list[str]] = field(default_factory=dict)  # value -> initializers
    read: set[str] = field(default_factory=set)  # initializers some node read
    folded: dict[str, str] = field(default_factory=dict)  # conv layer -> its folded BN

    def params_of(self, value: str) -> list[str]:
        """The parameter initializers a constant value is (or was computed from)."""
        if value in self.weights:
            return [value]
        return self.stands_for.get(value, [])


def _data_inputs(node: Any) -> list[tuple[int, str]]:
    control = CONTROL_INPUTS.get(node.op_type, frozenset())
    return [(i, name) for i, name in enumerate(node.input) if name and i not in control]


def _visit(walk: _Walk, node: Any) -> None:
    """Add `node` to the graph, or record what its outputs stand for when it is plumbing."""
    data = _data_inputs(node)
    walk.read.update(name for _, name in data)
    active = [walk.nodes[name] for _, name in data if name in walk.nodes]
    if node.domain in _DOMAINS and _is_plumbing(node.op_type, bool(active)):
        _record_values(walk, node, data)
        return
    statistics = STATISTICS.get(node.op_type, frozenset())
    slots = [(i, name) for i, name in data if name not in walk.nodes and i not in statistics]
    params = [p for _, name in slots for p in walk.params_of(name)]
    op, attrs = _op_and_attrs(walk, node, frozenset(i for i, n in slots if walk.params_of(n)))
    attrs["param_tensors"] = tuple((p, walk.weights[p]) for p in params)
    attrs["onnx_node"] = node.name  # what ONNX Runtime's profile joins on
    if params:
        attrs["param_key"] = params[0].rsplit(".", 1)[0]
    name, path = _layer_name(node, params)
    block = _block_of(path)
    hda_node = walk.builder.add(op, name, active, _out_shape(walk, node), block, **attrs)
    if _folds_bn(node, params):
        walk.folded[hda_node] = _folded_bn_name(node)
    _track_outputs(walk, node, hda_node, block)


def _is_plumbing(op_type: str, active: bool) -> bool:
    """Whether a node makes no graph node: a shape or constant source, or an op other than a
    product whose data inputs are all constants."""
    return op_type in VALUE_SOURCES or (not active and op_type not in COMPUTE_OPS)


def _record_values(walk: _Walk, node: Any, data: list[tuple[int, str]]) -> None:
    """The outputs of a plumbing node stand for the parameters its inputs stood for; a
    ``Constant`` holding a weight-like tensor (some exporters store weights so) is one."""
    if node.op_type == "Constant":
        onnx = require_onnx()
        for attr in node.attribute:
            if attr.name == "value" and node.output:
                tensor = attr.t
                elements = _elements(tensor.dims)
                kind = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).kind
                if kind == "f" and elements > 1:
                    walk.weights[node.output[0]] = elements
        return
    params = [p for _, name in data for p in walk.params_of(name)]
    for out in node.output:
        walk.stands_for[out] = params


def _op_and_attrs(walk: _Walk, node: Any, weights: frozenset[int]) -> tuple[str, dict[str, Any]]:
    """The hda op and cost attributes of `node`; an op of another domain or of no table entry
    keeps its name (``com.microsoft.FusedConv``), and the analysis reports it as unhandled."""
    if node.domain not in _DOMAINS:
        reason = f"an op of domain {node.domain}, outside the ONNX standard"
        return f"{node.domain}.{node.op_type}", {"onnx_op": node.op_type, "reason": reason}
    entry = ONNX_OPS.get(node.op_type)
    if entry is None:
        reason = ONNX_UNSUPPORTED.get(node.op_type, "not in hda's ONNX op table")
        return f"onnx.{node.op_type}", {"onnx_op": node.op_type, "reason": reason}
    op, attr_fn = entry
    onnx = require_onnx()
    plain = OnnxNode(
        node.op_type,
        {a.name: _attribute(onnx, a) for a in node.attribute},
        tuple(walk.shapes.get(name) if name else None for name in node.input),
        _out_shape(walk, node),
        weights,
    )
    try:
        attrs = attr_fn(plain)
    except (ValueError, TypeError, IndexError) as exc:
        raise UsageError(f"ONNX node {node.name!r} ({node.op_type}): {first_line(exc)}") from None
    op = attrs.pop("op", op)
    attrs["onnx_op"] = node.op_type
    return op, attrs


def _attribute(onnx: ModuleType, attribute: Any) -> Any:
    """An attribute's value, strings decoded (ONNX stores them as bytes: an Einsum's
    ``b"bij,bjk->bik"``)."""
    value = onnx.helper.get_attribute_value(attribute)
    return value.decode() if isinstance(value, bytes) else value


def _out_shape(walk: _Walk, node: Any) -> Shape:
    shape = walk.shapes.get(node.output[0]) if node.output else None
    if shape is None:
        raise UsageError(
            f"ONNX shape inference left the shape of {node.op_type} node {node.name!r} "
            f"(output {node.output[0] if node.output else '?'!r}) unknown"
        )
    return shape


def _track_outputs(walk: _Walk, node: Any, hda_node: str, block: str) -> None:
    """Map the node's outputs to `hda_node`; outputs of unequal shapes (a Split into unequal
    parts, an LSTM's sequence and states) each get a ``getitem`` node of their own shape."""
    outputs = [(i, out) for i, out in enumerate(node.output) if out]
    known = [(i, out, walk.shapes.get(out)) for i, out in outputs]
    if len({shape for _, _, shape in known if shape is not None}) <= 1:
        for _, out, _ in known:
            walk.nodes[out] = hda_node
        return
    for index, out, shape in known:
        if shape is not None:
            piece = walk.builder.add(
                "getitem", f"{hda_node}.{index}", [hda_node], shape, block, index=index
            )
            walk.nodes[out] = piece


def _layer_name(node: Any, params: list[str]) -> tuple[str, str]:
    """The layer's name and the module path it is in: a weighted op by its weight's module
    (``layer1.0.conv1``), else the exporter's scope, else the node's own name or op."""
    for param in params:
        if param.endswith(".weight") and not param.startswith(_EXPORTER_MADE):
            path = param.removesuffix(".weight")
            return path, path
    scope = _scope(node)
    if scope is not None:
        path, leaf = scope
        name = path if leaf and path else f"{path}.{snake(node.op_type)}".lstrip(".")
        return name, path
    return node.name or snake(node.op_type), ""


def _folds_bn(node: Any, params: list[str]) -> bool:
    """Whether the exporter folded a BatchNorm into this conv: the dynamo exporter says so in
    the rule that rewrote it; the TorchScript exporter renames the weights it computed."""
    if node.op_type not in ("Conv", "ConvTranspose"):
        return False
    if _BN_FOLD_RULE in _metadata(node).get("pkg.onnxscript.rewriter.rule_name", ""):
        return True
    return bool(params) and params[0].startswith(_EXPORTER_MADE)


def _folded_bn_name(node: Any) -> str:
    """The folded BN's module path where the file records it (dynamo exports), else ``""``."""
    scopes = _literal_list(_metadata(node).get("pkg.torch.onnx.name_scopes"))
    return scopes[-2] if len(scopes) >= 2 else ""


def _float_weights(onnx: ModuleType, graph: Any) -> dict[str, int]:
    """Initializers that can be parameters: floating point, more than one element."""
    out: dict[str, int] = {}
    for init in graph.initializer:
        elements = _elements(init.dims)
        kind = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).kind
        if kind == "f" and elements > 1 and init.doc_string != _FOLDED:
            out[init.name] = elements
    return out


def build_onnx_graph(spec: OnnxSpec, shape: InputShape) -> nx.DiGraph:
    """hda's operation DAG of the ONNX model `spec` at `shape` (one shape per graph input).

    The graph attributes ``unused_params`` (parameter initializers no node reads) and
    ``folded_bn`` (conv layer -> the BatchNorm folded into it, ``""`` where the file does not
    say which) complete the picture; see the module docstring for what counts as a parameter.
    """
    onnx = require_onnx()
    model = _inferred(spec, shape)
    graph = model.graph
    builder = GraphBuilder(spec.name)
    walk = _Walk(builder, _shapes(graph), _float_weights(onnx, graph))
    single = len(spec.inputs) == 1
    for value, dims in zip(spec.inputs, dims_per_input(spec, shape), strict=True):
        name = "input" if single else value.name
        walk.nodes[value.name] = builder.add("input", name, (), dims, "input")
    for node in graph.node:
        _visit(walk, node)
    for value in graph.output:
        if value.name in walk.nodes:
            builder.add("output", "output", [walk.nodes[value.name]], _out(walk, value), "output")
    used = {p for name in walk.read for p in walk.params_of(name)}
    builder.graph.graph["unused_params"] = {
        name: size for name, size in walk.weights.items() if name not in used
    }
    builder.graph.graph["folded_bn"] = walk.folded
    return builder.graph


def _out(walk: _Walk, value: Any) -> Shape:
    shape = walk.shapes.get(value.name)
    return shape if shape is not None else ()
