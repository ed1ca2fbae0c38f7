"""The sweep: evaluate the whole space chunk by chunk, keep what meets the budgets, rank it.

Memory stays bounded whatever the space's size: a chunk's metric arrays are dropped once the
rankers have kept their best (the candidates of Pareto rank <= `keep`, or the `keep` best by an
objective), so only those and one chunk are ever held. Beside the ranking the sweep keeps the
whole Pareto front (`Front`: every rank-1 candidate of CIO against capacity, whatever the
ranking), which is bounded by the front's size.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from hardnet_analysis.errors import UsageError
from hardnet_analysis.graph.ir import Shape
from hardnet_analysis.pareto import nondominated_ranks, strictly_dominated
from hardnet_analysis.search.evaluate import GridEvaluator, Metrics, PartCosts, PartFeature
from hardnet_analysis.search.objectives import LATENCY, Objective
from hardnet_analysis.search.space import Choices, SearchSpace
from hardnet_analysis.search.stagewise import Constraints, count_feasible, exact_front
from hardnet_analysis.search_metrics import (
    METRICS,
    TABLE_METRICS,
    MetricSpec,
    check_fields,
    metric,
)
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.units import format_count

CHUNK = 1 << 18
#: Above this many candidates a Pareto search of a template whose stages are independent builds
#: its front stage by stage (`search.stagewise`) instead of visiting every candidate (the sweep
#: runs about 7 M a second here: 50 M take some 7 s; 10^9 take 138 s, the stage-wise front 0.3 s).
SWEEP_LIMIT = 50_000_000
#: The seed of the space sample (`sweep`'s `sample`): the same command draws the same sample.
SAMPLE_SEED = 0
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Budgets:
    """A search's bounds, the one budget type: upper bounds on MACs, params and CIO (counts at
    the search's input and batch), a lower bound on the minimum layer MoC, and an upper bound on
    the predicted latency in seconds (`latency_s`, the per-part feature `LATENCY` summed per
    candidate; needs a device model); None means unconstrained. Which way a metric's budget
    bounds follows from its `hardnet_analysis.search_metrics` spec; the field order is the order
    used to pick "the smallest candidate" and to list the budgets. E.g. ``hda search
    --budget-macs 4.5G --budget-latency 12ms`` is ``Budgets(macs=4_500_000_000,
    latency_s=0.012)``, described as ``macs <= 4.5G, predicted latency <= 12 ms``."""

    macs: int | None = None
    params: int | None = None
    cio: int | None = None
    min_moc: float | None = None
    latency_s: float | None = None

    def given(self) -> dict[str, float]:
        """Every bound given, by metric or feature name, in field order."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def upper(self) -> dict[str, float]:
        """The upper bounds given (every one but the `min_moc` floor), in field order."""
        return {n: v for n, v in self.given().items() if not is_floor(n)}

    def on_metrics(self) -> dict[str, float]:
        """The bounds on `METRICS` entries: ``front.json``'s ``budgets``."""
        return {n: v for n, v in self.given().items() if n != LATENCY}

    def info(self) -> dict[str, float]:
        """What ``front.json``'s ``objective_info`` records of the latency bound
        (``{"budget_latency_s": 0.012}``, else empty): it has been kept there since before
        this type held it, so the front ids and files of latency searches stay as they were."""
        return {} if self.latency_s is None else {"budget_latency_s": self.latency_s}

    def mask(self, m: Metrics) -> npt.NDArray[np.bool_]:
        """True where a candidate meets every budget."""
        ok = np.ones(len(m), dtype=np.bool_)
        for name, limit in self.given().items():
            values = m.metric(name)
            ok &= values >= limit if is_floor(name) else values <= limit
        return ok

    def describe(self) -> str:
        return ", ".join(bound_text(n, v) for n, v in self.given().items()) or "no budgets"


def is_floor(name: str) -> bool:
    """True when a budget on `name` (a `Budgets` field) is a lower bound."""
    return name != LATENCY and metric(name).budget_is_floor


def bound_text(name: str, value: float) -> str:
    """One budget as the summary shows it: ``macs <= 4.5G``, ``min MoC >= 19``, ``predicted
    latency <= 12 ms`` (`LATENCY` 0.012 s)."""
    if name == LATENCY:
        return f"predicted latency <= {value * 1e3:g} ms"
    if metric(name).budget_is_floor:
        return f"{metric(name).label} >= {value:g}"
    return f"{name} <= {format_count(value)}"


for _budget in fields(Budgets):  # every budget bounds a declared metric or the latency feature
    if _budget.name != LATENCY:
        metric(_budget.name)


@dataclass(frozen=True)
class Candidate:
    """One evaluated candidate: its place in the space, its choices, its metrics (one field per
    `METRICS` entry, as in `PartCost`), its rank, its objective score (None under Pareto) and
    its per-part features summed (`Metrics.extra`: ``{"latency_s": 0.0123}`` under a device
    model, else empty)."""

    index: int | None
    choices: Choices
    params: int
    macs: int
    cio: int
    act_bytes: int
    min_moc: float
    rank: int = 0
    score: float | None = None
    features: dict[str, float] = field(default_factory=dict)
    #: The input (height, width) it was measured at, where the search tried several; else None.
    input: tuple[int, int] | None = None

    def values(self) -> dict[str, Any]:
        """The metrics by name, in `METRICS` order."""
        return {s.name: getattr(self, s.name) for s in METRICS}


check_fields(Candidate, "index", "choices", "rank", "score", "features", "input")


class Ranker(Protocol):
    """Keeps the best candidates seen so far, in bounded memory."""

    name: str

    def update(self, m: Metrics) -> None: ...

    def best(self) -> tuple[Metrics, npt.NDArray[np.int64], npt.NDArray[np.float64] | None]:
        """The kept candidates best first, their ranks, and their scores (or None)."""
        ...


class ParetoRanker:
    """Non-dominated sorting of (CIO, lower is better) against capacity (`capacity`: macs or
    params, higher is better). Ties within a rank: more capacity, then less CIO, then the lower
    index first. Keeps every candidate of rank <= `keep` (exact ranks; see
    `hardnet_analysis.pareto`)."""

    def __init__(self, capacity: str, keep: int) -> None:
        self.name = f"pareto (CIO vs {capacity})"
        self.capacity = capacity
        self.keep = keep
        self._kept = Metrics.empty()
        self._ranks = np.zeros(0, dtype=np.int64)

    def update(self, m: Metrics) -> None:
        last = self._kept.take(self._ranks == self.keep)
        if len(last):  # what the kept rank-`keep` points dominate can never be kept
            worse = strictly_dominated(
                m.cio, -m.metric(self.capacity), last.cio, -last.metric(self.capacity)
            )
            m = m.take(~worse)
        pool = Metrics.concat([self._kept, m])
        ranks = nondominated_ranks(pool.cio, -pool.metric(self.capacity), max_rank=self.keep)
        self._kept = pool.take(ranks > 0)
        self._ranks = ranks[ranks > 0]

    def best(self) -> tuple[Metrics, npt.NDArray[np.int64], None]:
        k = self._kept
        order = np.lexsort((k.index, k.cio, -k.metric(self.capacity), self._ranks))
        return k.take(order), self._ranks[order], None

    @property
    def front_size(self) -> int:
        """Number of candidates on the Pareto front (rank 1)."""
        return int(np.count_nonzero(self._ranks == 1))

    def front(self) -> Metrics:
        """The kept candidates of rank 1 (the whole front of what was seen), by capacity
        ascending, then CIO, then index: the order of a staircase drawn left to right."""
        k = self._kept.take(self._ranks == 1)
        return k.take(np.lexsort((k.index, k.cio, k.metric(self.capacity))))


class ObjectiveRanker:
    """The `keep` best candidates by one objective; ties go to the lower index."""

    def __init__(self, objective: Objective, keep: int) -> None:
        self.name = objective.name
        self.objective = objective
        self.keep = keep
        self._kept = Metrics.empty()

    def update(self, m: Metrics) -> None:
        pool = Metrics.concat([self._kept, m])
        order = np.lexsort((pool.index, self.objective.cost(pool)))
        self._kept = pool.take(order[: self.keep])

    def best(self) -> tuple[Metrics, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        k = self._kept
        return k, np.arange(1, len(k) + 1, dtype=np.int64), self.objective.value(k)


@dataclass(frozen=True)
class Front:
    """The whole Pareto front of the candidates within the budgets: every candidate of rank 1
    of CIO (lower is better) against `capacity` (macs or params, higher is better), exact, equal
    points all included; `members` by capacity ascending, then CIO, then index. HarDNet-68's
    default space within 4.5 GMACs has 111 members from 1.28 G to 4.50 G MACs."""

    capacity: str
    members: tuple[Candidate, ...]

    def span(self) -> tuple[int, int]:
        """The smallest and largest capacity on the front: (1_284_429_648, 4_499_978_208) MACs
        for HarDNet-68's default space within 4.5 GMACs."""
        values = [int(getattr(c, self.capacity)) for c in self.members]
        return min(values), max(values)


@dataclass
class SearchResult:
    """What a sweep found. `candidates` are best first; `template` is the template's own
    candidate measured the same way; counts are at `input_shape`, the one NCHW image the sweep
    evaluated (``InputShape(((1, 3, 224, 224),))``: ``input_shape.hw`` is (224, 224))."""

    space: SearchSpace
    input_shape: InputShape
    dtype: str
    budgets: Budgets
    ranking: str
    size: int
    #: Candidates within the budgets; None where a stage-wise search could not count them
    #: (more than one summed budget, `search.stagewise.count_feasible`).
    feasible: int | None
    candidates: list[Candidate]
    template: Candidate
    seconds: float
    measured_stages: int
    front_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: A uniform random sample of the whole space (budgets or not) and whether each meets them.
    sample: list[tuple[Candidate, bool]] = field(default_factory=list)
    #: The whole Pareto front of CIO against capacity, whatever `ranking` is.
    front: Front | None = None
    #: Every input searched where there are several (`input_shape` the first: the template's
    #: row is measured there), each one NCHW image; empty for one.
    input_shapes: tuple[InputShape, ...] = ()


def _candidates(
    space: SearchSpace,
    m: Metrics,
    ranks: npt.NDArray[np.int64] | None = None,
    scores: npt.NDArray[np.float64] | None = None,
    shapes: Sequence[Shape] = (),
) -> list[Candidate]:
    """Rows of `m` as candidates; with several `shapes`, `m.index` is ``size index * space size
    + index in the space`` (`sized`) and each candidate says its input."""
    out = []
    for row in range(len(m)):
        which, index = divmod(int(m.index[row]), space.size)
        values = {s.name: _scalar(s, m.metric(s.name)[row]) for s in METRICS}
        rank = 0 if ranks is None else int(ranks[row])
        score = None if scores is None else float(scores[row])
        features = {n: float(v[row]) for n, v in m.extra.items()}
        choices = space.choices(index)
        size = (shapes[which][2], shapes[which][3]) if len(shapes) > 1 else None
        out.append(
            Candidate(
                index, choices, **values, rank=rank, score=score, features=features, input=size
            )
        )
    return out


def sized(m: Metrics, which: int, size: int) -> Metrics:
    """`m` measured at the `which`-th input shape of a search over several: each index moved
    to ``which * size + index`` (so the first size's candidates come first on ties)."""
    return m if which == 0 else replace(m, index=m.index + which * size)


def _scalar(spec: MetricSpec, value: Any) -> Any:
    """A numpy element as a Python int (counts) or float (ratios)."""
    return int(value) if spec.integer else float(value)


class _Closest:
    """For each budget, the candidate nearest to meeting it alone (smallest MACs, params, CIO or
    predicted latency, largest min MoC), for the message when nothing meets all the budgets."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self.best: dict[str, Metrics] = {}

    @staticmethod
    def _cost(m: Metrics, name: str) -> npt.NDArray[np.float64]:
        values = np.asarray(m.metric(name), dtype=np.float64)
        return -values if is_floor(name) else values

    def update(self, m: Metrics) -> None:
        for name in self.budgets.given():
            cost = self._cost(m, name)
            row = int(np.argmin(cost))
            current = self.best.get(name)
            if current is None or cost[row] < self._cost(current, name)[0]:
                self.best[name] = m.take(np.array([row]))

    def report(self) -> tuple[str, Metrics]:
        """The first budget that no candidate meets even alone, the latency bound looked at
        first (else the first budget on a metric: a latency bound met alone says nothing of
        why none fits), and the candidate nearest to it."""
        for name in sorted(self.best, key=lambda n: n != LATENCY):  # stable: then field order
            alone = replace(Budgets(), **{name: getattr(self.budgets, name)})
            if not alone.mask(self.best[name])[0]:
                return name, self.best[name]
        name = next(n for n in self.best if n != LATENCY)
        return name, self.best[name]


def _no_candidate(
    space: SearchSpace, budgets: Budgets, closest: _Closest, shapes: Sequence[Shape]
) -> UsageError:
    name, best = closest.report()
    total = space.size * len(shapes)
    if name == LATENCY:  # a feature: its lowest figure, not a row of metrics
        lowest, bound = float(best.metric(name)[0]), budgets.given()[name]
        return UsageError(
            f"no candidate of the {total:,} meets {name} <= {bound:g}; the lowest is {lowest:g}"
        )
    c = _candidates(space, best, shapes=shapes)[0]
    where = f" at {c.input[0]}x{c.input[1]}" if c.input else ""
    spec = metric(name)
    label = f"largest {spec.label}" if spec.budget_is_floor else f"smallest {name}"
    shown = ", ".join(f"{s.label} {s.text(getattr(c, s.name))}" for s in TABLE_METRICS)
    return UsageError(
        f"no candidate of the {total:,} meets the budgets ({budgets.describe()}); the "
        f"{label}{where} has {shown}"
    )


def template_candidate(space: SearchSpace, grid: GridEvaluator) -> Candidate:
    """The template's own candidate: through the grid when the space holds it, else summed
    part by part (the same measured parts either way)."""
    choices = space.template_choices()
    index = space.index_of(choices)
    if index is not None:
        return _candidates(space, grid.at([index]))[0]
    features = grid.costs.total_extra(choices)
    return Candidate(None, choices, **grid.costs.total(choices).values(), features=features)


def inputs_of(inputs: InputShape | Sequence[InputShape]) -> tuple[InputShape, ...]:
    """The inputs a search measures, as a tuple: one, or several (``--input 224,256,288``).
    ``inputs_of(InputShape.of_image(224))`` is ``(InputShape.of_image(224),)``."""
    return (inputs,) if isinstance(inputs, InputShape) else tuple(inputs)


def sweep(
    space: SearchSpace,
    inputs: InputShape | Sequence[InputShape],
    budgets: Budgets,
    ranker: Ranker,
    dtype: str = "fp32",
    chunk: int = CHUNK,
    progress: Progress | None = None,
    features: Mapping[str, PartFeature] | None = None,
    sample: int = 0,
    capacity: str | None = None,
) -> SearchResult:
    """Evaluate every candidate of `space` at `inputs`, one NCHW image (or at each of several:
    the input size is then a choice too, every candidate measured at each), keep those within
    `budgets` (a latency bound reads the `LATENCY` feature of `features`, per-part quantities
    summed per candidate) and rank them with `ranker`; also keep the whole Pareto front of CIO
    against `capacity` (default: the Pareto ranker's capacity, else macs) and evaluate a seeded
    uniform `sample` of the space (all of it when smaller) for plots. Raises UsageError when no
    candidate meets the budgets."""
    start = time.perf_counter()
    given = inputs_of(inputs)
    # The cost model's NCHW tuples: an input that is not one image is an InputShapeError here,
    # before any part is measured.
    shapes = tuple(each.image for each in given)
    total = space.size * len(shapes)
    keeper = front_ranker(ranker, capacity)
    if keeper is ranker and total > SWEEP_LIMIT:
        found = _stagewise(space, given, budgets, keeper, dtype, features, sample)
        if found is not None:
            found.seconds = time.perf_counter() - start
            if progress is not None:
                progress(total, total)
            return found
    if progress is not None:
        progress(0, total)
    grids = [GridEvaluator(space, PartCosts(space, shape, dtype, features)) for shape in shapes]
    closest = _Closest(budgets)
    feasible = done = 0
    for which, grid in enumerate(grids):
        for lo, hi in grid.chunks(chunk):
            m = sized(grid.evaluate(lo, hi), which, space.size)
            ok = budgets.mask(m)
            feasible += int(np.count_nonzero(ok))
            if feasible == 0:
                closest.update(m)
            within = m.take(ok)
            ranker.update(within)
            if keeper is not ranker:
                keeper.update(within)
            done += hi - lo
            if progress is not None:
                progress(done, total)
    if feasible == 0:
        raise _no_candidate(space, budgets, closest, shapes)
    kept, ranks, scores = ranker.best()
    return SearchResult(
        space=space,
        input_shape=given[0],
        dtype=dtype,
        budgets=budgets,
        ranking=ranker.name,
        size=total,
        feasible=feasible,
        candidates=_candidates(space, kept, ranks, scores, shapes),
        template=_measured_at(template_candidate(space, grids[0]), shapes),
        seconds=time.perf_counter() - start,
        measured_stages=sum(g.costs.measured for g in grids),
        front_size=getattr(ranker, "front_size", None),
        sample=_sample(space, grids, budgets, sample),
        front=_front(space, keeper, shapes),
        input_shapes=given if len(given) > 1 else (),
    )


def _stagewise(
    space: SearchSpace,
    given: Sequence[InputShape],
    budgets: Budgets,
    ranker: ParetoRanker,
    dtype: str,
    features: Mapping[str, PartFeature] | None,
    sample: int,
) -> SearchResult | None:
    """The search by `search.stagewise` (None when the template's stages are not independent):
    the front of each input shape built stage by stage, then the front of their union; the
    ranked candidates are its first `ranker.keep` members in the Pareto order (rank 1 only: a
    space this large has at least that many on its front, or the rows are fewer)."""
    shapes = [each.image for each in given]
    grids = [GridEvaluator(space, PartCosts(space, shape, dtype, features)) for shape in shapes]
    rules = Constraints.of(ranker.capacity, budgets)
    fronts = []
    for which, grid in enumerate(grids):
        found = exact_front(grid, rules)
        if found is None:
            return None
        fronts.append(sized(found, which, space.size))
    found = Metrics.concat(fronts)
    found = found.take(nondominated_ranks(found.cio, -found.metric(ranker.capacity), 1) == 1)
    found = found.take(np.lexsort((found.index, found.cio, -found.metric(ranker.capacity))))
    if not len(found):
        raise _nothing_fits(space.size * len(shapes), budgets)
    ranks, rows = np.ones(len(found), dtype=np.int64), min(ranker.keep, len(found))
    by_capacity = found.take(np.lexsort((found.index, found.cio, found.metric(ranker.capacity))))
    counts = [count_feasible(grid, rules) for grid in grids]
    return SearchResult(
        space=space,
        input_shape=given[0],
        dtype=dtype,
        budgets=budgets,
        ranking=ranker.name,
        size=space.size * len(shapes),
        feasible=None if None in counts else sum(c for c in counts if c is not None),
        candidates=_candidates(space, found.take(np.arange(rows)), ranks[:rows], shapes=shapes),
        template=_measured_at(template_candidate(space, grids[0]), shapes),
        seconds=0.0,
        measured_stages=sum(g.costs.measured for g in grids),
        front_size=len(found),
        sample=_sample(space, grids, budgets, sample),
        front=Front(ranker.capacity, tuple(_candidates(space, by_capacity, ranks, shapes=shapes))),
        input_shapes=tuple(given) if len(given) > 1 else (),
    )


def _measured_at(candidate: Candidate, shapes: Sequence[Shape]) -> Candidate:
    """`candidate` (the template's row, measured at the first shape) saying its input where
    a search tried several."""
    return replace(candidate, input=(shapes[0][2], shapes[0][3])) if len(shapes) > 1 else candidate


def _nothing_fits(total: int, budgets: Budgets) -> UsageError:
    return UsageError(
        f"no candidate of the {total:,} meets the budgets ({budgets.describe()}); loosen "
        "them or widen the space"
    )


def _front(space: SearchSpace, keeper: ParetoRanker, shapes: Sequence[Shape]) -> Front:
    """The whole front `keeper` holds, each member of rank 1."""
    members = keeper.front()
    ranks = np.ones(len(members), dtype=np.int64)
    return Front(keeper.capacity, tuple(_candidates(space, members, ranks, shapes=shapes)))


def front_ranker(ranker: Ranker, capacity: str | None = None) -> ParetoRanker:
    """What keeps the whole front: `ranker` itself when it ranks Pareto against `capacity`
    (its rank 1 is the front), else a second Pareto ranker keeping rank 1 only (bounded by
    the front's size) beside an objective's."""
    if isinstance(ranker, ParetoRanker) and capacity in (None, ranker.capacity):
        return ranker
    return ParetoRanker(capacity or "macs", keep=1)


def _sample(
    space: SearchSpace,
    grids: Sequence[GridEvaluator],
    budgets: Budgets,
    n: int,
    seed: int = SAMPLE_SEED,
) -> list[tuple[Candidate, bool]]:
    """`n` candidates drawn without replacement (seeded: the same every run) from the space at
    each input shape of `grids`, in order, each with whether it meets `budgets`."""
    if n <= 0:
        return []
    total = space.size * len(grids)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(total, size=min(n, total), replace=False))
    which, index = np.divmod(picked, space.size)
    pieces = [
        sized(grid.at([int(i) for i in index[which == w]]), w, space.size)
        for w, grid in enumerate(grids)
    ]
    m = Metrics.concat([p for p in pieces if len(p)])  # an empty piece has no features
    shapes = [g.costs.input_shape for g in grids]
    candidates = _candidates(space, m, shapes=shapes)
    return list(zip(candidates, (bool(ok) for ok in budgets.mask(m)), strict=True))
