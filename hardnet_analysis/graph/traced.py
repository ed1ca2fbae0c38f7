"""Traced graphs: run an nn.Module on meta tensors and record every op as a graph node.

No real computation and no weights are needed: parameters and buffers are swapped for meta
tensors with ``torch.func.functional_call``, a ``TorchFunctionMode`` sees each top-level torch
function (``F.conv2d``, ``torch.cat``, ``x + y``, ...) and module hooks give the module path
that names the node. Shapes come from the meta execution itself, independently of the analytic
size rules, so the two builders cross-check each other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any

import networkx as nx
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from hardnet_analysis.graph.ir import GraphBuilder

AttrFn = Callable[[Sequence[Any], dict[str, Any], torch.Tensor], dict[str, Any]]


def _arg(
    args: Sequence[Any], kwargs: dict[str, Any], index: int, key: str, default: Any = None
) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(key, default)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, str):  # padding="same"/"valid": the shape comes from execution anyway
        return (0, 0)
    return (int(value[0]), int(value[-1]))


def _conv_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    x, weight = args[0], _arg(args, kwargs, 1, "weight")
    return {
        "in_channels": x.shape[1],
        "out_channels": weight.shape[0],
        "kernel": tuple(weight.shape[2:]),
        "stride": _pair(_arg(args, kwargs, 3, "stride", 1)),
        "padding": _pair(_arg(args, kwargs, 4, "padding", 0)),
        "dilation": _pair(_arg(args, kwargs, 5, "dilation", 1)),
        "groups": int(_arg(args, kwargs, 6, "groups", 1)),
        "bias": _arg(args, kwargs, 2, "bias") is not None,
        "transposed": False,
    }


def _linear_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    weight = _arg(args, kwargs, 1, "weight")
    return {
        "in_features": weight.shape[1],
        "out_features": weight.shape[0],
        "bias": _arg(args, kwargs, 2, "bias") is not None,
    }


def _bn_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    return {"channels": args[0].shape[1], "affine": _arg(args, kwargs, 3, "weight") is not None}


def _no_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    return {}


_ACTIVATIONS = (
    "relu",
    "relu6",
    "hardtanh",
    "silu",
    "gelu",
    "sigmoid",
    "tanh",
    "hardswish",
    "hardsigmoid",
    "leaky_relu",
    "elu",
    "mish",
    "softplus",
)

#: torch function name (without underscores) -> (graph op, attribute extractor).
FUNCTION_OPS: dict[str, tuple[str, AttrFn]] = {
    "conv2d": ("conv", _conv_attrs),
    "linear": ("linear", _linear_attrs),
    "batch_norm": ("batchnorm", _bn_attrs),
    "max_pool2d": ("max_pool", _no_attrs),
    "avg_pool2d": ("avg_pool", _no_attrs),
    "adaptive_avg_pool2d": ("adaptive_avg_pool", _no_attrs),
    "adaptive_max_pool2d": ("adaptive_max_pool", _no_attrs),
    "cat": ("concat", _no_attrs),
    "concat": ("concat", _no_attrs),
    "add": ("add", _no_attrs),
    "iadd": ("add", _no_attrs),
    "radd": ("add", _no_attrs),
    "flatten": ("flatten", _no_attrs),
    "dropout": ("dropout", _no_attrs),
    **{name: ("activation", _no_attrs) for name in _ACTIVATIONS},
}


#: Ops whose output has their first input's shape: not executed on meta tensors, because their
#: meta kernels run through Python decompositions (about 5 ms a call for hardtanh, batch_norm).
SHAPE_PRESERVING = frozenset({"batch_norm", "dropout", *_ACTIVATIONS})


@cache
def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def _is_inplace(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a call writes into its first argument (``relu_``, ``inplace=True``)."""
    name = getattr(func, "__name__", "")
    if name.endswith("_") and not name.endswith("__"):
        return True
    signature = _signature(func)
    if signature is None or "inplace" not in signature.parameters:
        return False
    try:
        return bool(signature.bind(*args, **kwargs).arguments.get("inplace", False))
    except TypeError:
        return False


def _shape_preserving_result(
    func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> torch.Tensor:
    x = args[0]
    return x if _is_inplace(func, args, kwargs) else torch.empty_like(x)


def _function_name(func: Callable[..., Any]) -> str:
    """``Tensor.__iadd__`` -> ``iadd``, ``F.relu_`` -> ``relu``."""
    return getattr(func, "__name__", str(func)).strip("_")


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    leaves, _ = tree_flatten(value)
    return (leaf for leaf in leaves if isinstance(leaf, torch.Tensor))


class _Recorder(TorchFunctionMode):
    """Records tensor-producing torch functions whose inputs are tracked tensors."""

    def __init__(
        self, builder: GraphBuilder, params: dict[int, str], block_of: Callable[[str], str]
    ):
        super().__init__()
        self.builder = builder
        self.params = params
        self.block_of = block_of
        self.stack: list[tuple[str, bool]] = []  # (module path, is leaf)
        self.nodes: dict[
            int, tuple[str, torch.Tensor]
        ] = {}  # id(tensor) -> (node, tensor kept alive)

    def enter_hook(self, path: str, leaf: bool) -> Callable[[nn.Module, Any], None]:
        def hook(module: nn.Module, args: Any) -> None:
            self.stack.append((path, leaf))

        return hook

    def exit_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        self.stack.pop()

    def track(self, tensor: torch.Tensor, node: str) -> None:
        self.nodes[id(tensor)] = (node, tensor)

    def node_of(self, tensor: torch.Tensor) -> str | None:
        entry = self.nodes.get(id(tensor))
        return entry[0] if entry is not None and entry[1] is tensor else None

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        short = _function_name(func)
        first = args[0] if args else None
        if short in SHAPE_PRESERVING and isinstance(first, torch.Tensor) and first.is_meta:
            out = _shape_preserving_result(func, args, kwargs)
        else:
            out = func(*args, **kwargs)
        outputs = list(_tensors(out))
        inputs = [n for t in _tensors((args, kwargs)) if (n := self.node_of(t)) is not None]
        if not outputs or not inputs:
            return out
        op, attr_fn = FUNCTION_OPS.get(short, (short, _no_attrs))
        path, leaf = self.stack[-1] if self.stack else ("", False)
        name = path if leaf and path else f"{path}.{short}".lstrip(".")
        attrs = attr_fn(args, kwargs, outputs[0])
        weights = [self.params[id(t)] for t in _tensors((args, kwargs)) if id(t) in self.params]
        if weights:
            attrs["param_key"] = weights[0].rsplit(".", 1)[0]
        if op == "activation":
            attrs["kind"] = short
        node = self.builder.add(
            op, name, inputs, tuple(outputs[0].shape), self.block_of(path), **attrs
        )
        for tensor in outputs:
            self.track(tensor, node)
        return out


def default_block_of(model: nn.Module) -> Callable[[str], str]:
    """Block labels for a module path: the model's ``hda_blocks`` map (longest prefix) when it has
    one, else its first path component, or the first two when that child is a container."""
    mapping: dict[str, str] | None = getattr(model, "hda_blocks", None)
    containers = {
        n for n, m in model.named_children() if isinstance(m, (nn.Sequential, nn.ModuleList))
    }

    def block_of(path: str) -> str:
        parts = path.split(".") if path else []
        if mapping:
            for depth in range(len(parts), 0, -1):
                label = mapping.get(".".join(parts[:depth]))
                if label is not None:
                    return label
        if not parts:
            return ""
        depth = 2 if parts[0] in containers and len(parts) > 1 else 1
        return ".".join(parts[:depth])

    return block_of


def trace_module(
    model: nn.Module, input_shape: tuple[int, ...], name: str | None = None
) -> nx.DiGraph:
    """The operation DAG of `model` run on a meta tensor of `input_shape` (NCHW with batch).

    Nodes are named by module path (``base.3.layers.0.conv``); ops inside a non-leaf module's own
    forward get the function's name appended (``base.3.cat``). Ops that no entry of
    ``FUNCTION_OPS`` covers keep their function name as op, so the metrics report them.
    """
    builder = GraphBuilder(name or type(model).__name__)
    meta = {
        key: torch.empty_like(t, device="meta")
        for key, t in (
            *model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False),
        )
    }
    recorder = _Recorder(builder, {id(t): key for key, t in meta.items()}, default_block_of(model))
    handles = []
    for path, module in model.named_modules():
        leaf = next(module.children(), None) is None
        handles.append(module.register_forward_pre_hook(recorder.enter_hook(path, leaf)))
        handles.append(module.register_forward_hook(recorder.exit_hook))
    x = torch.empty(input_shape, device="meta")
    recorder.track(x, builder.add("input", "input", (), tuple(x.shape), "input"))
    was_training = model.training
    model.eval()
    try:
        with recorder:
            out = torch.func.functional_call(model, meta, (x,), strict=False)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    for tensor in _tensors(out):
        node = recorder.node_of(tensor)
        if node is not None:
            builder.add("output", "output", [node], tuple(tensor.shape), "output")
    return builder.graph
