"""Candidates' params, MACs, CIO, activation bytes and minimum MoC, from the metric code itself.

There is no second formula here. Every number comes from ``measure_graph`` (the cost handlers
``analyze()`` uses) applied to the analytic builder's graph of a network *part* (the template
family's ``search_parts``: a stem, a stage, a decoder stage, a head), fed by input nodes of the
shapes the part can meet. A part is measured once per (block choice, input shapes) pair
(`PartCosts`, memoised); a candidate's totals combine its parts' totals as each metric of
`hardnet_analysis.search_metrics.METRICS` says (counts summed, the min MoC the minimum), which
`GridEvaluator` forms with numpy gathers over whole index ranges at once.

Input shapes: a HarDNet stage follows a fixed-width transition, so it meets one shape and is
measured once per block choice. An FC-HarDNet decoder stage reads the previous decoder block's
output and an encoder block's skip, whose widths depend on those blocks: it is measured once
per (choice, previous width, skip width) that the space can produce, and the grid picks the
right entry per candidate from the other stages' digits, so the sum stays exact.

HarDNet-68 at 224x224 (batch 1): stem + 5 stages + head sum to 17,565,348 params,
4,246,114,304 MACs and 11,468,940 CIO, as ``analyze("hardnet68")`` gives.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

from hardnet_analysis.errors import HdaError, UsageError
from hardnet_analysis.families.parts import NETWORK_INPUT, Part, Source
from hardnet_analysis.families.registry import family_of
from hardnet_analysis.graph.ir import Shape
from hardnet_analysis.metrics.analysis import measure_graph
from hardnet_analysis.search_metrics import METRIC_NAMES, METRICS, MetricSpec, check_fields
from search.space import Choices, Group, SearchSpace, StageChoice

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: One array per metric, by name: int64 for counts, float64 for ratios (typed loosely, as the
#: dataclass fields that receive them by keyword name their own dtypes).
Columns = dict[str, Any]


@dataclass(frozen=True)
class PartCost:
    """Totals of one network part (one field per `METRICS` entry): counts at the search's batch,
    `act_bytes` at its dtype, `min_moc` the smallest MoC of the part's convolutions (inf without
    convolutions); `out_shapes` are the part's outputs (NCHW), in output order."""

    params: int
    macs: int
    cio: int
    act_bytes: int
    min_moc: float
    out_shapes: tuple[Shape, ...]

    @classmethod
    def of(cls, graph: nx.DiGraph, dtype: str) -> PartCost:
        analysis = measure_graph(graph, dtype)
        if analysis.unhandled:
            ops = ", ".join(sorted({u.op for u in analysis.unhandled}))
            raise HdaError(f"the search cannot count ops without a cost handler: {ops}")
        t = analysis.totals
        values = {s.name: _or_identity(getattr(t, s.name), s) for s in METRICS}
        outputs = tuple(r.out_shape for r in analysis.layers if r.op == "output")
        return cls(**values, out_shapes=outputs)

    def plus(self, other: PartCost) -> PartCost:
        """Totals of both parts (the shapes are the later part's)."""
        values = {
            s.name: _combine(s, getattr(self, s.name), getattr(other, s.name)) for s in METRICS
        }
        return PartCost(**values, out_shapes=other.out_shapes)

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


check_fields(PartCost, "out_shapes")


class PartCosts:
    """Measures each part of the template once per (block choice, input shapes) it meets."""

    def __init__(self, space: SearchSpace, input_shape: Shape, dtype: str = "fp32") -> None:
        self.space = space
        self.dtype = dtype
        self.input_shape = input_shape
        parts_fn = family_of(space.template).search_parts
        if parts_fn is None:
            raise UsageError(f"the {space.template.family} family cannot be searched")
        self.parts: tuple[Part, ...] = parts_fn(space.template, input_shape)
        self._memo: dict[tuple[int, StageChoice | None, tuple[Shape, ...]], PartCost] = {}

    def shape_of(self, source: Source, outputs: Sequence[tuple[Shape, ...]]) -> Shape:
        """The shape `source` gives, `outputs` being each earlier part's output shapes."""
        return self.input_shape if source == NETWORK_INPUT else outputs[source[0]][source[1]]

    def part(
        self, index: int, choice: StageChoice | None, in_shapes: tuple[Shape, ...]
    ) -> PartCost:
        """Part `index` with its block set to `choice` (None: a part without a block), fed by
        inputs of `in_shapes`; memoised."""
        key = (index, choice, in_shapes)
        cost = self._memo.get(key)
        if cost is None:
            part = self.parts[index]
            defn = self.space.template
            if choice is not None and part.stage is not None:
                choices = list(self.space.template_choices())
                choices[part.stage] = choice
                defn = self.space.definition(tuple(choices))
            cost = self._memo[key] = PartCost.of(part.build(defn, in_shapes), self.dtype)
        return cost

    @property
    def measured(self) -> int:
        """How many distinct (block choice, input shapes) fragments have been measured."""
        return sum(key[1] is not None for key in self._memo)

    def total(self, choices: Choices) -> PartCost:
        """The whole candidate, part by part (the scalar path)."""
        outputs: list[tuple[Shape, ...]] = []
        total: PartCost | None = None
        for index, part in enumerate(self.parts):
            shapes = tuple(self.shape_of(s, outputs) for s in part.inputs)
            choice = None if part.stage is None else choices[part.stage]
            cost = self.part(index, choice, shapes)
            outputs.append(cost.out_shapes)
            total = cost if total is None else total.plus(cost)
        assert total is not None
        return total


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

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows: npt.NDArray[np.bool_] | IntArray) -> Metrics:
        """The rows selected by a boolean mask or an index array."""
        columns: Columns = {n: self.metric(n)[rows] for n in METRIC_NAMES}
        return Metrics(self.index[rows], **columns)

    def metric(self, name: str) -> IntArray | FloatArray:
        """One metric array by name (any of `METRIC_NAMES`)."""
        value: IntArray | FloatArray = getattr(self, name)
        return value

    @classmethod
    def concat(cls, parts: Sequence[Metrics]) -> Metrics:
        columns: Columns = {n: np.concatenate([p.metric(n) for p in parts]) for n in METRIC_NAMES}
        return Metrics(np.concatenate([p.index for p in parts]), **columns)

    @classmethod
    def empty(cls) -> Metrics:
        columns: Columns = {s.name: np.zeros(0, dtype=_dtype(s)) for s in METRICS}
        return Metrics(np.zeros(0, dtype=np.int64), **columns)


check_fields(Metrics, "index")


@dataclass(frozen=True)
class _PartTable:
    """One part's entries in one group, one per *combo*: its option (the stage's digit; a
    part without a block has one) times each varying input's shape index, the option the
    most significant. `varying` lists each input whose shape varies as (producing part,
    output index, stride in the combo); `out_index[k]` maps a combo to the index of output
    k's shape among that output's shapes; `columns` holds each metric per combo."""

    part: int
    stage: int | None
    varying: tuple[tuple[int, int, int], ...]
    span: int
    columns: Columns
    out_index: tuple[IntArray, ...]


@dataclass(frozen=True)
class _GroupTables:
    """One group's base (the parts measured once: stems, heads) and its other part tables."""

    group: Group
    base: dict[str, Any]
    parts: tuple[_PartTable, ...]

    def out_index(self, part: int, output: int) -> IntArray:
        """Part `part`'s combo -> index of its output `output`'s shape."""
        return next(t.out_index[output] for t in self.parts if t.part == part)


class GridEvaluator:
    """Metrics of any range of candidate indices, by gathering per-part tables with numpy."""

    def __init__(self, space: SearchSpace, costs: PartCosts) -> None:
        self.space = space
        self.costs = costs
        self._groups = tuple(self._tables(group) for group in space.groups)

    def _tables(self, group: Group) -> _GroupTables:
        shapes: dict[Source, list[Shape]] = {NETWORK_INPUT: [self.costs.input_shape]}
        base = {s.name: s.identity for s in METRICS}
        tables: list[_PartTable] = []
        for index, part in enumerate(self.costs.parts):
            table = self._part_table(group, index, part, shapes)
            if table.stage is None and not table.varying:  # one entry: part of the base
                base = {
                    s.name: _combine(s, base[s.name], table.columns[s.name][0]) for s in METRICS
                }
            else:
                tables.append(table)
        return _GroupTables(group, base, tuple(tables))

    def _part_table(
        self, group: Group, index: int, part: Part, shapes: dict[Source, list[Shape]]
    ) -> _PartTable:
        """Measure `part` for every option and input shapes, and record its outputs' shapes."""
        options = (None,) if part.stage is None else group.options[part.stage]
        inputs = [shapes[s] for s in part.inputs]
        span, varying = 1, []
        for source, seen in reversed(list(zip(part.inputs, inputs, strict=True))):
            if len(seen) > 1:
                varying.append((source[0], source[1], span))
                span *= len(seen)
        combos = list(product(*inputs))
        costs = [self.costs.part(index, o, ins) for o in options for ins in combos]
        columns = {s.name: np.array([c.value(s.name) for c in costs], _dtype(s)) for s in METRICS}
        out_index = []
        for k in range(len(costs[0].out_shapes)):
            distinct = list(dict.fromkeys(c.out_shapes[k] for c in costs))
            shapes[(index, k)] = distinct
            positions = [distinct.index(c.out_shapes[k]) for c in costs]
            out_index.append(np.array(positions, dtype=np.int64))
        return _PartTable(index, part.stage, tuple(varying), span, columns, tuple(out_index))

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
        digits: list[IntArray] = []
        for radix in reversed(g.group.radices):
            rest, digit = np.divmod(rest, radix)
            digits.append(digit)
        digits.reverse()
        columns: Columns = {s.name: np.full(len(index), g.base[s.name], _dtype(s)) for s in METRICS}
        combos: dict[int, Any] = {}
        for table in g.parts:
            combo: Any = 0 if table.stage is None else digits[table.stage]
            if table.varying:
                combo = combo * table.span
                for part, output, stride in table.varying:
                    combo = combo + g.out_index(part, output)[combos[part]] * stride
            combos[table.part] = combo
            for s in METRICS:
                column, values = columns[s.name], table.columns[s.name][combo]
                if s.combine == "sum":
                    column += values
                else:
                    np.minimum(column, values, out=column)
        return Metrics(index, **columns)

    def at(self, indices: Sequence[int]) -> Metrics:
        """Metrics of individual candidates (each evaluated through the same gathers)."""
        if not indices:
            return Metrics.empty()
        return Metrics.concat([self.evaluate(i, i + 1) for i in indices])
