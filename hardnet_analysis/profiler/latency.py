"""Latency: whole-model timing, and the layer keys module hooks give.

Clocks come from the backend (`hardnet_analysis.backends`): wall or thread CPU time on the
CPU, device events on a GPU. Per-op times come from ``torch.profiler``
(`hardnet_analysis.profiler.ops`), not from hooks: hooks cost about 34 us per layer key on a
CPU, which made small layers look several times slower than they are.

Hooks stay for what the profiler cannot do: name the ranges a counter tool reads (ncu filters
kernels by NVTX range, `profiler.child`). `LayerTimer` marks the clock at each module boundary;
the interval after a mark belongs to the module on top of the stack: a leaf module's interval
is that layer's time; an interval while a container is on top (its own ``torch.cat`` between
child calls) is the container's *self* time, named by the container's path (``(model)`` for
the root).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from hardnet_analysis.backends import Clock
from hardnet_analysis.documents.profile_run import Timing

ROOT = "(model)"


@dataclass(frozen=True)
class Stats:
    """Summary of timing samples in seconds: median, quartiles, min, max, count."""

    median: float
    p25: float
    p75: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        """Stats of `samples`; quartiles by the inclusive method (1, 2, 3, 4 -> 1.75 / 3.25)."""
        if len(samples) == 1:
            s = samples[0]
            return cls(s, s, s, s, s, 1)
        q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(q2, q1, q3, min(samples), max(samples), len(samples))

    def timing(self) -> Timing:
        """These stats as the run file's `Timing` record."""
        return Timing(self.median, self.p25, self.p75, self.min, self.max, self.n)


Forward = Callable[[], object]


def time_forward(forward: Forward, clock: Clock, warmup: int, repeat: int) -> list[float]:
    """Seconds of each of `repeat` calls of `forward` after `warmup` untimed calls."""
    for _ in range(warmup):
        forward()
    clock.sync()
    samples = []
    for _ in range(repeat):
        start = clock.mark()
        forward()
        end = clock.mark()
        clock.sync()
        samples.append(clock.elapsed(start, end))
    return samples


class LayerTimer:
    """Hooks every module of `model` and attributes each forward's time to layers (see module
    docstring). Use as a context manager; `run(forward)` returns {layer key: seconds}."""

    def __init__(self, model: nn.Module, clock: Clock) -> None:
        self.clock = clock
        self.paths = {id(m): p for p, m in model.named_modules()}
        self.leaves = {p for p, m in model.named_modules() if next(m.children(), None) is None}
        self._model = model
        self._handles: list[Any] = []
        self._marks: list[tuple[Any, str | None]] = []
        self._stack: list[str] = []
        self._calls: dict[str, int] = {}

    def key(self, path: str) -> str:
        """The layer key of a call of the module at `path`: a leaf's k-th call in one forward is
        ``path`` then ``path:1``, ``path:2`` (as the traced graph names nodes); a container's
        self time is its path (``(model)`` for the root)."""
        if path not in self.leaves:
            return path or ROOT
        n = self._calls.get(path, 0)
        self._calls[path] = n + 1
        return path if n == 0 else f"{path}:{n}"

    def _pre(self, module: nn.Module, args: Any) -> None:
        key = self.key(self.paths[id(module)])
        self._stack.append(key)
        self._marks.append((self.clock.mark(), key))

    def _post(self, module: nn.Module, args: Any, output: Any) -> None:
        now = self.clock.mark()  # first, so the bookkeeping falls in the container's interval
        self._stack.pop()
        self._marks.append((now, self._stack[-1] if self._stack else None))

    def __enter__(self) -> LayerTimer:
        for module in self._model.modules():
            self._handles.append(module.register_forward_pre_hook(self._pre))
            self._handles.append(module.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def run(self, forward: Forward) -> dict[str, float]:
        """Run `forward` once; seconds per layer key, in the order layers first ran."""
        self._marks.clear()
        self._stack.clear()
        self._calls.clear()
        forward()
        self.clock.sync()
        times: dict[str, float] = {}
        for (start, key), (end, _) in zip(self._marks, self._marks[1:], strict=False):
            if key is not None:
                times[key] = times.get(key, 0.0) + self.clock.elapsed(start, end)
        return times
