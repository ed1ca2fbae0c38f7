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
from functools import cache
from math import prod
from typing import Any

import networkx as nx
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from hardnet_analysis.errors import HdaError, UsageError
from hardnet_analysis.graph.ir import GraphBuilder
from hardnet_analysis.graph.shapes import conv_out

AttrFn = Callable[[Sequence[Any], dict[str, Any], torch.Tensor], dict[str, Any]]


def _arg(
    args: Sequence[Any], kwargs: dict[str, Any], index: int, key: str, default: Any = None
) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(key, default)


def _tuple(value: Any, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    if isinstance(value, str):  # padding="same"/"valid": the shape comes from execution anyway
        return (0,) * dims
    return tuple(int(v) for v in value)


def _conv_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    x, weight = args[0], _arg(args, kwargs, 1, "weight")
    dims = weight.dim() - 2
    return {
        "in_channels": x.shape[1],
        "out_channels": weight.shape[0],
        "kernel": tuple(weight.shape[2:]),
        "stride": _tuple(_arg(args, kwargs, 3, "stride", 1), dims),
        "padding": _tuple(_arg(args, kwargs, 4, "padding", 0), dims),
        "dilation": _tuple(_arg(args, kwargs, 5, "dilation", 1), dims),
        "groups": int(_arg(args, kwargs, 6, "groups", 1)),
        "bias": _arg(args, kwargs, 2, "bias") is not None,
        "transposed": False,
    }


def _conv_transpose_attrs(
    args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor
) -> dict[str, Any]:
    # F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation);
    # the weight is (C_in, C_out / groups, kh, kw).
    x, weight = args[0], _arg(args, kwargs, 1, "weight")
    dims = weight.dim() - 2
    groups = int(_arg(args, kwargs, 6, "groups", 1))
    return {
        "in_channels": x.shape[1],
        "out_channels": weight.shape[1] * groups,
        "kernel": tuple(weight.shape[2:]),
        "stride": _tuple(_arg(args, kwargs, 3, "stride", 1), dims),
        "padding": _tuple(_arg(args, kwargs, 4, "padding", 0), dims),
        "output_padding": _tuple(_arg(args, kwargs, 5, "output_padding", 0), dims),
        "dilation": _tuple(_arg(args, kwargs, 7, "dilation", 1), dims),
        "groups": groups,
        "bias": _arg(args, kwargs, 2, "bias") is not None,
        "transposed": True,
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


def _matmul_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """matmul/mm/bmm/@: every output element is a dot product over the first operand's last dim."""
    return {"inner": int(args[0].shape[-1])}


def _addmm_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """addmm/baddbmm(bias, a, b): the contraction is over a's last dim."""
    return {"inner": int(_arg(args, kwargs, 1, "mat1").shape[-1])}


def _einsum_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """A two-operand einsum costs the product of the sizes of all its distinct indices
    (``bhwc,bkc->bhwk`` with sizes b,h,w,c,k: b*h*w*c*k MACs). More operands are left unhandled
    (and ``...``) become op ``einsum_general``, which has no handler: their cost depends on the
    contraction order."""
    equation = str(args[0]).replace(" ", "")
    operands = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
    inputs = equation.split("->")[0].split(",")
    if len(inputs) != 2 or "..." in equation:
        return {"op": "einsum_general", "equation": equation}
    sizes: dict[str, int] = {}
    for letters, operand in zip(inputs, operands, strict=True):
        sizes.update(zip(letters, operand.shape, strict=True))
    return {"equation": equation, "index_sizes": tuple(sizes.values())}


def _sdpa_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """scaled_dot_product_attention(q, k, v): q (..., L, E), k (..., S, E), v (..., S, Ev)."""
    q, k, v = args[0], _arg(args, kwargs, 1, "key"), _arg(args, kwargs, 2, "value")
    return {
        "queries": prod(q.shape[:-1]),
        "keys": int(k.shape[-2]),
        "qk_dim": int(q.shape[-1]),
        "v_dim": int(v.shape[-1]),
    }


def _mha_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """F.multi_head_attention_forward(query (L, N, E), key (S, N, kdim), value (S, N, vdim))."""
    q, k, v = args[0], args[1], args[2]
    batch = q.shape[1] if q.dim() == 3 else 1
    return {
        "tokens": int(q.shape[0]),
        "source": int(k.shape[0]),
        "batch": int(batch),
        "embed": int(q.shape[-1]),
        "kdim": int(k.shape[-1]),
        "vdim": int(v.shape[-1]),
    }


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
    "selu",
    "mish",
    "softplus",
    "prelu",
)

#: Aliases of the same op: operator dunders and their in-place/reflected forms.
_ALIASES = {
    "iadd": "add",
    "radd": "add",
    "mul": "mul",
    "imul": "mul",
    "rmul": "mul",
    "isub": "sub",
    "rsub": "sub",
    "truediv": "div",
    "itruediv": "div",
    "rtruediv": "div",
    "swapaxes": "transpose",
    "concat": "cat",
    "concatenate": "cat",
}

#: torch function name (without underscores) -> (graph op, attribute extractor). A function
#: not listed keeps its own name as op (``permute``, ``softmax``, ...), so the handler table in
#: ``metrics/handlers.py`` decides whether it is counted.
FUNCTION_OPS: dict[str, tuple[str, AttrFn]] = {
    "conv1d": ("conv", _conv_attrs),
    "conv2d": ("conv", _conv_attrs),
    "conv3d": ("conv", _conv_attrs),
    "conv_transpose1d": ("conv_transpose", _conv_transpose_attrs),
    "conv_transpose2d": ("conv_transpose", _conv_transpose_attrs),
    "conv_transpose3d": ("conv_transpose", _conv_transpose_attrs),
    "linear": ("linear", _linear_attrs),
    "matmul": ("matmul", _matmul_attrs),
    "rmatmul": ("matmul", _matmul_attrs),
    "mm": ("matmul", _matmul_attrs),
    "bmm": ("matmul", _matmul_attrs),
    "addmm": ("matmul", _addmm_attrs),
    "baddbmm": ("matmul", _addmm_attrs),
    "einsum": ("einsum", _einsum_attrs),
    "scaled_dot_product_attention": ("attention", _sdpa_attrs),
    "multi_head_attention_forward": ("multi_head_attention", _mha_attrs),
    "batch_norm": ("batchnorm", _bn_attrs),
    "max_pool1d": ("max_pool", _no_attrs),
    "max_pool2d": ("max_pool", _no_attrs),
    "max_pool3d": ("max_pool", _no_attrs),
    "avg_pool1d": ("avg_pool", _no_attrs),
    "avg_pool2d": ("avg_pool", _no_attrs),
    "avg_pool3d": ("avg_pool", _no_attrs),
    "adaptive_avg_pool1d": ("adaptive_avg_pool", _no_attrs),
    "adaptive_avg_pool2d": ("adaptive_avg_pool", _no_attrs),
    "adaptive_max_pool2d": ("adaptive_max_pool", _no_attrs),
    "cat": ("concat", _no_attrs),
    "flatten": ("flatten", _no_attrs),
    "dropout": ("dropout", _no_attrs),
    **{name: ("activation", _no_attrs) for name in _ACTIVATIONS},
}


#: Ops whose output has their first input's shape: not executed on meta tensors, because their
#: meta kernels run through Python decompositions (about 5 ms a call for hardtanh, batch_norm).
SHAPE_PRESERVING = frozenset(
    {"batch_norm", "layer_norm", "group_norm", "dropout", "softmax", *_ACTIVATIONS}
)

#: Calls that return their input unchanged when it already has the requested layout or type;
#: such a call creates no tensor and no node.
PASS_THROUGH = frozenset(
    {"contiguous", "to", "type", "type_as", "float", "half", "double", "detach", "requires_grad"}
)

#: Factory functions: inside a traced forward they create meta tensors unless told a device.
FACTORIES = frozenset(
    {"zeros", "ones", "empty", "full", "arange", "tensor", "as_tensor", "rand", "randn", "eye"}
    | {"linspace", "randint"}
)


def _conv_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """The output shape of F.conv1d/2d/3d by PyTorch's size rule, or None to let the meta kernel
    decide (string padding, unbatched input, a size that vanishes: torch raises its own error)."""
    x, weight = args[0], _arg(args, kwargs, 1, "weight")
    padding = _arg(args, kwargs, 4, "padding", 0)
    if isinstance(padding, str) or not x.is_meta or x.dim() != weight.dim():
        return None
    dims = weight.dim() - 2
    stride = _tuple(_arg(args, kwargs, 3, "stride", 1), dims)
    dilation = _tuple(_arg(args, kwargs, 5, "dilation", 1), dims)
    pads = _tuple(padding, dims)
    sizes = [
        conv_out(x.shape[2 + i], weight.shape[2 + i], stride[i], pads[i], dilation[i])
        for i in range(dims)
    ]
    if min(sizes) < 1 or x.shape[1] != weight.shape[1] * int(_arg(args, kwargs, 6, "groups", 1)):
        return None
    return (x.shape[0], weight.shape[0], *sizes)


def _cat_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """The output shape of torch.cat for same-rank, same-dtype meta tensors that agree off the
    concatenated dim; None otherwise (torch decides, or raises)."""
    tensors, dim = args[0], _arg(args, kwargs, 1, "dim", 0)
    if not tensors or not isinstance(dim, int):
        return None
    head = tensors[0]
    if not all(
        isinstance(t, torch.Tensor)
        and t.is_meta
        and t.dim() == head.dim()
        and t.dtype == head.dtype
        for t in tensors
    ):
        return None
    dim %= max(head.dim(), 1)
    shape = list(head.shape)
    for t in tensors[1:]:
        if [n for i, n in enumerate(t.shape) if i != dim] != [
            n for i, n in enumerate(shape) if i != dim
        ]:
            return None
        shape[dim] += t.shape[dim]
    return tuple(shape)


def _binary_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """add/sub/mul/div of two meta tensors of one dtype (or a float tensor and a Python number):
    the broadcast shape. Anything needing type promotion goes to the meta kernel."""
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not (isinstance(a, torch.Tensor) and a.is_meta and a.is_floating_point()):
        return None
    if isinstance(b, torch.Tensor):
        if not b.is_meta or b.dtype != a.dtype:
            return None
        return tuple(torch.broadcast_shapes(a.shape, b.shape))  # type: ignore[no-untyped-call]
    if isinstance(b, float | int) and not isinstance(b, bool):
        return tuple(a.shape)
    return None


#: Ops whose output shape is computed here instead of by their meta kernels, which run Python
#: decompositions (conv: shape checks in _meta_registrations; cat: torch._refs.cat).
FAST_SHAPES: dict[str, Callable[[Sequence[Any], dict[str, Any]], tuple[int, ...] | None]] = {
    "conv1d": _conv_shape,
    "conv2d": _conv_shape,
    "conv3d": _conv_shape,
    "cat": _cat_shape,
    "add": _binary_shape,
    "sub": _binary_shape,
    "mul": _binary_shape,
    "div": _binary_shape,
}


@cache
def _inplace_index(func: Callable[..., Any]) -> int | None:
    """Position of an ``inplace`` parameter of `func` (F.hardtanh(x, min, max, inplace) -> 3)."""
    try:
        names = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return None
    return names.index("inplace") if "inplace" in names else None


def _is_inplace(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a call writes into its first argument (``relu_``, ``x += y``, ``inplace=True``)."""
    name = getattr(func, "__name__", "")
    if (name.endswith("_") and not name.endswith("__")) or name.startswith("__i"):
        return True
    index = _inplace_index(func)
    if index is None:
        return False
    return bool(args[index] if len(args) > index else kwargs.get("inplace", False))


@cache
def _function_name(func: Callable[..., Any]) -> str:
    """``Tensor.__iadd__`` -> ``add``, ``F.relu_`` -> ``relu``, ``__truediv__`` -> ``div``."""
    name = getattr(func, "__name__", str(func)).strip("_")
    return _ALIASES.get(name, name)


def _leaves(value: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors in nested lists, tuples and dicts (a fast tree_flatten for call arguments:
    tensors in a flat sequence cost no recursive call)."""
    if isinstance(value, torch.Tensor):
        out.append(value)
        return out
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(items, (list, tuple, type({}.values()))):
        return out
    for item in items:
        if isinstance(item, torch.Tensor):
            out.append(item)
        elif isinstance(item, (list, tuple, dict)):
            _leaves(item, out)
    return out


#: Ops that count MACs: recorded as nodes even when only parameters and buffers flow in.
_COMPUTE_OPS = frozenset(
    {"conv", "conv_transpose", "linear", "matmul", "einsum", "attention", "multi_head_attention"}
)


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
            return first if _is_inplace(func, args, kwargs) else first.detach()
        if short in FACTORIES and kwargs.get("device") is None:
            kwargs = {**kwargs, "device": "meta"}
        fast = FAST_SHAPES.get(short)
        if fast is not None and isinstance(first, (torch.Tensor, list, tuple)):
            shape = fast(args, kwargs)
            if shape is not None and _is_inplace(func, args, kwargs):
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
        short = _function_name(func)
        self.current = short
        out = self._execute(func, short, args, kwargs)
        if not isinstance(out, torch.Tensor) and not isinstance(out, (tuple, list)):
            return out
        outputs = _leaves(out, [])
        if not outputs:
            return out
        inputs: list[str] = []
        weights: list[tuple[str, int]] = []
        for tensor in _leaves(kwargs, _leaves(args, [])) if kwargs else _leaves(args, []):
            node = self.node_of(tensor)
            if node is not None:
                inputs.append(node)
            elif (param := self.params.get(id(tensor))) is not None:
                weights.append(param)
            elif (derived := self.derived.get(id(tensor))) is not None and derived[1] is tensor:
                weights.extend(derived[0])
        if not inputs and not weights:
            return out
        if not inputs and FUNCTION_OPS.get(short, (short,))[0] not in _COMPUTE_OPS:
            # Weight preprocessing (a mask applied, a token expanded): no activation flows in and
            # nothing is multiplied out, so no node; the result stands for its parameters
            # wherever an op consumes it. (Swin V2's position-bias MLP on a buffer stays a node.)
            for tensor in outputs:
                self.derived[id(tensor)] = (weights, tensor)
            return out
        if short in PASS_THROUGH and out is args[0]:
            return out
        self._record(func, short, args, kwargs, outputs, inputs, weights)
        return out

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
        op, attr_fn = FUNCTION_OPS.get(short, (short, _no_attrs))
        path, leaf = self.stack[-1] if self.stack else ("", False)
        name = path if leaf and path else f"{path}.{short}".lstrip(".")
        attrs = attr_fn(args, kwargs, outputs[0])
        op = attrs.pop("op", op)
        if weights:
            attrs["param_key"] = weights[0][0].rsplit(".", 1)[0]
            attrs["param_tensors"] = tuple(weights)
            self.used.update(w[0] for w in weights)
        if op == "activation":
            attrs["kind"] = short
        node = self.builder.add(
            op, name, inputs, tuple(outputs[0].shape), self.block_of(path), **attrs
        )
        for tensor in outputs:
            self.track(tensor, node)


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


@contextmanager
def _on_meta(
    modules: list[tuple[str, nn.Module]],
) -> Iterator[dict[int, tuple[str, int]]]:
    """Swap every parameter and buffer for a meta tensor while the block runs, directly in the
    modules' ``_parameters``/``_buffers`` (cheaper than ``functional_call``); tied tensors share
    one copy. Yields the meta parameters' ids -> (name where first reached, elements)."""
    copies: dict[int, torch.Tensor] = {}
    params: dict[int, tuple[str, int]] = {}
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
                    if is_param:
                        params[id(meta)] = (f"{path}.{key}".lstrip("."), tensor.numel())
                if copies[id(tensor)] is not tensor:
                    saved.append((table, key, tensor))
                    table[key] = copies[id(tensor)]
    try:
        yield params
    finally:
        for table, key, tensor in saved:
            table[key] = tensor


def _eval_mode(modules: list[tuple[str, nn.Module]]) -> list[nn.Module]:
    """Put every module in eval mode; returns those that were training, to restore them."""
    training = [m for _, m in modules if m.training]
    for module in training:
        module.training = False
    return training


def _run(model: nn.Module, recorder: _Recorder, x: torch.Tensor, model_name: str) -> Any:
    """Run the forward under the recorder; a failure becomes a UsageError saying where."""
    try:
        with recorder:
            return model(x)
    except HdaError:
        raise
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(
            f"{model_name} cannot be traced on meta tensors ({recorder.where()}): "
            f"{type(exc).__name__}: {message}"
        ) from exc


def trace_module(
    model: nn.Module, input_shape: tuple[int, ...], name: str | None = None
) -> nx.DiGraph:
    """The operation DAG of `model` run on a meta tensor of `input_shape` (NCHW with batch).

    Nodes are named by module path (``base.3.layers.0.conv``); ops inside a non-leaf module's own
    forward get the function's name appended (``base.3.cat``). Ops that no entry of
    ``FUNCTION_OPS`` covers keep their function name as op, so the metrics report them. The
    graph attribute ``unused_params`` maps parameters the forward never touched to their sizes.
    A forward that cannot run on meta tensors raises a one-line UsageError naming where it broke.
    The model is left as it was (its own weights, its own train/eval modes).
    """
    model_name = name or type(model).__name__
    builder = GraphBuilder(model_name)
    modules = list(model.named_modules())
    recorder = _Recorder(builder, {}, default_block_of(model))
    for path, module in modules:
        recorder.paths[id(module)] = (path, not module._modules)
    x = torch.empty(input_shape, device="meta")
    recorder.track(x, builder.add("input", "input", (), tuple(x.shape), "input"))
    # Two global hooks cost less than two per module (registering is most of a small trace).
    handles = [
        nn.modules.module.register_module_forward_pre_hook(recorder.enter_hook),
        nn.modules.module.register_module_forward_hook(recorder.exit_hook),
    ]
    training = _eval_mode(modules)
    try:
        with _on_meta(modules) as params:
            recorder.params = params
            out = _run(model, recorder, x, model_name)
    finally:
        for module in training:
            module.training = True
        for handle in handles:
            handle.remove()
    for tensor in _leaves(out, []):
        node = recorder.node_of(tensor)
        if node is not None:
            builder.add("output", "output", [node], tuple(tensor.shape), "output")
    builder.graph.graph["unused_params"] = {
        key: size for key, size in params.values() if key not in recorder.used
    }
    return builder.graph
