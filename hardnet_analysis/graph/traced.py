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
from typing import Any

import networkx as nx
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from hardnet_analysis.errors import HdaError, UsageError, first_line
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
    modules: list[tuple[str, nn.Module]],
) -> Iterator[tuple[dict[int, tuple[str, int]], dict[int, str]]]:
    """Swap every parameter and buffer for a meta tensor while the block runs, directly in the
    modules' ``_parameters``/``_buffers`` (cheaper than ``functional_call``); tied tensors share
    one copy. Yields the meta parameters' ids -> (name where first reached, elements) and the
    meta buffers' ids -> name."""
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
                    meta = tensor if tensor.is_meta else torch.empty_like(tensor, device="meta")
                    copies[id(tensor)] = meta
                    name = f"{path}.{key}".lstrip(".")
                    if is_param:
                        params[id(meta)] = (name, tensor.numel())
                    else:
                        buffers[id(meta)] = name
                if copies[id(tensor)] is not tensor:
                    saved.append((table, key, tensor))
                    table[key] = copies[id(tensor)]
    try:
        yield params, buffers
    finally:
        for table, key, tensor in saved:
            table[key] = tensor


def _eval_mode(modules: list[tuple[str, nn.Module]]) -> list[nn.Module]:
    """Put every module in eval mode; returns those that were training, to restore them."""
    training = [m for _, m in modules if m.training]
    for module in training:
        module.training = False
    return training


def _run(
    model: nn.Module,
    recorder: _Recorder,
    inputs: tuple[list[torch.Tensor], dict[str, torch.Tensor]],
    model_name: str,
) -> Any:
    """Run the forward on `inputs` (positional, keyword) under the recorder; a failure becomes
    a UsageError saying where."""
    args, kwargs = inputs
    try:
        with recorder:
            return model(*args, **kwargs)
    except HdaError:
        raise
    except Exception as exc:
        message = first_line(exc)
        raise UsageError(
            f"{model_name} cannot be traced on meta tensors ({recorder.where()}): "
            f"{type(exc).__name__}: {message}"
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


def _meta_inputs(
    shape: InputShape, recorder: _Recorder
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """One meta tensor per input, of its shape and dtype, each tracked as an ``input`` node:
    the positional ones in order, then the keyword ones by name."""
    args: list[torch.Tensor] = []
    kwargs: dict[str, torch.Tensor] = {}
    for index, (keyword, dims, dtype) in enumerate(shape.items()):
        x = torch.empty(dims, dtype=getattr(torch, dtype), device="meta")
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


def trace_module(
    model: nn.Module, input_shape: InputShape | tuple[int, ...], name: str | None = None
) -> nx.DiGraph:
    """The operation DAG of `model` run on meta tensors of `input_shape` (an `InputShape`: any
    number of inputs of any rank and dtype, positional then keyword; or one tensor's shape,
    batch first, float32). Each input is an ``input`` node (`input_node_name`).

    Nodes are named by module path (``base.3.layers.0.conv``); ops inside a non-leaf module's own
    forward get the function's name appended (``base.3.cat``). Ops that no entry of
    ``FUNCTION_OPS`` covers keep their function name as op, so the metrics report them. The
    graph attribute ``unused_params`` maps parameters the forward never touched to their sizes.
    A forward that cannot run on meta tensors raises a one-line UsageError naming where it broke.
    The model is left as it was (its own weights, its own train/eval modes).
    """
    model = uncompiled(model)  # trace what it runs, named as it was written
    model_name = name or type(model).__name__
    builder = GraphBuilder(model_name)
    modules = list(model.named_modules())
    recorder = _Recorder(builder, {}, default_block_of(model))
    for path, module in modules:
        recorder.paths[id(module)] = (path, not module._modules)
    if not isinstance(input_shape, InputShape):
        input_shape = InputShape((tuple(input_shape),))
    check_inputs(model, input_shape, model_name)
    inputs = _meta_inputs(input_shape, recorder)
    # Two global hooks cost less than two per module (registering is most of a small trace).
    handles = [
        nn.modules.module.register_module_forward_pre_hook(recorder.enter_hook),
        nn.modules.module.register_module_forward_hook(recorder.exit_hook),
    ]
    training = _eval_mode(modules)
    try:
        with _on_meta(modules) as (params, buffers):
            recorder.params, recorder.buffers = params, buffers
            out = _run(model, recorder, inputs, model_name)
    finally:
        for module in training:
            module.training = True
        for handle in handles:
            handle.remove()
    for tensor in leaves(out, []):
        node = recorder.node_of(tensor)
        if node is not None:
            builder.add("output", "output", [node], tuple(tensor.shape), "output")
    builder.graph.graph["unused_params"] = {
        key: size for key, size in params.values() if key not in recorder.used
    }
    return builder.graph
