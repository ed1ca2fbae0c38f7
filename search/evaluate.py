"""Candidates' params, MACs, CIO, activation bytes and minimum MoC, from the metric code itself.

There is no second formula here. Every number comes from ``measure_graph`` (the cost handlers
``analyze()`` uses) applied to the analytic builder's graph of a network *part* (the template
family's ``search_parts``: a stem, a stage, a decoder stage, a head), fed by input nodes of the
shapes the part can meet. A part is measured once per (block choice, input shapes) pair
(`PartCosts`, memoised); a candidate's totals combine its parts' totals as each metric of
`hardnet_analysis.search_metrics.METRICS` says (counts summed, the min MoC the minimum), which
`GridEvaluator` forms with numpy gathers over whole index ranges at once.

Input shapes: a HarDNet stage follows a fixed-width transition, so it meets one shape and is
measured once per block choice; where the transition widths are searched (``--widths``), once
per (choice, width of the transition before it). An FC-HarDNet decoder stage reads the previous
decoder block's output and an encoder block's skip, whose widths depend on those blocks: it is
measured once per (choice, previous width, skip width) that the space can produce, and the grid
picks the right entry per candidate from the other stages' digits, so the sum stays exact.

HarDNet-68 at 224x224 (batch 1): stem + 5 stages + head sum to 17,565,348 params,
4,246,114,304 MACs and 11,468,940 CIO, as ``analyze("hardnet68")`` gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

from hardnet_analysis.errors import HdaError, UsageError
from hardnet_analysis.families.parts import NETWORK_INPUT, Part, Source
from hardnet_analysis.families.registry import family_of
from hardnet_analysis.graph.ir import Shape
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.search.space import Choices, Group, SearchSpace, StageChoice
from hardnet_analysis.search_metrics import METRIC_NAMES, METRICS, MetricSpec, check_fields

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: One array per metric, by name: int64 for counts, float64 for ratios (typed loosely, as the
#: dataclass fields that receive them by keyword name their own dtypes).
Columns = dict[str, Any]
#: A per-part quantity beyond `METRICS` that sums over a candidate's parts (seconds of predicted
#: latency from a device model): a function of the part's analysis and its place in the network
#: (``first`` for the part fed by the network input, ``last`` for the final part, else
#: ``middle``: its input handed over by the part before).
PartFeature = Callable[[Analysis, str], float]


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
        return cls.of_analysis(measure_graph(graph, dtype))

    @classmethod
    def of_analysis(cls, analysis: Analysis) -> PartCost:
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
    """Measures each part of the template once per (block choice, input shapes) it meets, with
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
        self.input_shape = input_shape
        self.features = dict(features or {})
        self.extra: dict[Any, dict[str, float]] = {}
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
            cost = self._memo[key] = self._measure(key, part.build(defn, in_shapes), index)
        return cost

    def _measure(self, key: Any, graph: nx.DiGraph, index: int) -> PartCost:
        """The part's metrics; its features are kept under `key` in `extra`."""
        analysis = measure_graph(graph, self.dtype)
        last = len(self.parts) - 1
        place = "first" if index == 0 else "last" if index == last else "middle"
        self.extra[key] = {name: f(analysis, place) for name, f in self.features.items()}
        return PartCost.of_analysis(analysis)

    def part_extra(
        self, index: int, choice: StageChoice | None, in_shapes: tuple[Shape, ...]
    ) -> dict[str, float]:
        """The features of `part(index, choice, in_shapes)` (measured on first use)."""
        self.part(index, choice, in_shapes)
        return self.extra[(index, choice, in_shapes)]

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

    def total_extra(self, choices: Choices) -> dict[str, float]:
        """The whole candidate's features, summed part by part (the scalar path)."""
        outputs: list[tuple[Shape, ...]] = []
        sums = dict.fromkeys(self.features, 0.0)
        for index, part in enumerate(self.parts):
            shapes = tuple(self.shape_of(s, outputs) for s in part.inputs)
            choice = None if part.stage is None else choices[part.stage]
            outputs.append(self.part(index, choice, shapes).out_shapes)
            for name, value in self.part_extra(index, choice, shapes).items():
                sums[name] += value
        return sums


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
class PartTable:
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
    extra: dict[str, FloatArray]


@dataclass(frozen=True)
class GroupTables:
    """One group's base (the parts measured once: stems, heads) and its other part tables."""

    group: Group
    base: dict[str, Any]
    parts: tuple[PartTable, ...]
    base_extra: dict[str, float]

    def out_index(self, part: int, output: int) -> IntArray:
        """Part `part`'s combo -> index of its output `output`'s shape."""
        return next(t.out_index[output] for t in self.parts if t.part == part)


#: The largest count a candidate's int64 metrics hold.
INT64_MAX = int(np.iinfo(np.int64).max)


def _too_large() -> UsageError:
    return UsageError(
        "the space's largest candidates count more than 64-bit integers hold; lower the largest "
        "k, m or n_layers, or --input or --batch"
    )


def _check_fits(tables: GroupTables) -> None:
    """A UsageError when a summed integer metric of some candidate could pass `INT64_MAX`
    (numpy's sums would wrap around silently): the bound is every part's largest entry."""
    for spec in METRICS:
        if spec.integer and spec.combine == "sum":
            most = int(tables.base[spec.name])
            most += sum(int(t.columns[spec.name].max()) for t in tables.parts)
            if most > INT64_MAX:
                raise _too_large()


class GridEvaluator:
    """Metrics of any range of candidate indices, by gathering per-part tables with numpy."""

    def __init__(self, space: SearchSpace, costs: PartCosts) -> None:
        self.space = space
        self.costs = costs
        try:
            self._groups = tuple(self._tables(group) for group in space.groups)
        except OverflowError:  # a count past int64, or a channel count past a float's range
            raise _too_large() from None
        for tables in self._groups:
            _check_fits(tables)

    def _tables(self, group: Group) -> GroupTables:
        shapes: dict[Source, list[Shape]] = {NETWORK_INPUT: [self.costs.input_shape]}
        base = {s.name: s.identity for s in METRICS}
        base_extra = dict.fromkeys(self.costs.features, 0.0)
        tables: list[PartTable] = []
        for index, part in enumerate(self.costs.parts):
            table = self._part_table(group, index, part, shapes)
            if table.stage is None and not table.varying:  # one entry: part of the base
                base = {
                    s.name: _combine(s, base[s.name], table.columns[s.name][0]) for s in METRICS
                }
                base_extra = {n: v + float(table.extra[n][0]) for n, v in base_extra.items()}
            else:
                tables.append(table)
        return GroupTables(group, base, tuple(tables), base_extra)

    def _part_table(
        self, group: Group, index: int, part: Part, shapes: dict[Source, list[Shape]]
    ) -> PartTable:
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
        found = [self.costs.part_extra(index, o, ins) for o in options for ins in combos]
        extra = {n: np.array([f[n] for f in found], np.float64) for n in self.costs.features}
        out_index = []
        for k in range(len(costs[0].out_shapes)):
            distinct = list(dict.fromkeys(c.out_shapes[k] for c in costs))
            shapes[(index, k)] = distinct
            positions = [distinct.index(c.out_shapes[k]) for c in costs]
            out_index.append(np.array(positions, dtype=np.int64))
        return PartTable(index, part.stage, tuple(varying), span, columns, tuple(out_index), extra)

    @property
    def groups_tables(self) -> tuple[GroupTables, ...]:
        """Each group's per-part tables (what `search.stagewise` splits)."""
        return self._groups

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
        extra = {n: np.full(len(index), v) for n, v in g.base_extra.items()}
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
            for n, values in table.extra.items():
                extra[n] += values[combo]
        return Metrics(index, **columns, extra=extra)

    def at(self, indices: Sequence[int]) -> Metrics:
        """Metrics of individual candidates (each evaluated through the same gathers)."""
        if not indices:
            return Metrics.empty()
        return Metrics.concat([self.evaluate(i, i + 1) for i in indices])
