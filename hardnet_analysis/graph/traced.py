"""Traced graphs: run an nn.Module on meta tensors and record every op as a graph node.

No real computation and no weights are needed: parameters and buffers are swapped for meta
tensors, a ``TorchFunctionMode`` sees each top-level torch function (``F.conv2d``,
``torch.cat``, ``x + y``, ``x.view(...)``, ...) and module hooks give the module path that names
the node. Shapes come from the meta execution itself, independently of the analytic size rules,
so the two builders cross-check each other.

Why one dispatch-level tracer and no torch.fx: fx symbolic tracing fails on Python control flow
that depends on shapes or on non-tensor arguments, and on many real models (torchvision's Swin,
MaxViT and RegNet need wrapping or fail). This tracer *runs* the forward, so any Python control
flow that does not need tensor values works, and it sees the same functions fx would (module
calls, ``F.*``, tensor methods and operators). Control flow on tensor values cannot be traced by
either without real data; it fails with a one-line error naming the module and op.

Parameters are counted by tensor identity at their first use, so a shared module counts its
parameters once while every call adds its MACs and CIO; parameters that the forward never uses
(e.g. GoogLeNet's auxiliary heads in eval mode) are listed in the graph's ``unused_params``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import networkx as nx
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from hardnet_analysis.errors import HdaError, UsageError, first_line
from hardnet_analysis.graph.data_dependent import (
    VALUE_READS,
    deciding,
    declare,
    real_input,
    selection,
)
from hardnet_analysis.graph.fast_shapes import FAST_SHAPES
from hardnet_analysis.graph.ir import TOP_BLOCK, GraphBuilder
from hardnet_analysis.graph.trace_ops import (
    FACTORIES,
    FUNCTION_OPS,
    PASS_THROUGH,
    SHAPE_PRESERVING,
    function_name,
    is_inplace,
    leaves,
    no_attrs,
)
from hardnet_analysis.shapes import InputShape

#: Ops that count MACs: recorded as nodes even when only parameters and buffers flow in.
_COMPUTE_OPS = frozenset(
    {"conv", "conv_transpose", "linear", "matmul", "einsum", "attention", "multi_head_attention"}
)

#: Products whose every tensor argument is an operand (no weight slot): a constant operand is
#: read like an activation, so it gets a source node.
_OPERAND_PRODUCTS = frozenset({"matmul", "einsum", "attention"})


class _Recorder(TorchFunctionMode):
    """Records tensor-producing torch functions whose inputs are tracked tensors or parameters."""

    def __init__(
        self,
        builder: GraphBuilder,
        params: dict[int, tuple[str, int]],
        block_of: Callable[[str], str],
    ):
        super().__init__()
        self.builder = builder
        self.params = params  # id(meta parameter) -> (name, numel)
        self.used: set[str] = set()
        self.buffers: dict[int, str] = {}  # id(meta buffer) -> its name
        self.block_of = block_of
        self.stack: list[tuple[str, bool]] = []  # (module path, is leaf)
        self.paths: dict[int, tuple[str, bool]] = {}  # id(module) -> (module path, is leaf)
        self.nodes: dict[int, tuple[str, torch.Tensor]] = {}  # id -> (node, tensor kept alive)
        # id(weight derived from parameters only) -> (its parameters, the tensor kept alive)
        self.derived: dict[int, tuple[list[tuple[str, int]], torch.Tensor]] = {}
        self.current = ""  # the function being run, for error messages
        self.real = False  # running on real tensors: every op runs, no meta shortcut
        self.detections: int | None = None  # a declared count for every selection
        # node -> (order, name) of the earliest data-dependent source upstream of it
        self.depends: dict[str, tuple[int, str]] = {}
        self.sources: dict[str, str] = {}  # data-dependent source -> what it is
        self.read: tuple[int, str] | None = None  # the first value read into Python

    def enter_hook(self, module: nn.Module, args: Any) -> None:
        where = self.paths.get(id(module))
        if where is not None:
            self.stack.append(where)

    def exit_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if id(module) in self.paths:
            self.stack.pop()

    def track(self, tensor: torch.Tensor, node: str) -> None:
        self.nodes[id(tensor)] = (node, tensor)

    def node_of(self, tensor: torch.Tensor) -> str | None:
        entry = self.nodes.get(id(tensor))
        return entry[0] if entry is not None and entry[1] is tensor else None

    def where(self) -> str:
        """Where tracing is now: ``module 'layer1.0.conv1', op conv2d``."""
        path = self.stack[-1][0] if self.stack else ""
        return f"module {path or '(top level)'!r}, op {self.current or '?'}"

    def _execute(
        self, func: Callable[..., Any], short: str, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        if self.real:
            if self.detections is not None and self._selects(short, args):
                return declare(func, short, args, kwargs, self.detections)
            return func(*args, **kwargs)
        first = args[0] if args else None
        if short in SHAPE_PRESERVING and isinstance(first, torch.Tensor) and first.is_meta:
            # detach() makes a new tensor object of the same shape in under a microsecond;
            # empty_like on meta runs a Python decomposition (about 50 us).
            return first if is_inplace(func, args, kwargs) else first.detach()
        if short in FACTORIES and kwargs.get("device") is None:
            kwargs = {**kwargs, "device": "meta"}
        fast = FAST_SHAPES.get(short)
        if fast is not None and isinstance(first, (torch.Tensor, list, tuple)):
            shape = fast(args, kwargs)
            if shape is not None and is_inplace(func, args, kwargs):
                same = isinstance(first, torch.Tensor) and tuple(first.shape) == shape
                return first if same else func(*args, **kwargs)
            if shape is not None:
                dtype = first.dtype if isinstance(first, torch.Tensor) else first[0].dtype
                return torch.empty(shape, dtype=dtype, device="meta")
        return func(*args, **kwargs)

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        short = function_name(func)
        self.current = short
        out = self._execute(func, short, args, kwargs)
        if not isinstance(out, torch.Tensor) and not isinstance(out, (tuple, list)):
            if self.real and short == "setitem":
                self._write(args)
            elif self.real and self.read is None and short in VALUE_READS:
                self._value_read(short, args)
            return out
        outputs = leaves(out, [])
        if not outputs:
            return out
        inputs, weights, constants = self._classify(args, kwargs)
        if not (inputs or weights or constants):
            return out
        op = FUNCTION_OPS.get(short, (short,))[0]
        if not inputs and op not in _COMPUTE_OPS:
            # Preparation: no activation flows in and nothing is multiplied out, so no node. With
            # parameters (a mask applied, a token expanded) the result stands for them wherever
            # it is consumed; on constants alone (a coordinate grid, an expanded mask) the result
            # is another constant.
            if weights:
                for tensor in outputs:
                    self.derived[id(tensor)] = (weights, tensor)
            return out
        if short in PASS_THROUGH and out is args[0]:
            return out
        if constants and (not inputs or op in _OPERAND_PRODUCTS):
            # Constants multiplied out (a conv on a grid, rotary inv_freq @ positions) are
            # values of the graph like any other: they get source nodes and the op is costed.
            # (A conv's or BN's buffers stay its weights and statistics, not operands.)
            inputs = self._operands(args, kwargs)
        self._record(func, short, args, kwargs, outputs, inputs, weights)
        return out

    def _selects(self, short: str, args: Sequence[Any]) -> bool:
        """Whether a call is a selection (`selection`) whose deciding values (`deciding`: the
        mask, NMS's boxes and scores) depend on the input."""
        if selection(short, args) is None:
            return False
        return any(self.node_of(t) is not None for t in leaves(deciding(short, args), []))

    def _value_read(self, short: str, args: Sequence[Any]) -> None:
        """Note the first read of an input-dependent value into Python (``.item()``, ``if
        x.sum() > 0``): every node recorded after it may depend on it (control flow and sizes
        can follow from the value where the graph cannot see)."""
        if not any(self.node_of(t) is not None for t in leaves(args, [])):
            return
        path = self.stack[-1][0] if self.stack else ""
        label = f"{path or '(top level)'}:{short}"
        self.read = (self.builder.graph.number_of_nodes(), label)
        self.sources[label] = f"value read ({short})"

    def _write(self, args: Sequence[Any]) -> None:
        """``target[index] = value`` with an input-dependent index or value, on real tensors:
        an ``index_put`` node that the target stands for from now on (torchvision's RoI pooler
        fills a ``torch.zeros`` result this way, and the box head reads it)."""
        target = args[0]
        written = [n for t in leaves(list(args[1:]), []) if (n := self.node_of(t)) is not None]
        if not written or not isinstance(target, torch.Tensor):
            return
        inputs = [self.node_of(target) or self._constant(target), *written]
        path = self.stack[-1][0] if self.stack else ""
        node = self.builder.add(
            "index_put",
            f"{path}.setitem".lstrip("."),
            inputs,
            tuple(target.shape),
            self.block_of(path),
            param_tensors=(),
            fn="__setitem__",
        )
        self._mark(node, "setitem", (), inputs)
        self.track(target, node)

    def _mark(self, node: str, short: str, args: Sequence[Any], inputs: list[str]) -> None:
        """Mark `node` with the earliest data-dependent source it follows from (``depends_on``):
        itself where it is a selection on input-dependent values (``data_dependent`` says
        which), else that of its inputs, else the first value read before it."""
        marks = [self.depends[i] for i in inputs if i in self.depends]
        kind = selection(short, args) if self.real else None
        attrs = self.builder.graph.nodes[node]
        if kind is not None and self._selects(short, args):
            attrs["data_dependent"] = kind
            self.sources[node] = kind
            marks.append((attrs["order"], node))
        if self.read is not None:
            marks.append(self.read)
        if marks:
            self.depends[node] = min(marks)
            attrs["depends_on"] = self.depends[node][1]

    def _classify(
        self, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[list[str], list[tuple[str, int]], list[torch.Tensor]]:
        """The tensor arguments as tracked nodes, parameters (name, elements; also those a
        derived weight stands for) and constants (anything else: buffers, factory results)."""
        inputs: list[str] = []
        weights: list[tuple[str, int]] = []
        constants: list[torch.Tensor] = []
        for tensor in leaves(kwargs, leaves(args, [])) if kwargs else leaves(args, []):
            node = self.node_of(tensor)
            if node is not None:
                inputs.append(node)
            elif (param := self.params.get(id(tensor))) is not None:
                weights.append(param)
            elif (derived := self.derived.get(id(tensor))) is not None and derived[1] is tensor:
                weights.extend(derived[0])
            else:
                constants.append(tensor)
        return inputs, weights, constants

    def _operands(self, args: Sequence[Any], kwargs: dict[str, Any]) -> list[str]:
        """Tracked and constant tensor arguments as nodes, in argument order."""
        tensors = leaves(kwargs, leaves(args, [])) if kwargs else leaves(args, [])
        return [
            self.node_of(t) or self._constant(t)
            for t in tensors
            if id(t) not in self.params and self.derived.get(id(t), (None, None))[1] is not t
        ]

    def _constant(self, tensor: torch.Tensor) -> str:
        """The source node of a constant tensor, named by its buffer when it is one."""
        node = self.node_of(tensor)
        if node is None:
            path = self.stack[-1][0] if self.stack else ""
            name = self.buffers.get(id(tensor), f"{path}.constant".lstrip("."))
            block = self.block_of(path)
            node = self.builder.add("constant", name, (), tuple(tensor.shape), block)
            self.track(tensor, node)
        return node

    def _record(
        self,
        func: Callable[..., Any],
        short: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        outputs: list[torch.Tensor],
        inputs: list[str],
        weights: list[tuple[str, int]],
    ) -> None:
        op, attr_fn = FUNCTION_OPS.get(short, (short, no_attrs))
        path, leaf = self.stack[-1] if self.stack else ("", False)
        name = path if leaf and path else f"{path}.{short}".lstrip(".")
        attrs = attr_fn(args, kwargs, outputs[0])
        op = attrs.pop("op", op)
        # Parameters are nn.Parameter tensors only: a traced node lists those it reads (none for
        # a buffer or a computed weight), so its handler's shape-based figure is never used.
        attrs["param_tensors"] = tuple(weights)
        if weights:
            attrs["param_key"] = weights[0][0].rsplit(".", 1)[0]
            self.used.update(w[0] for w in weights)
        if op == "activation":
            attrs["kind"] = short
        # The function as called (``conv2d``, ``relu_``, ``__iadd__``): the profiler's op event
        # of this node is named after it (`hardnet_analysis.profiler.ops` joins the two).
        attrs["fn"] = getattr(func, "__name__", short)
        block = self.block_of(path)
        node = self.builder.add(op, name, inputs, tuple(outputs[0].shape), block, **attrs)
        self._mark(node, short, args, inputs)
        self._track_outputs(node, outputs, block)

    def _track_outputs(self, node: str, outputs: list[torch.Tensor], block: str) -> None:
        """Map the outputs to `node`; pieces of unequal shapes (an uneven split, an LSTM's
        output and states) each get a ``getitem`` node of their own shape, so a consumer of a
        later piece sees that piece's shape."""
        if len({tuple(t.shape) for t in outputs}) == 1:
            for tensor in outputs:
                self.track(tensor, node)
            return
        for index, tensor in enumerate(outputs):
            piece = self.builder.add(
                "getitem", f"{node}.{index}", [node], tuple(tensor.shape), block, index=index
            )
            self._mark(piece, "getitem", (), [node])
            self.track(tensor, piece)


def default_block_of(model: nn.Module) -> Callable[[str], str]:
    """Block labels for a module path: the model's ``hda_blocks`` map (longest prefix; its key
    ``""`` labels the top-level forward's own ops) when it has one, else its first path
    component, or the first two when that child is a container; `TOP_BLOCK` for the top-level
    forward's own ops otherwise."""
    mapping: dict[str, str] | None = getattr(model, "hda_blocks", None)
    containers = {
        n for n, m in model.named_children() if isinstance(m, (nn.Sequential, nn.ModuleList))
    }

    def block_of(path: str) -> str:
        parts = path.split(".") if path else []
        if mapping:
            for depth in range(len(parts), -1, -1):
                label = mapping.get(".".join(parts[:depth]))
                if label is not None:
                    return label
        if not parts:
            return TOP_BLOCK
        depth = 2 if parts[0] in containers and len(parts) > 1 else 1
        return ".".join(parts[:depth])

    return block_of


@contextmanager
def _on_meta(
    modules: list[tuple[str, nn.Module]], meta: bool = True
) -> Iterator[tuple[dict[int, tuple[str, int]], dict[int, str]]]:
    """Swap every parameter and buffer for a meta tensor while the block runs, directly in the
    modules' ``_parameters``/``_buffers`` (cheaper than ``functional_call``); tied tensors share
    one copy. Yields the meta parameters' ids -> (name where first reached, elements) and the
    meta buffers' ids -> name. With `meta` False the tensors stay as they are (a run on real
    tensors) and the ids are theirs."""
    copies: dict[int, torch.Tensor] = {}
    params: dict[int, tuple[str, int]] = {}
    buffers: dict[int, str] = {}
    saved: list[tuple[dict[str, Any], str, Any]] = []
    for path, module in modules:
        tables: tuple[tuple[dict[str, Any], bool], ...] = (
            (module._parameters, True),
            (module._buffers, False),
        )
        for table, is_param in tables:
            for key, tensor in table.items():
                if tensor is None:
                    continue
                if id(tensor) not in copies:
                    copy = tensor
                    if meta and not tensor.is_meta:
                        copy = torch.empty_like(tensor, device="meta")
                    copies[id(tensor)] = copy
                    name = f"{path}.{key}".lstrip(".")
                    if is_param:
                        params[id(copy)] = (name, tensor.numel())
                    else:
                        buffers[id(copy)] = name
                if copies[id(tensor)] is not tensor:
                    saved.append((table, key, tensor))
                    table[key] = copies[id(tensor)]
    try:
        yield params, buffers
    finally:
        for table, key, tensor in saved:
            table[key] = tensor


@contextmanager
def _attributes_kept(modules: list[tuple[str, nn.Module]]) -> Iterator[None]:
    """Restore the modules' plain tensor attributes (a tensor, or a list or tuple holding
    tensors, outside parameters and buffers) after the block: a forward that caches tensors
    made on its input's device (torchvision's AnchorGenerator sets ``cell_anchors``) would
    otherwise keep meta tensors from the meta run."""
    saved: list[tuple[nn.Module, str, Any]] = []
    for _, module in modules:
        for key, value in vars(module).items():
            if isinstance(value, torch.Tensor):
                saved.append((module, key, value))
            elif isinstance(value, (list, tuple)) and any(
                isinstance(v, torch.Tensor) for v in value
            ):
                saved.append((module, key, type(value)(value)))
    try:
        yield
    finally:
        for module, key, value in saved:
            setattr(module, key, value)


def _eval_mode(modules: list[tuple[str, nn.Module]]) -> list[nn.Module]:
    """Put every module in eval mode; returns those that were training, to restore them."""
    training = [m for _, m in modules if m.training]
    for module in training:
        module.training = False
    return training


class _NeedsValues(Exception):
    """The forward failed on meta tensors where it needs values or real devices (a
    data-dependent size, a value read, a stray CPU tensor): `where` it broke, and `why`."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}: {why}")
        self.where, self.why = where, why


def _needs_values(exc: Exception) -> bool:
    """Whether a meta run's failure may pass on real tensors: a missing or data-dependent meta
    kernel (NotImplementedError), a value read or a device mismatch (a message naming meta);
    not a size error, which real tensors would repeat."""
    return isinstance(exc, NotImplementedError) or "meta" in str(exc)


def _run(
    model: nn.Module,
    recorder: _Recorder,
    inputs: tuple[list[torch.Tensor], dict[str, torch.Tensor]],
    model_name: str,
) -> Any:
    """Run the forward on `inputs` (positional, keyword) under the recorder; a failure becomes
    a UsageError saying where, or `_NeedsValues` where a run on real tensors may pass."""
    args, kwargs = inputs
    try:
        with recorder:
            return model(*args, **kwargs)
    except HdaError:
        raise
    except Exception as exc:
        why = f"{type(exc).__name__}: {first_line(exc)}"
        if not recorder.real and _needs_values(exc):
            raise _NeedsValues(recorder.where(), why) from exc
        tensors = "real tensors" if recorder.real else "meta tensors"
        raise UsageError(
            f"{model_name} cannot be traced on {tensors} ({recorder.where()}): {why}"
        ) from exc


def uncompiled(model: nn.Module) -> nn.Module:
    """The module `torch.compile` wrapped (its ``_orig_mod``, through any number of wraps),
    else `model`. Traced as compiled, every layer would be named ``_orig_mod.conv1`` and the
    trace itself would be compiled by dynamo (10 s and recompile warnings for a ResNet-18)."""
    import sys

    eval_frame = sys.modules.get("torch._dynamo.eval_frame")  # not loaded: nothing compiled
    wrapper = getattr(eval_frame, "OptimizedModule", None)
    while wrapper is not None and isinstance(model, wrapper):
        model = model._orig_mod
    return model


def input_node_name(index: int, keyword: str | None) -> str:
    """The graph node of input `index`: ``input`` for the first, ``input.1``, ``input.2`` for
    the next positional ones, its name for a keyword input (``attention_mask``)."""
    return keyword or ("input" if index == 0 else f"input.{index}")


def _inputs(
    shape: InputShape, recorder: _Recorder, device: torch.device | None
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """One tensor per input, of its shape and dtype, each tracked as an ``input`` node: the
    positional ones in order, then the keyword ones by name. Meta tensors where `device` is
    None, else seeded stand-ins on it (`real_input`)."""
    args: list[torch.Tensor] = []
    kwargs: dict[str, torch.Tensor] = {}
    for index, (keyword, dims, dtype) in enumerate(shape.items()):
        kind = getattr(torch, dtype)
        if device is None:
            x = torch.empty(dims, dtype=kind, device="meta")
        else:
            x = real_input(dims, kind, device)
        name = input_node_name(index, keyword)
        recorder.track(x, recorder.builder.add("input", name, (), dims, "input"))
        if keyword is None:
            args.append(x)
        else:
            kwargs[keyword] = x
    return args, kwargs


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _signature(model: nn.Module) -> inspect.Signature | None:
    """The signature `model` is called with (its forward's), None where Python cannot tell."""
    try:
        return inspect.signature(model.forward)
    except (TypeError, ValueError):  # a forward written in C, or wrapped beyond recognition
        return None


def check_inputs(model: nn.Module, shape: InputShape, model_name: str) -> None:
    """A one-line UsageError where `shape`'s inputs cannot be passed to `model`'s forward:
    more positional inputs than it takes, a keyword it has no parameter for (or that a
    positional input already fills), or a required input left out. A forward of ``*args`` or
    ``**kwargs`` takes any number; one whose signature cannot be read is left to the call.
    ``nn.Conv1d(4, 8, 3)`` given two positional shapes: "Conv1d's forward takes 1 positional
    input(s) (input), not 2: give one shape per input"."""
    signature = _signature(model)
    if signature is None:
        return
    params = list(signature.parameters.values())
    kinds = {p.kind for p in params}
    positional = [p for p in params if p.kind in _POSITIONAL]
    names = ", ".join(p.name for p in params) or "nothing"
    given = shape.positional
    if inspect.Parameter.VAR_POSITIONAL not in kinds and given > len(positional):
        raise UsageError(
            f"{model_name}'s forward takes {len(positional)} positional input(s) ({names}), "
            f"not {given}: give one shape per input"
        )
    filled = {p.name for p in positional[:given]}
    keywordable = {p.name for p in params if p.kind != inspect.Parameter.POSITIONAL_ONLY}
    for keyword in shape.keywords:
        if keyword in filled or (
            keyword not in keywordable and inspect.Parameter.VAR_KEYWORD not in kinds
        ):
            why = "is already given by position" if keyword in filled else "is not one of them"
            raise UsageError(f"{model_name}'s forward takes ({names}): input {keyword!r} {why}")
    unfilled = positional[given:] + [p for p in params if p.kind == p.KEYWORD_ONLY]
    missing = [p.name for p in unfilled if p.default is p.empty and p.name not in shape.keywords]
    if missing:
        raise UsageError(
            f"{model_name}'s forward also needs {', '.join(missing)} ({len(shape.shapes)} "
            "input(s) given): give one shape per input"
        )


@dataclass(frozen=True)
class _RealRun:
    """A run on real tensors: where and why the meta run failed, the declared count of every
    selection (None: the values decide), the seed of the inputs, what the weights are."""

    where: str
    why: str
    detections: int | None
    seed: int
    weights: str = "its own weights"


@contextmanager
def _values(run: _RealRun | None) -> Iterator[None]:
    """For a real run: no autograd, and the global random state seeded and then restored."""
    if run is None:
        yield
        return
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(run.seed)
        yield


def _device_of(model: nn.Module) -> torch.device:
    """Where `model`'s first parameter or buffer lives (its inputs go there); cpu for none."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _real_module(
    model: nn.Module, real: Callable[[], nn.Module] | None, name: str, run: _RealRun
) -> tuple[nn.Module, _RealRun]:
    """The module to run on real tensors: `real()` built under the run's seed (the module's own
    initialisation) where given, else `model` itself, which must hold real weights."""
    if real is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(run.seed)
            built = uncompiled(real())
        return built, replace(run, weights=f"its own initialisation, seed {run.seed}")
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise UsageError(
            f"{name} needs tensor values to be traced ({run.where}: {run.why}) and its weights "
            "are on the meta device: build it on cpu"
        )
    return model, run


def trace_module(
    model: nn.Module,
    input_shape: InputShape | tuple[int, ...],
    name: str | None = None,
    real: Callable[[], nn.Module] | None = None,
    detections: int | None = None,
    seed: int = 0,
) -> nx.DiGraph:
    """The operation DAG of `model` run on meta tensors of `input_shape` (an `InputShape`: any
    number of inputs of any rank and dtype, positional then keyword; or one tensor's shape,
    batch first, float32). Each input is an ``input`` node (`input_node_name`).

    Nodes are named by module path (``base.3.layers.0.conv``); ops inside a non-leaf module's own
    forward get the function's name appended (``base.3.cat``). Ops that no entry of
    ``FUNCTION_OPS`` covers keep their function name as op, so the metrics report them. The
    graph attribute ``unused_params`` maps parameters the forward never touched to their sizes.
    The model is left as it was (its own weights, its own train/eval modes).

    A forward that needs values (a data-dependent size such as ``nonzero`` or NMS, a value read
    such as ``.item()``, a tensor made on cpu) is traced again on real tensors: seeded random
    inputs (`real_input`, `seed`) and the weights of `real()` (the same module built with real
    weights) or of `model` itself. Every selection then keeps what the values select, or the
    first `detections` candidates where that count is given. Nodes downstream of a selection
    or after a value read of the input carry ``depends_on`` (the earliest such source); the
    graph attributes ``real_run`` (what was run) and ``data_dependent`` (source -> what it is)
    say so. A forward that fails either way raises a one-line UsageError naming where it broke.
    """
    model = uncompiled(model)  # trace what it runs, named as it was written
    model_name = name or type(model).__name__
    if not isinstance(input_shape, InputShape):
        input_shape = InputShape((tuple(input_shape),))
    check_inputs(model, input_shape, model_name)
    try:
        return _trace(model, input_shape, model_name, None)
    except _NeedsValues as failed:
        run = _RealRun(failed.where, failed.why, detections, seed)
        model, run = _real_module(model, real, model_name, run)
        return _trace(model, input_shape, model_name, run)


def _trace(
    model: nn.Module, shape: InputShape, model_name: str, run: _RealRun | None
) -> nx.DiGraph:
    """`trace_module`'s one run: on meta tensors where `run` is None, else on real ones."""
    builder = GraphBuilder(model_name)
    modules = list(model.named_modules())
    recorder = _Recorder(builder, {}, default_block_of(model))
    for path, module in modules:
        recorder.paths[id(module)] = (path, not module._modules)
    recorder.real = run is not None
    recorder.detections = run.detections if run is not None else None
    # Two global hooks cost less than two per module (registering is most of a small trace).
    handles = [
        nn.modules.module.register_module_forward_pre_hook(recorder.enter_hook),
        nn.modules.module.register_module_forward_hook(recorder.exit_hook),
    ]
    training = _eval_mode(modules)
    try:
        with (
            _attributes_kept(modules),
            _on_meta(modules, meta=run is None) as (params, buffers),
            _values(run),
        ):
            recorder.params, recorder.buffers = params, buffers
            device = None if run is None else _device_of(model)
            out = _run(model, recorder, _inputs(shape, recorder, device), model_name)
    finally:
        for module in training:
            module.training = True
        for handle in handles:
            handle.remove()
    for tensor in leaves(out, []):
        node = recorder.node_of(tensor)
        if node is not None:
            output = builder.add("output", "output", [node], tuple(tensor.shape), "output")
            recorder._mark(output, "output", (), [node])
    graph = builder.graph
    graph.graph["unused_params"] = {
        key: size for key, size in params.values() if key not in recorder.used
    }
    if run is not None:
        graph.graph["real_run"] = {**asdict(run), "device": str(_device_of(model))}
        graph.graph["data_dependent"] = dict(recorder.sources)
    return graph
