"""Output shapes the tracer computes in plain Python instead of running meta kernels.

Several meta kernels run Python decompositions (conv's shape checks in ``_meta_registrations``,
``torch._refs.cat``, linear and matmul through reshapes, broadcasting through ``torch._refs``):
tens of microseconds to milliseconds a call. These rules give the same shapes by PyTorch's size
rules; a rule returns None when a case is not its own, and the meta kernel runs instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from hardnet_analysis.graph.shapes import conv_out


def arg(
    args: Sequence[Any], kwargs: dict[str, Any], index: int, key: str, default: Any = None
) -> Any:
    """Argument `index` of a call, or keyword `key`, or `default`."""
    if len(args) > index:
        return args[index]
    return kwargs.get(key, default)


def as_tuple(value: Any, dims: int) -> tuple[int, ...]:
    """An int or a sequence as a `dims`-tuple: (2, 2) -> (2, 2), 3 with 2 dims -> (3, 3)."""
    if isinstance(value, int):
        return (value,) * dims
    if isinstance(value, str):  # padding="same"/"valid": the shape comes from execution anyway
        return (0,) * dims
    return tuple(int(v) for v in value)


def _conv_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """The output shape of F.conv1d/2d/3d by PyTorch's size rule, or None to let the meta kernel
    decide (string padding, unbatched input, a size that vanishes: torch raises its own error)."""
    x, weight = args[0], arg(args, kwargs, 1, "weight")
    padding = arg(args, kwargs, 4, "padding", 0)
    if isinstance(padding, str) or not x.is_meta or x.dim() != weight.dim():
        return None
    dims = weight.dim() - 2
    stride = as_tuple(arg(args, kwargs, 3, "stride", 1), dims)
    dilation = as_tuple(arg(args, kwargs, 5, "dilation", 1), dims)
    pads = as_tuple(padding, dims)
    sizes = [
        conv_out(x.shape[2 + i], weight.shape[2 + i], stride[i], pads[i], dilation[i])
        for i in range(dims)
    ]
    if min(sizes) < 1 or x.shape[1] != weight.shape[1] * int(arg(args, kwargs, 6, "groups", 1)):
        return None
    return (x.shape[0], weight.shape[0], *sizes)


def _cat_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """The output shape of torch.cat for same-rank, same-dtype meta tensors that agree off the
    concatenated dim; None otherwise (torch decides, or raises)."""
    tensors, dim = args[0], arg(args, kwargs, 1, "dim", 0)
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


def broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy broadcasting of two shapes in plain Python (torch.broadcast_shapes goes through
    torch._refs): (2, 1, 4) and (3, 1) -> (2, 3, 4); None when they do not broadcast."""
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    out = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(out)


def _linear_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """F.linear(x (..., in), weight (out, in)) -> (..., out)."""
    x, weight = args[0], arg(args, kwargs, 1, "weight")
    if not (isinstance(x, torch.Tensor) and isinstance(weight, torch.Tensor)):
        return None
    if weight.dim() != 2 or x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        return None
    return (*x.shape[:-1], int(weight.shape[0]))


def _matmul_shape(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[int, ...] | None:
    """matmul of two tensors of rank >= 2: broadcast batch dims, then (n, m) @ (m, p)."""
    if len(args) != 2 or kwargs:
        return None
    a, b = args
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return None
    if a.dim() < 2 or b.dim() < 2 or a.shape[-1] != b.shape[-2] or a.dtype != b.dtype:
        return None
    batch = broadcast(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    return None if batch is None else (*batch, int(a.shape[-2]), int(b.shape[-1]))


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
        return broadcast(tuple(a.shape), tuple(b.shape))
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
    "linear": _linear_shape,
    "matmul": _matmul_shape,
    "bmm": _matmul_shape,
    "mm": _matmul_shape,
}
