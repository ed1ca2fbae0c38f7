"""Data-dependent ops: which calls make a size depend on tensor values, and a declared size.

A meta tensor has a shape but no values, so an op whose output size depends on values
(``nonzero``, a boolean-mask index, torchvision's ``nms``) or a value read into Python
(``.item()``, ``if x.sum() > 0``) cannot run on one. The tracer then runs the forward again on
real tensors (``traced.py``) and uses this module to name such calls (`selection`,
`value_read`) so that every node downstream is marked, and to replace their outcome by a
declared count (`declare`, ``--detections N``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

#: Calls whose output size is the number of values that pass a test: graph op -> what it is.
SELECTIONS: dict[str, str] = {
    "nonzero": "nonzero",
    "argwhere": "nonzero",
    "masked_select": "masked select",
    "unique": "unique",
    "unique_consecutive": "unique",
    "bincount": "bincount",
    "nms": "nms",
}

#: Calls that read tensor values into Python (control flow or sizes may follow from them).
VALUE_READS = frozenset({"item", "tolist", "bool", "int", "float", "index", "is_nonzero"})


def _bool_index(value: Any) -> bool:
    """Whether an index (a tensor or a tuple of indices) holds a boolean tensor."""
    items = value if isinstance(value, tuple) else (value,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def selection(short: str, args: Sequence[Any]) -> str | None:
    """What makes a call's output size data-dependent, or None: ``nonzero`` for
    ``torch.where(mask)`` (one argument), ``masked index`` for ``x[mask]`` with a boolean
    tensor, the `SELECTIONS` entry otherwise. ``selection("where", (mask,))`` is "nonzero"."""
    if short == "where":
        return "nonzero" if len(args) == 1 else None
    if short == "getitem":
        return "masked index" if len(args) > 1 and _bool_index(args[1]) else None
    return SELECTIONS.get(short)


def deciding(short: str, args: Sequence[Any]) -> Any:
    """The arguments of a selection whose values decide its size: the mask of ``x[mask]`` and
    ``masked_select(x, mask)``, the boxes and scores of ``nms``, else the first argument.
    ``deciding("getitem", (x, mask))`` is ``mask``."""
    if short in ("getitem", "masked_select"):
        return args[1]
    if short == "nms":
        return tuple(args[:2])
    return args[0] if args else ()


def _first(count: int, shape: torch.Size) -> torch.Tensor:
    """A boolean tensor of `shape` true at its first `count` elements (row-major):
    ``_first(2, (2, 2))`` is ``[[True, True], [False, False]]``."""
    flat = torch.zeros(shape.numel(), dtype=torch.bool)
    flat[:count] = True
    return flat.view(shape)


def _masked(value: Any, count: int) -> Any:
    """`value` (a boolean tensor, or a tuple of indices holding some) with each boolean tensor
    replaced by one true at its first `count` elements, on the same device."""
    if isinstance(value, tuple):
        return tuple(_masked(v, count) for v in value)
    if isinstance(value, torch.Tensor) and value.dtype == torch.bool:
        return _first(count, value.shape).to(value.device)
    return value


def declare(
    func: Callable[..., Any], short: str, args: Sequence[Any], kwargs: dict[str, Any], count: int
) -> Any:
    """Run a selection as if `count` values passed (or all, where fewer are there): a mask
    becomes one true at its first `count` elements, ``nms`` keeps the `count` highest scores.
    ``torch.nonzero`` of a 10-element mask with `count` 3 gives 3 indices whatever the mask."""
    if short == "nms":
        scores = args[1]
        return torch.argsort(scores, descending=True)[:count]
    if short in ("nonzero", "argwhere", "where"):
        mask = args[0]
        return func(_first(count, mask.shape).to(mask.device), *args[1:], **kwargs)
    if short == "masked_select":
        return func(args[0], _masked(args[1], count), *args[2:], **kwargs)
    if short == "getitem":
        return func(args[0], _masked(args[1], count), *args[2:], **kwargs)
    return func(*args, **kwargs)  # unique, bincount: their sizes stay the values'


def real_input(dims: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A seeded stand-in for a real input: uniform in [0, 1) for floating types (an image's
    range), zeros for integer ones (a valid index for any embedding), all true for bool."""
    if dtype.is_floating_point or dtype.is_complex:
        return torch.rand(dims, dtype=dtype, device=device)
    if dtype == torch.bool:
        return torch.ones(dims, dtype=dtype, device=device)
    return torch.zeros(dims, dtype=dtype, device=device)
