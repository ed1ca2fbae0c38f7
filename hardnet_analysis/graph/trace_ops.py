"""The tracer's op table: torch function -> graph op and its attributes, and the fast paths.

`FUNCTION_OPS` names each traced torch function's graph op and extracts the attributes its cost
handler reads (``metrics/handlers.py``); a function not listed keeps its own name as op, so the
handler table decides whether it is counted. `SHAPE_PRESERVING`, `PASS_THROUGH` and
`FACTORIES` let the tracer skip meta kernels that run slow Python decompositions (the shape
rules that replace others are in ``fast_shapes.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import cache
from math import prod
from typing import Any

import torch

from hardnet_analysis.graph.fast_shapes import arg, as_tuple

AttrFn = Callable[[Sequence[Any], dict[str, Any], torch.Tensor], dict[str, Any]]


def _conv_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    # Channels from the weight, (C_out, C_in / groups, *kernel): an unbatched input (C, L) has
    # no channel dim at 1.
    weight = arg(args, kwargs, 1, "weight")
    dims = weight.dim() - 2
    groups = int(arg(args, kwargs, 6, "groups", 1))
    return {
        "in_channels": weight.shape[1] * groups,
        "out_channels": weight.shape[0],
        "kernel": tuple(weight.shape[2:]),
        "stride": as_tuple(arg(args, kwargs, 3, "stride", 1), dims),
        "padding": as_tuple(arg(args, kwargs, 4, "padding", 0), dims),
        "dilation": as_tuple(arg(args, kwargs, 5, "dilation", 1), dims),
        "groups": groups,
        "bias": arg(args, kwargs, 2, "bias") is not None,
        "transposed": False,
    }


def _conv_transpose_attrs(
    args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor
) -> dict[str, Any]:
    # F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation);
    # the weight is (C_in, C_out / groups, kh, kw).
    weight = arg(args, kwargs, 1, "weight")
    dims = weight.dim() - 2
    groups = int(arg(args, kwargs, 6, "groups", 1))
    return {
        "in_channels": weight.shape[0],
        "out_channels": weight.shape[1] * groups,
        "kernel": tuple(weight.shape[2:]),
        "stride": as_tuple(arg(args, kwargs, 3, "stride", 1), dims),
        "padding": as_tuple(arg(args, kwargs, 4, "padding", 0), dims),
        "output_padding": as_tuple(arg(args, kwargs, 5, "output_padding", 0), dims),
        "dilation": as_tuple(arg(args, kwargs, 7, "dilation", 1), dims),
        "groups": groups,
        "bias": arg(args, kwargs, 2, "bias") is not None,
        "transposed": True,
    }


def _linear_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    weight = arg(args, kwargs, 1, "weight")
    return {
        "in_features": weight.shape[1],
        "out_features": weight.shape[0],
        "bias": arg(args, kwargs, 2, "bias") is not None,
    }


def _pool_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """max_pool/avg_pool(input, kernel_size, stride=None, padding=0, ...): stride None or empty
    means the kernel, as in PyTorch."""
    dims = out.dim() - 2
    kernel = as_tuple(arg(args, kwargs, 1, "kernel_size"), dims)
    stride = arg(args, kwargs, 2, "stride")
    return {
        "kernel": kernel,
        "stride": as_tuple(stride, dims) if stride else kernel,
        "padding": as_tuple(arg(args, kwargs, 3, "padding", 0), dims),
    }


def _interpolate_attrs(
    args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor
) -> dict[str, Any]:
    """interpolate(input, size=None, scale_factor=None, mode="nearest", ...): the mode, whose
    taps per output element the op's work counts (``metrics.op_kinds.resize_taps``)."""
    return {"mode": str(arg(args, kwargs, 3, "mode", "nearest"))}


def _bn_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    return {"channels": args[0].shape[1], "affine": arg(args, kwargs, 3, "weight") is not None}


def _matmul_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """matmul/mm/bmm/@: every output element is a dot product over the first operand's last dim."""
    return {"inner": int(args[0].shape[-1])}


def _addmm_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """addmm/baddbmm(bias, a, b): the contraction is over a's last dim."""
    return {"inner": int(arg(args, kwargs, 1, "mat1").shape[-1])}


def _outer_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """ger/addr: an outer product, one multiply per output element."""
    return {"inner": 1}


def _addbmm_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """addbmm(bias, b1 (B, n, m), b2 (B, m, p)) -> (n, p): each output sums B * m products."""
    batch1 = arg(args, kwargs, 1, "batch1")
    return {"inner": int(batch1.shape[0] * batch1.shape[-1])}


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
    q, k, v = args[0], arg(args, kwargs, 1, "key"), arg(args, kwargs, 2, "value")
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


def _rnn_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """``_VF.lstm/gru/rnn_tanh/rnn_relu(input, hx, flat_weights, bias, num_layers, dropout,
    train, bidirectional, batch_first)``: every 2-D weight matrix (input-hidden, hidden-hidden
    and projection, all gates, layers and directions) multiplies one vector per step and
    sequence, so the op's MACs are steps * sequences * (elements of those matrices)."""
    x, weights, batch_first = args[0], args[2], bool(args[8])
    if x.dim() == 2:  # unbatched: (steps, features)
        steps, sequences = x.shape[0], 1
    else:
        steps, sequences = (x.shape[1], x.shape[0]) if batch_first else x.shape[:2]
    matrices = sum(w.numel() for w in weights if w.dim() == 2)
    return {"steps": int(steps), "sequences": int(sequences), "matrix_elements": int(matrices)}


def _cell_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
    """``lstm_cell/gru_cell/rnn_*_cell(input, hx, w_ih, w_hh, b_ih, b_hh)``: one step, each weight
    matrix multiplying one vector per sequence."""
    x, w_ih, w_hh = args[0], args[2], args[3]
    sequences = x.shape[0] if x.dim() == 2 else 1
    return {"steps": 1, "sequences": int(sequences), "matrix_elements": w_ih.numel() + w_hh.numel()}


def no_attrs(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> dict[str, Any]:
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
    "mv": ("matmul", _matmul_attrs),
    "dot": ("matmul", _matmul_attrs),
    "vdot": ("matmul", _matmul_attrs),
    "inner": ("matmul", _matmul_attrs),
    "linalg_matmul": ("matmul", _matmul_attrs),
    "linalg_vecdot": ("matmul", _matmul_attrs),
    "addmv": ("matmul", _addmm_attrs),
    "ger": ("matmul", _outer_attrs),
    "outer": ("matmul", _outer_attrs),
    "addr": ("matmul", _outer_attrs),
    "addbmm": ("matmul", _addbmm_attrs),
    "lstm_cell": ("recurrent", _cell_attrs),
    "gru_cell": ("recurrent", _cell_attrs),
    "rnn_tanh_cell": ("recurrent", _cell_attrs),
    "rnn_relu_cell": ("recurrent", _cell_attrs),
    "lstm": ("recurrent", _rnn_attrs),
    "gru": ("recurrent", _rnn_attrs),
    "rnn_tanh": ("recurrent", _rnn_attrs),
    "rnn_relu": ("recurrent", _rnn_attrs),
    "multi_head_attention_forward": ("multi_head_attention", _mha_attrs),
    "batch_norm": ("batchnorm", _bn_attrs),
    "max_pool1d": ("max_pool", _pool_attrs),
    "max_pool2d": ("max_pool", _pool_attrs),
    "max_pool3d": ("max_pool", _pool_attrs),
    "avg_pool1d": ("avg_pool", _pool_attrs),
    "avg_pool2d": ("avg_pool", _pool_attrs),
    "avg_pool3d": ("avg_pool", _pool_attrs),
    "adaptive_avg_pool1d": ("adaptive_avg_pool", no_attrs),
    "adaptive_avg_pool2d": ("adaptive_avg_pool", no_attrs),
    "adaptive_max_pool2d": ("adaptive_max_pool", no_attrs),
    "cat": ("concat", no_attrs),
    "interpolate": ("interpolate", _interpolate_attrs),
    "flatten": ("flatten", no_attrs),
    "dropout": ("dropout", no_attrs),
    **{name: ("activation", no_attrs) for name in _ACTIVATIONS},
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


@cache
def _inplace_index(func: Callable[..., Any]) -> int | None:
    """Position of an ``inplace`` parameter of `func` (F.hardtanh(x, min, max, inplace) -> 3)."""
    try:
        names = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return None
    return names.index("inplace") if "inplace" in names else None


def is_inplace(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a call writes into its first argument (``relu_``, ``x += y``, ``inplace=True``)."""
    name = getattr(func, "__name__", "")
    if (name.endswith("_") and not name.endswith("__")) or name.startswith("__i"):
        return True
    index = _inplace_index(func)
    if index is None:
        return False
    return bool(args[index] if len(args) > index else kwargs.get("inplace", False))


@cache
def function_name(func: Callable[..., Any]) -> str:
    """``Tensor.__iadd__`` -> ``add``, ``F.relu_`` -> ``relu``, ``__truediv__`` -> ``div``; an
    aten overload (what a `torch.export` program calls) by its op: ``aten.conv2d.default`` ->
    ``conv2d``, ``aten.add_.Tensor`` -> ``add`` (their arguments come in the functions' order)."""
    packet = getattr(func, "_overloadpacket", None)  # torch._ops.OpOverload
    name = getattr(packet or func, "__name__", str(func)).strip("_")
    return _ALIASES.get(name, name)


def leaves(value: Any, out: list[torch.Tensor]) -> list[torch.Tensor]:
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
            leaves(item, out)
    return out
