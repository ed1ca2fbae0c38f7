"""Which ops read subnormal floats: a cost that lives in the values, not in the shapes.

A float below the smallest normal number (fp32: 1.2e-38) is subnormal, and many x86 CPUs
compute with one in microcode, at tens of times the normal cost. Swin-T's shifted-window
attention masks the tokens of other regions with -100, so its softmax gives them exp(-100),
about 3.7e-44: at 224, 7-26% of the inputs of each shifted block's second matmul are
subnormal, and on a 2-core Intel Xeon VM that batched matmul took 3.17 ms instead of 0.049 ms,
26% of the model's time at one thread (``benchmarks/bench_denormals.py``). No model of shapes
and bytes can predict that, and a calibration on random data never meets it.

`subnormal_inputs` runs one forward under a ``TorchDispatchMode`` that counts, for every aten
op, the subnormal values among its floating-point tensor inputs, with the module that called
it (forward hooks keep the path), and sets the hooks and mode aside afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from hardnet_analysis.documents.profile_run import SubnormalInputs


class _Counter(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Counts subnormal input values per (module path, op) while active."""

    def __init__(self, path: list[str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.path = path
        self.found: dict[tuple[str, str], list[int]] = {}  # -> [subnormal, elements, calls]

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        subnormal, elements = 0, 0
        for value in tree_flatten((args, kwargs or {}))[0]:
            if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
                size = value.detach().abs()
                tiny = torch.finfo(value.dtype).tiny
                subnormal += int(((size < tiny) & (size > 0)).sum())
                elements += value.numel()
        key = (self.path[-1] if self.path else "", func.overloadpacket.__name__)
        before = self.found.get(key, [0, 0, 0])
        self.found[key] = [a + b for a, b in zip(before, (subnormal, elements, 1), strict=True)]
        return func(*args, **(kwargs or {}))


@contextmanager
def _module_paths(model: nn.Module) -> Iterator[list[str]]:
    """A stack holding the path of the module whose forward is running, innermost last."""
    path: list[str] = []
    names = {id(m): name for name, m in model.named_modules()}

    def enter(module: nn.Module, _: Any) -> None:
        path.append(names.get(id(module), ""))

    def leave(module: nn.Module, _: Any, __: Any) -> None:
        path.pop()

    handles = [m.register_forward_pre_hook(enter) for m in model.modules()]
    handles += [m.register_forward_hook(leave) for m in model.modules()]
    try:
        yield path
    finally:
        for handle in handles:
            handle.remove()


def subnormal_inputs(
    model: nn.Module, forward: Callable[[], object]
) -> tuple[SubnormalInputs, ...]:
    """Run `forward` (a call of `model`) once and return the ops that read subnormal floats,
    the highest share first (see `SubnormalInputs`); empty when none did."""
    with _module_paths(model) as path, torch.inference_mode(), _Counter(path) as counter:
        forward()
    found = [
        SubnormalInputs(module, op, subnormal / elements, calls)
        for (module, op), (subnormal, elements, calls) in counter.found.items()
        if subnormal
    ]
    return tuple(sorted(found, key=lambda s: (-s.share, s.module, s.op)))


def subnormal_warning(found: tuple[SubnormalInputs, ...]) -> str | None:
    """One line naming the ops that read the most subnormal values (None: none did)."""
    if not found:
        return None
    top = "; ".join(f"{s.module or 'the model'} {s.op}: {s.share:.1%}" for s in found[:3])
    return (
        f"{len(found)} ops read subnormal floats (share of their inputs: {top}): on many x86 "
        "CPUs each costs tens of times a normal value, which no prediction from shapes sees; "
        "torch.set_flush_denormal(True) flushes them to zero"
    )
