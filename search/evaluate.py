"""Candidates' params, MACs, CIO, activation bytes and minimum MoC, from the metric code itself.

There is no second formula here. Every number comes from ``measure_graph`` (the cost handlers
``analyze()`` uses) applied to the analytic builder's graph of a network *part*: the stem, one
stage (block, transition, downsampling) or the head, each fed by an input node of the shape the
template gives it. Because the template fixes the stem and the transition widths, a stage's input
shape does not depend on the other stages' blocks, so

- each distinct (stage, k, m, n_layers) is measured once (`PartCosts`, memoised), and
- a candidate's totals combine its parts' totals as each metric of
  `hardnet_analysis.search_metrics.METRICS` says (counts summed, the min MoC the minimum), which
  `GridEvaluator` forms with numpy gathers over whole index ranges at once.

HarDNet-68 at 224x224 (batch 1): stem + 5 stages + head sum to 17,565,348 params,
4,246,114,304 MACs and 11,468,940 CIO, as ``analyze("hardnet68")`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

from hardnet_analysis.errors import HdaError
from hardnet_analysis.families.hardnet.graph import head_fragment, stage_fragment, stem_fragment
from hardnet_analysis.graph.ir import Shape
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.search_metrics import METRIC_NAMES, METRICS, MetricSpec, check_fields
from search.space import Choices, Group, SearchSpace, StageChoice

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: One array per metric, by name: int64 for counts, float64 for ratios (typed loosely, as the
#: dataclass fields that receive them by keyword name their own dtypes).
Columns = dict[str, Any]
#: A per-part quantity beyond `METRICS` that sums over a candidate's parts (seconds of predicted
#: latency from a device model): a function of the part's analysis and its place in the network
#: (``first`` for the stem, ``middle`` for a stage, ``last`` for the head).
PartFeature = Callable[[Analysis, str], float]


@dataclass(frozen=True)
class PartCost:
    """Totals of one network part (one field per `METRICS` entry): counts at the search's batch,
    `act_bytes` at its dtype, `min_moc` the smallest MoC of the part's convolutions (inf without
    convolutions); `out_shape` is the part's output (NCHW)."""

    params: int
    macs: int
    cio: int
    act_bytes: int
    min_moc: float
    out_shape: Shape

    @classmethod
    def of(cls, graph: nx.DiGraph, dtype: str) -> PartCost:
        return cls.of_analysis(measure_graph(graph, dtype))

    @classmethod
    def of_analysis(cls, analysis: Analysis) -> PartCost:
        if analysis.unhandled:
            ops = ", ".join(sorted({u.op for u in analysis.unhandled}))
            raise HdaError(f"the search cannot count ops without a cost handler: {ops}")
        t = analysis.totals
        values = {s.name: _or_identity(getattr(t, s.name), s) for s in METRICS}
        return cls(**values, out_shape=analysis.output_shape)

    def plus(self, other: PartCost) -> PartCost:
        """Totals of both parts (the shape is the later part's)."""
        values = {
            s.name: _combine(s, getattr(self, s.name), getattr(other, s.name)) for s in METRICS
        }
        return PartCost(**values, out_shape=other.out_shape)

    def value(self, name: str) -> Any:
        """One metric by name: an int count or a float ratio."""
        return getattr(self, name)

    def values(self) -> dict[str, Any]:
        """The metrics by name, in `METRICS` order."""
        return {name: self.value(name) for name in METRIC_NAMES}


def _or_identity(value: float | None, spec: MetricSpec) -> Any:
    """An analysis total, None (no convolution has a MoC) read as the combine's identity."""
    return spec.identity if value is None else value


def _combine(spec: MetricSpec, a: Any, b: Any) -> Any:
    return a + b if spec.combine == "sum" else min(a, b)


check_fields(PartCost, "out_shape")


class PartCosts:
    """Measures the template's stem and head once and each distinct stage choice once, with
    each `features` entry (name -> function of the part's analysis) beside the metrics."""

    def __init__(
        self,
        space: SearchSpace,
        input_shape: Shape,
        dtype: str = "fp32",
        features: Mapping[str, PartFeature] | None = None,
    ) -> None:
        self.space = space
        self.dtype = dtype
        self.features = dict(features or {})
        self.extra: dict[Any, dict[str, float]] = {}
        template = space.template
        self.stem = self._measure("stem", stem_fragment(template, input_shape), "first")
        # The stage input shapes follow from the template alone (fixed transition widths).
        shapes = [self.stem.out_shape]
        for number in range(1, len(template.stages) + 1):
            graph = stage_fragment(template, number, shapes[-1])
            shapes.append(PartCost.of(graph, dtype).out_shape)
        self.stage_inputs: tuple[Shape, ...] = tuple(shapes[:-1])
        self.head = self._measure("head", head_fragment(template, shapes[-1]), "last")
        self._memo: dict[tuple[int, StageChoice], PartCost] = {}

    def _measure(self, key: Any, graph: nx.DiGraph, place: str = "middle") -> PartCost:
        """The part's metrics; its features are kept under `key` in `extra`."""
        analysis = measure_graph(graph, self.dtype)
        self.extra[key] = {name: f(analysis, place) for name, f in self.features.items()}
        return PartCost.of_analysis(analysis)

    def stage(self, number: int, choice: StageChoice) -> PartCost:
        """Stage `number` (1-based) of the template with its block set to `choice`."""
        key = (number, choice)
        cost = self._memo.get(key)
        if cost is None:
            choices = list(self.space.template_choices())
            choices[number - 1] = choice
            defn = self.space.definition(tuple(choices))
            graph = stage_fragment(defn, number, self.stage_inputs[number - 1])
            cost = self._memo[key] = self._measure(key, graph)
        return cost

    def stage_extra(self, number: int, choice: StageChoice) -> dict[str, float]:
        """The features of stage `number` with `choice` (measured on first use)."""
        self.stage(number, choice)
        return self.extra[(number, choice)]

    @property
    def measured(self) -> int:
        """How many distinct stage choices have been measured so far."""
        return len(self._memo)

    def total(self, choices: Choices) -> PartCost:
        """The whole candidate, part by part (the scalar path)."""
        cost = self.stem
        for number, choice in enumerate(choices, start=1):
            cost = cost.plus(self.stage(number, choice))
        return cost.plus(self.head)

    def total_extra(self, choices: Choices) -> dict[str, float]:
        """The whole candidate's features, summed part by part (the scalar path)."""
        parts = [self.extra["stem"], self.extra["head"]]
        parts += [self.stage_extra(n, c) for n, c in enumerate(choices, start=1)]
        return {name: sum(p[name] for p in parts) for name in self.features}


def _dtype(spec: MetricSpec) -> type[np.int64] | type[np.float64]:
    return np.int64 if spec.integer else np.float64


@dataclass(frozen=True)
class Metrics:
    """Per-candidate arrays: `index` into the space, then one array per `METRICS` entry (int64
    for counts, float64 for ratios), with the meaning and units of `PartCost`'s fields."""

    index: IntArray
    params: IntArray
    macs: IntArray
    cio: IntArray
    act_bytes: IntArray
    min_moc: FloatArray
    #: Per-part features beyond `METRICS` (`PartFeature`), summed, float64, by name.
    extra: Mapping[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows: npt.NDArray[np.bool_] | IntArray) -> Metrics:
        """The rows selected by a boolean mask or an index array."""
        columns: Columns = {n: self.metric(n)[rows] for n in METRIC_NAMES}
        extra = {n: v[rows] for n, v in self.extra.items()}
        return Metrics(self.index[rows], **columns, extra=extra)

    def metric(self, name: str) -> IntArray | FloatArray:
        """One metric array by name (any of `METRIC_NAMES`, or a feature of `extra`)."""
        if name in self.extra:
            return self.extra[name]
        value: IntArray | FloatArray = getattr(self, name)
        return value

    @classmethod
    def concat(cls, parts: Sequence[Metrics]) -> Metrics:
        columns: Columns = {n: np.concatenate([p.metric(n) for p in parts]) for n in METRIC_NAMES}
        names = parts[-1].extra if parts else {}
        extra = {
            n: np.concatenate([p.extra.get(n, np.zeros(len(p))) for p in parts]) for n in names
        }
        return Metrics(np.concatenate([p.index for p in parts]), **columns, extra=extra)

    @classmethod
    def empty(cls) -> Metrics:
        columns: Columns = {s.name: np.zeros(0, dtype=_dtype(s)) for s in METRICS}
        return Metrics(np.zeros(0, dtype=np.int64), **columns)


check_fields(Metrics, "index", "extra")


@dataclass(frozen=True)
class _GroupTables:
    """One group's base (stem and head) and, per stage, each metric's value per option."""

    group: Group
    base: PartCost
    stages: tuple[Columns, ...]
    base_extra: dict[str, float]
    stage_extra: tuple[dict[str, FloatArray], ...]


class GridEvaluator:
    """Metrics of any range of candidate indices, by gathering per-stage tables with numpy."""

    def __init__(self, space: SearchSpace, costs: PartCosts) -> None:
        self.space = space
        self.costs = costs
        base = replace(costs.stem.plus(costs.head), out_shape=())
        self._groups = tuple(self._tables(group, base) for group in space.groups)

    def _tables(self, group: Group, base: PartCost) -> _GroupTables:
        stages: list[Columns] = []
        extras: list[dict[str, FloatArray]] = []
        for number, options in enumerate(group.options, start=1):
            parts = [self.costs.stage(number, c) for c in options]
            stages.append(
                {s.name: np.array([p.value(s.name) for p in parts], _dtype(s)) for s in METRICS}
            )
            found = [self.costs.stage_extra(number, c) for c in options]
            extras.append({n: np.array([f[n] for f in found]) for n in self.costs.features})
        c = self.costs
        base_extra = {n: c.extra["stem"][n] + c.extra["head"][n] for n in c.features}
        return _GroupTables(group, base, tuple(stages), base_extra, tuple(extras))

    def chunks(self, size: int) -> Iterator[tuple[int, int]]:
        """[start, stop) ranges of at most `size` candidates, none crossing a group boundary."""
        for g in self._groups:
            start, end = g.group.offset, g.group.offset + g.group.size
            for lo in range(start, end, size):
                yield lo, min(lo + size, end)

    def evaluate(self, start: int, stop: int) -> Metrics:
        """Metrics of candidates start..stop-1, which must lie in one group."""
        g = next(t for t in reversed(self._groups) if t.group.offset <= start)
        if stop > g.group.offset + g.group.size:
            raise ValueError(f"range {start}..{stop} crosses a group boundary")
        index = np.arange(start, stop, dtype=np.int64)
        rest = index - g.group.offset
        columns: Columns = {
            s.name: np.full(len(index), g.base.value(s.name), _dtype(s)) for s in METRICS
        }
        extra = {n: np.full(len(index), v) for n, v in g.base_extra.items()}
        tables = zip(g.stages, g.stage_extra, g.group.radices, strict=True)
        for table, table_extra, radix in reversed(list(tables)):
            rest, digit = np.divmod(rest, radix)
            for s in METRICS:
                column, part = columns[s.name], table[s.name][digit]
                if s.combine == "sum":
                    column += part
                else:
                    np.minimum(column, part, out=column)
            for n, values in table_extra.items():
                extra[n] += values[digit]
        return Metrics(index, **columns, extra=extra)

    def at(self, indices: Sequence[int]) -> Metrics:
        """Metrics of individual candidates (each evaluated through the same gathers)."""
        if not indices:
            return Metrics.empty()
        return Metrics.concat([self.evaluate(i, i + 1) for i in indices])
