"""The exact Pareto front of CIO against capacity, built from the two halves of the network.

A HarDNet's stages are separated by fixed-width transitions, so a candidate's metrics are the
template's fixed parts (stem, head: the *base*) plus one fragment per stage, each depending only
on that stage's choice (`search.evaluate`). Split the stages into a left half L and a right half
R; every candidate is a pair (a, z) with a in L (the sums over the left stages) and z in R, and
its metrics are base + a + z. The sweep visits all |L| x |R| pairs; this module visits the few
that can be on the front (CIO lower is better, capacity, MACs or params, higher is better):

1. **Dominated fragments.** If a' in L has the same capacity as a, less CIO and no more of any
   other budgeted quantity, a' + z beats a + z for every z: a is dropped.
2. **Windows.** If a' has more capacity and no more CIO (and no more of any other budgeted
   quantity), a' + z beats a + z whenever a' + z still fits the capacity budget B. So a + z can
   only be on the front when cap(z) > B - cap(a'): with d(a) the capacity of such an a' (the
   nearest found), a pairs only with z in (B - d(a), B - cap(a)]. The same holds for z. Without a
   capacity budget, the window is empty unless a is on L's own front.
3. **Bounds.** R is sorted by capacity and cut into blocks; a block's least CIO and most
   capacity bound every pair (a, z in the block). A block whose bound is strictly dominated by a
   candidate already found (the running front) holds no front member and is skipped.

The pairs left are summed exactly (the same integers the sweep adds) and their front kept.
Every rule drops a pair only when a real, feasible candidate strictly dominates it, so the
result is the rank-1 set of the sweep, ties included. Budgets: the capacity budget by windows,
CIO and the other sums (params or MACs, act_bytes, per-part features such as predicted latency)
by "no more than" in rules 1-2 and a check per pair, the minimum-MoC floor per fragment (the
minimum over fragments meets it exactly when each fragment does).

Measured here (2 cores, `results/front-bench`): the default HarDNet-68 space (3,037,500) in
0.03 s against the sweep's 0.56 s, 111 front members either way; 992,436,543 candidates (3 k, 3
m, 7 n_layers per stage) in 0.38 s against 138 s (1,220 members, the same); 1.65e12 in 57-109 s
at 1.25 GiB (177,824 members). Memory follows the halves, about the square root of the space.

**Varying widths.** Where a part's input width depends on other stages (a searched transition
width, ``--widths``; FC-HarDNet's decoder reading encoder widths), its table holds one entry per
(choice, input width). A left fragment then pairs only with right fragments built for the
widths it hands over: the halves are joined per *key*, those widths (for ``--widths`` the one
transition width at the cut), rules 1-2 applied within a key and rule 3 against everything
found. E.g. HarDNet-68's default space with 3 widths per stage has 3 keys. `exact_front`
returns None only for a template whose parts are not in stage order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from hardnet_analysis.pareto import nondominated_ranks, strictly_dominated
from hardnet_analysis.search.evaluate import GridEvaluator, GroupTables, Metrics, PartTable

if TYPE_CHECKING:  # sweep imports this module (when it builds a front stage by stage)
    from hardnet_analysis.search.sweep import Budgets

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Array = IntArray | FloatArray
#: "No dominator found": d(a) = NONE leaves a's window open below.
NONE = np.iinfo(np.int64).max
#: How many neighbours (in capacity order) are searched for a dominator in rules 1-2.
NEIGHBOURS = 32
#: Right-half candidates per block in rule 3.
BLOCK = 256
#: Left-half candidates per step of the join (bounds the memory of one step).
STEP = 2048
#: Relative margin within which two float sums (predicted seconds) may differ only by the
#: order of their terms: such comparisons are left to the grid's own totals.
SLACK = 1e-9
#: Pairs summed at once (bounds the memory of one batch).
PAIRS = 1 << 21


@dataclass(frozen=True)
class Constraints:
    """What a candidate must meet: upper bounds on summed quantities (`upper`, by metric or
    feature name, the capacity's own bound in `capacity_bound`) and a floor on the minimum MoC."""

    capacity: str
    capacity_bound: int | None
    upper: Mapping[str, float]
    moc_floor: float | None

    @classmethod
    def of(cls, capacity: str, budgets: Budgets) -> Constraints:
        """From a search's budgets: every upper bound (on metrics and on the latency feature)
        summed, the capacity's own apart, and the minimum-MoC floor."""
        upper = budgets.upper()
        bound = upper.pop(capacity, None)
        return cls(capacity, None if bound is None else math.floor(bound), upper, budgets.min_moc)


@dataclass(frozen=True)
class _Half:
    """Sums over one half's stages: `local` is the half's flat index (its first stage the most
    significant digit), `cap` and `cio` the objectives, `other` each further bounded sum."""

    local: IntArray
    cap: IntArray
    cio: IntArray
    other: dict[str, Array]

    def take(self, rows: npt.NDArray[np.bool_] | IntArray) -> _Half:
        return _Half(
            self.local[rows],
            self.cap[rows],
            self.cio[rows],
            {n: v[rows] for n, v in self.other.items()},
        )

    def __len__(self) -> int:
        return len(self.local)

    def sum(self, name: str) -> Array:
        """A bounded sum by name: CIO or one of `other`."""
        return self.cio if name == "cio" else self.other[name]


def separable(grid: GridEvaluator) -> bool:
    """True when the stages can be split: every part table holds one stage's block in stage
    order (or none, as a head fed by a varying width), so the left half's stages are the
    index's most significant digits. A part whose input width varies (a searched transition
    width, FC-HarDNet's decoder) is measured per width; the halves are then joined per *key*,
    the widths the right half reads from the left (`_pieces`)."""
    for g in grid.groups_tables:
        stages = [t.stage for t in g.parts if t.stage is not None]
        if stages != list(range(len(g.group.radices))):
            return False
        if any(t.stage is None and not t.varying for t in g.parts):
            return False
    return True


def exact_front(grid: GridEvaluator, rules: Constraints) -> Metrics | None:
    """The rank-1 candidates (CIO lower, capacity higher) among those meeting `rules`, in the
    sweep's Pareto order (capacity descending, then CIO, then index), or None when the template
    is not separable (`separable`). Empty when no candidate meets the rules."""
    if not separable(grid):
        return None
    found = Metrics.empty()
    for tables in grid.groups_tables:
        for piece in _pieces(tables, rules, grid):
            indices = _piece_front(piece, rules, found)
            if len(indices):
                found = _front_of(
                    Metrics.concat([found, grid.at([int(i) for i in indices])]), rules
                )
    order = np.lexsort((found.index, found.cio, -found.metric(rules.capacity)))
    return found.take(order)


def count_feasible(grid: GridEvaluator, rules: Constraints) -> int | None:
    """How many candidates meet `rules`, counted from the two halves without visiting the
    candidates: for each left fragment, the right fragments (of the same key) under what is left
    of the one bounded count (a binary search). Exact when at most one summed count is bounded
    (e.g. ``--budget-macs``), with or without a MoC floor; None for more, for a bound on a float
    feature, or for a template that is not separable. E.g. HarDNet-68's default space under
    4.5G MACs: 3,012,796 of 3,037,500."""
    if not separable(grid):
        return None
    names = [rules.capacity] * (rules.capacity_bound is not None) + list(rules.upper)
    if len(names) > 1 or any(n in t.base_extra for n in names for t in grid.groups_tables):
        return None
    total = 0
    for tables in grid.groups_tables:
        for piece in _pieces(tables, rules, grid, pruned=False):
            left, right = piece.left, piece.right
            if not names:
                total += len(left) * len(right)
                continue
            name = names[0]
            bound = rules.upper.get(name, rules.capacity_bound)
            assert bound is not None
            mine, theirs = (h.cap if name == rules.capacity else h.sum(name) for h in (left, right))
            room = math.floor(bound) - int(tables.base[name]) - mine
            total += int(np.searchsorted(np.sort(theirs), room, side="right").sum())
    return total


def _front_of(m: Metrics, rules: Constraints) -> Metrics:
    ranks = nondominated_ranks(m.cio, -m.metric(rules.capacity), max_rank=1)
    return m.take(ranks == 1)


def _options(table: PartTable) -> int:
    """How many options the part's stage has (1 for a part without a block)."""
    return int(table.columns["cio"].shape[0]) // table.span


@dataclass(frozen=True)
class _Piece:
    """One group's left and right fragments that pair with each other: those of one key (the
    shapes the right half reads from the left, e.g. the width of the transition between the
    halves), with the group's `context` and the right half's flat size (`size`)."""

    tables: GroupTables
    left: _Half
    right: _Half
    size: int
    context: _Context


def _pieces(
    tables: GroupTables, rules: Constraints, grid: GridEvaluator, pruned: bool = True
) -> Iterator[_Piece]:
    """The group's halves, per key (one key when no width varies across the cut); `pruned`:
    fragments past what the bounds leave are dropped as the halves are built (not when
    counting)."""
    if rules.moc_floor is not None and _base_value(tables, "min_moc") < rules.moc_floor:
        return
    parts, split = tables.parts, _split(tables.parts)
    left_parts = {t.part for t in parts[:split]}
    sources = sorted({(p, o) for t in parts[split:] for p, o, _ in t.varying if p in left_parts})
    size = math.prod(_options(t) for t in parts[split:])
    context = _context(tables, rules, size, grid)
    room_left = _rooms(parts, rules, context, 0, split) if pruned else []
    room_right = _rooms(parts, rules, context, split, len(parts)) if pruned else []
    carry = {p for p, _ in sources}
    left, combos = _half(parts[:split], rules, tables, room_left, carry=carry)
    if not sources:
        right, _ = _half(parts[split:], rules, tables, room_right)
        yield _Piece(tables, left, right, size, context)
        return
    keys = np.stack([tables.out_index(p, o)[combos[p]] for p, o in sources], axis=1)
    distinct, which = np.unique(keys, axis=0, return_inverse=True)
    for row, key in enumerate(distinct):
        fixed = {source: int(v) for source, v in zip(sources, key, strict=True)}
        right, _ = _half(parts[split:], rules, tables, room_right, fixed=fixed)
        yield _Piece(tables, left.take(which.ravel() == row), right, size, context)


def _context(tables: GroupTables, rules: Constraints, size: int, grid: GridEvaluator) -> _Context:
    """The group's bounds relative to its base, and its exact evaluation of pairs."""
    offset = tables.group.offset
    cap_base = int(tables.base[rules.capacity])
    return _Context(
        bounds={n: v - _base_value(tables, n) for n, v in rules.upper.items()},
        upper=dict(rules.upper),
        slack={
            n: SLACK * abs(v) if n in tables.base_extra else 0.0 for n, v in rules.upper.items()
        },
        cap_bound=None if rules.capacity_bound is None else rules.capacity_bound - cap_base,
        exact=lambda first, second: grid.at((offset + first * size + second).tolist()),
    )


def _piece_front(piece: _Piece, rules: Constraints, found: Metrics) -> IntArray:
    """Global indices of the candidates of one piece that may be on the front."""
    left, right, context, tables = piece.left, piece.right, piece.context, piece.tables
    if not len(left) or not len(right):
        return np.zeros(0, dtype=np.int64)
    left, right = _fitting(left, right, context), _fitting(right, left, context)
    if not len(left) or not len(right):
        return np.zeros(0, dtype=np.int64)
    left_d, right_d = _alive(left, context), _alive(right, context)
    left, right = left.take(left_d >= 0), right.take(right_d >= 0)
    left_d, right_d = left_d[left_d >= 0], right_d[right_d >= 0]
    cap_base = int(tables.base[rules.capacity])
    seen = (
        found.cio - int(tables.base["cio"]),
        found.metric(rules.capacity).astype(np.int64) - cap_base,
    )
    if len(left) >= len(right):  # step through the larger half, bound blocks of the smaller
        first, second = _join(left, left_d, right, right_d, context, seen)
    else:
        swapped = replace(context, exact=lambda second, first: context.exact(first, second))
        second, first = _join(right, right_d, left, left_d, swapped, seen)
    return np.asarray(tables.group.offset + first * piece.size + second, dtype=np.int64)


@dataclass(frozen=True)
class _Context:
    """One group's bounds relative to its base (`bounds`, `cap_bound`), the search's own
    (`upper`), how far a float sum may differ with the order of its terms (`slack`: 0 for
    counts) and `exact`: the grid's own metrics of (left local, right local) pairs."""

    bounds: dict[str, float]
    upper: dict[str, float]
    slack: dict[str, float]
    cap_bound: int | None
    exact: Callable[[IntArray, IntArray], Metrics]


def _base_value(tables: GroupTables, name: str) -> float:
    return float(tables.base[name]) if name in tables.base else tables.base_extra[name]


def _split(parts: Sequence[PartTable]) -> int:
    """Where to cut the stages so that the halves' sizes are as close as possible."""
    sizes = [_options(t) for t in parts]
    total = math.prod(sizes)
    best, where, running = math.inf, 1, 1
    for i, s in enumerate(sizes[:-1], start=1):
        running *= s
        gap = abs(math.log(running) - math.log(total / running))
        if gap < best:
            best, where = gap, i
    return where


def _column(table: PartTable, name: str) -> Array:
    return table.columns[name] if name in table.columns else table.extra[name]


#: Per fragment, the combo (`PartTable`) of each part whose output shape a later part reads.
Combos = dict[int, IntArray]


def _half(
    parts: Sequence[PartTable],
    rules: Constraints,
    tables: GroupTables,
    room: Sequence[Mapping[str, float]] = (),
    carry: set[int] | frozenset[int] = frozenset(),
    fixed: Mapping[tuple[int, int], int] | None = None,
) -> tuple[_Half, Combos]:
    """All sums over `parts` (a Cartesian sum, first part the most significant digit), with
    the combo of each part in `carry`; a part whose input shape varies reads that shape from
    an earlier part of the half, or from `fixed` (the shape index of each other-half output it
    reads: the key). Fragments below the MoC floor are dropped, and after each part i those
    whose sums pass `room[i]` (by name; what the other parts' least values leave of each
    bound)."""
    names = list(rules.upper)
    sums: dict[str, Array] = {
        n: np.zeros(1, dtype=np.int64) for n in {rules.capacity, "cio", *names}
    }
    local = np.zeros(1, dtype=np.int64)
    needed = set(carry) | {p for t in parts for p, _, _ in t.varying}
    combos: Combos = {}
    for i, table in enumerate(parts):
        shape = np.zeros(len(local), dtype=np.int64)  # the combo's input-shape part, per row
        for part, output, stride in table.varying:
            index = tables.out_index(part, output)
            shape += stride * (
                index[combos[part]] if part in combos else (fixed or {})[(part, output)]
            )
        step = max(1, PAIRS // max(1, _options(table)))
        pieces = [  # in slices, each filtered at once: memory bounded by what fits
            _grown(
                local[j : j + step],
                {name: v[j : j + step] for name, v in sums.items()},
                {p: c[j : j + step] for p, c in combos.items()},
                shape[j : j + step],
                table,
                rules,
                room[i] if i < len(room) else {},
                keep=table.part in needed,
            )
            for j in range(0, max(len(local), 1), step)
        ]
        local = np.concatenate([p[0] for p in pieces])
        sums = {name: np.concatenate([p[1][name] for p in pieces]) for name in sums}
        combos = {part: np.concatenate([p[2][part] for p in pieces]) for part in pieces[0][2]}
    other = {n: sums[n] for n in names if n not in (rules.capacity, "cio")}
    cap, cio = sums[rules.capacity].astype(np.int64), sums["cio"].astype(np.int64)
    return _Half(local, cap, cio, other), combos


def _grown(
    local: IntArray,
    sums: dict[str, Array],
    combos: Combos,
    shape: IntArray,
    table: PartTable,
    rules: Constraints,
    room: Mapping[str, float],
    keep: bool,
) -> tuple[IntArray, dict[str, Array], Combos]:
    """The fragments `local` (with their `sums` and `combos`) each followed by every option of
    `table` (at the input shape `shape` gives per fragment) that meets the MoC floor, without
    those whose sums pass `room`; `keep`: record the table's combo per fragment."""
    n, span = _options(table), table.span
    option = np.arange(n, dtype=np.int64)
    # one input shape: each option's entry is gathered once (the common case, and the fast one)
    combo = option[None, :] * span + shape[:, None] if table.varying else option[None, :]
    fits = np.ones((len(local), n), dtype=np.bool_)
    if rules.moc_floor is not None:
        fits &= table.columns["min_moc"][combo] >= rules.moc_floor
    out = {name: v[:, None] + _column(table, name)[combo] for name, v in sums.items()}
    for name, most in room.items():
        fits &= out[name] <= most
    grown = (local[:, None] * n + option[None, :])[fits]
    kept = {part: np.broadcast_to(c[:, None], fits.shape)[fits] for part, c in combos.items()}
    if keep:
        kept[table.part] = np.broadcast_to(combo, fits.shape)[fits]
    return grown, {name: v[fits] for name, v in out.items()}, kept


def _rooms(
    parts: Sequence[PartTable], rules: Constraints, context: _Context, start: int, stop: int
) -> list[dict[str, float]]:
    """For building parts[start:stop]: after each, what the bounds leave once every part not
    yet added (either half) takes its least value."""
    bounds = dict(context.bounds)
    if context.cap_bound is not None:
        bounds[rules.capacity] = context.cap_bound
    least = [{n: float(_column(t, n).min()) for n in bounds} for t in parts]
    rooms = []
    for i in range(start, stop):
        others = [m for j, m in enumerate(least) if not start <= j <= i]
        rooms.append(
            {
                n: bound + context.slack.get(n, 0.0) - sum(m[n] for m in others)
                for n, bound in bounds.items()
            }
        )
    return rooms


def _fitting(half: _Half, rest: _Half, context: _Context) -> _Half:
    """The fragments that fit the budgets with the smallest partner of the other half."""
    ok = np.ones(len(half), dtype=np.bool_)
    if context.cap_bound is not None:
        ok &= half.cap + rest.cap.min() <= context.cap_bound
    for name, bound in context.bounds.items():
        ok &= half.sum(name) + rest.sum(name).min() <= bound + context.slack[name]
    return half.take(ok)


def _alive(half: _Half, context: _Context) -> IntArray:
    """Per fragment: -1 when rule 1 drops it (or, without a capacity budget, when another
    fragment dominates it), else d (rule 2): the capacity of a dominator with more capacity,
    or NONE."""
    order = np.lexsort((half.cio, half.cap))
    # a dominator has no more of each other bounded sum, by a margin where sums are floats
    other = [(v[order], context.slack[n]) for n, v in half.other.items()]
    dead = _same_capacity_beaten(half.cap[order], half.cio[order], other)
    # what rule 1 drops never dominates alone (what beat it dominates as much): search the rest
    order = order[~dead]
    cap, cio = half.cap[order], half.cio[order]
    other = [(v[order], context.slack[n]) for n, v in half.other.items()]
    d = np.full(len(cap), NONE, dtype=np.int64)
    for k in range(1, min(NEIGHBOURS, len(cap) - 1) + 1):
        a, q = slice(0, len(cap) - k), slice(k, len(cap))
        hit = (cio[q] <= cio[a]) & (cap[q] > cap[a]) & (d[a] == NONE)
        for values, slack in other:
            hit &= values[q] <= values[a] - slack
        d[a] = np.where(hit, cap[q], d[a])
    if not other:
        _front_dominators(cap, cio, d)
    if context.cap_bound is None:
        d[d != NONE] = -1
    result = np.full(len(half), -1, dtype=np.int64)
    result[order] = d
    return result


def _same_capacity_beaten(
    cap: IntArray, cio: IntArray, other: Sequence[tuple[Array, float]]
) -> npt.NDArray[np.bool_]:
    """Rule 1 on fragments sorted by (capacity, CIO): beaten by one of the same capacity and
    less CIO (and, with other bounded sums, no more of those: searched among neighbours)."""
    n = len(cap)
    start = np.ones(n, dtype=np.bool_)
    start[1:] = cap[1:] != cap[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))
    if not other:
        return np.asarray(cio > cio[first], dtype=np.bool_)
    dead = np.zeros(n, dtype=np.bool_)
    for k in range(1, min(NEIGHBOURS, n - 1) + 1):
        a, q = slice(k, n), slice(0, n - k)
        hit = (cap[q] == cap[a]) & (cio[q] < cio[a])
        for values, slack in other:
            hit &= values[q] <= values[a] - slack
        dead[a] |= hit
    return dead


def _front_dominators(cap: IntArray, cio: IntArray, d: IntArray) -> None:
    """Rule 2's fallback for fragments without a dominator among their neighbours: the
    front point of least capacity above theirs with no more CIO (only CIO and capacity
    bounded, so any such point dominates)."""
    missing = np.nonzero(d == NONE)[0]
    if not len(missing):
        return
    on_front = np.nonzero(nondominated_ranks(cio, -cap, max_rank=1) == 1)[0]
    order = np.argsort(cap[on_front], kind="stable")
    front_cap, front_cio = cap[on_front][order], cio[on_front][order]
    most_cio = np.maximum.accumulate(front_cio)
    below = np.searchsorted(most_cio, cio[missing], side="right")
    above = np.searchsorted(front_cap, cap[missing], side="right")
    ok = above < below
    d[missing[ok]] = front_cap[np.minimum(above[ok], len(front_cap) - 1)]


@dataclass
class _Running:
    """The front of the pairs seen so far (totals and the pair), and the other groups' front
    (totals only): together, the candidates that rule 3 prunes against."""

    cio: IntArray
    cap: IntArray
    left: IntArray
    right: IntArray
    seen_cio: IntArray
    seen_cap: IntArray

    def add(self, cio: IntArray, cap: IntArray, left: IntArray, right: IntArray) -> None:
        pool_cio, pool_cap = np.concatenate([self.cio, cio]), np.concatenate([self.cap, cap])
        keep = nondominated_ranks(pool_cio, -pool_cap, max_rank=1) == 1
        self.cio, self.cap = pool_cio[keep], pool_cap[keep]
        self.left = np.concatenate([self.left, left])[keep]
        self.right = np.concatenate([self.right, right])[keep]

    def beaten(self, cio: IntArray, cap: IntArray) -> npt.NDArray[np.bool_]:
        """True where a candidate found is strictly better in both CIO and capacity."""
        by_cio, by_cap = (
            np.concatenate([self.cio, self.seen_cio]),
            np.concatenate([self.cap, self.seen_cap]),
        )
        return strictly_dominated(cio, -cap, by_cio, -by_cap)


@dataclass(frozen=True)
class _Blocks:
    """The right half sorted by capacity, with each `BLOCK`'s most capacity and least of each
    bounded sum, CIO included (`low`, by name)."""

    half: _Half
    d: IntArray
    cap_high: IntArray
    low: dict[str, Array]

    @property
    def cio_low(self) -> IntArray:
        """Each block's least CIO (a count)."""
        return np.asarray(self.low["cio"], dtype=np.int64)

    @classmethod
    def of(cls, half: _Half, d: IntArray) -> _Blocks:
        order = np.argsort(half.cap, kind="stable")
        half, d = half.take(order), d[order]
        starts = np.arange(0, len(half), BLOCK)
        return cls(
            half,
            d,
            np.maximum.reduceat(half.cap, starts),
            {n: np.minimum.reduceat(v, starts) for n, v in half.other.items()}
            | {"cio": np.minimum.reduceat(half.cio, starts)},
        )


def _join(
    left: _Half,
    left_d: IntArray,
    right: _Half,
    right_d: IntArray,
    context: _Context,
    seen: tuple[IntArray, IntArray],
) -> tuple[IntArray, IntArray]:
    """The (`left` local, `right` local) pairs on the front of this group (rules 2 and 3);
    `seen` holds the (CIO, capacity) of the other groups' front, relative to this base."""
    blocks = _Blocks.of(right, right_d)
    none = np.zeros(0, dtype=np.int64)
    running = _Running(none, none, none, none, *seen)
    order = np.argsort(left.cio, kind="stable")  # low-CIO fragments first: a strong front early
    for start in range(0, len(order), STEP):
        rows = order[start : start + STEP]
        _join_step(left.take(rows), left_d[rows], blocks, context, running)
    return running.left, running.right


def _join_step(
    left: _Half, left_d: IntArray, blocks: _Blocks, context: _Context, running: _Running
) -> None:
    right, cap_bound = blocks.half, context.cap_bound
    if cap_bound is None:
        lo, hi = np.zeros(len(left), dtype=np.int64), np.full(len(left), len(right))
    else:
        hi = np.searchsorted(right.cap, cap_bound - left.cap, side="right")
        open_below = left_d == NONE
        gap = cap_bound - np.where(open_below, cap_bound, left_d)
        lo = np.where(open_below, 0, np.searchsorted(right.cap, gap, side="right"))
    a, b = _ranges(lo // BLOCK, -(-hi // BLOCK))
    a, b = a[lo[a] < hi[a]], b[lo[a] < hi[a]]
    ok = ~running.beaten(left.cio[a] + blocks.cio_low[b], left.cap[a] + blocks.cap_high[b])
    for name, bound in context.bounds.items():
        ok &= left.sum(name)[a] + blocks.low[name][b] <= bound + context.slack[name]
    a, b = a[ok], b[ok]
    first = np.maximum(b * BLOCK, lo[a])
    last = np.minimum((b + 1) * BLOCK, hi[a])
    ends = np.cumsum(last - first)
    total = int(ends[-1]) if len(ends) else 0
    for cut in range(0, total, PAIRS):  # in batches: bounded memory
        lo_row, hi_row = np.searchsorted(ends, [cut, cut + PAIRS], side="right")
        batch = slice(int(lo_row), max(int(hi_row), int(lo_row) + 1))
        pa, z = _ranges(first[batch], last[batch], rows=a[batch])
        _pairs(left, pa, blocks, z, context, running)


def _pairs(
    left: _Half,
    pa: IntArray,
    blocks: _Blocks,
    z: IntArray,
    context: _Context,
    running: _Running,
) -> None:
    """Sum the pairs (left row `pa`, right row `z`) that rule 2 leaves to `z` and that meet
    the bounds, and add them to the running front. A float sum within its slack of a bound
    is decided on the grid's own total (its terms added in the grid's order)."""
    right = blocks.half
    keep = np.ones(len(pa), dtype=np.bool_)
    if context.cap_bound is not None:
        rd = blocks.d[z]
        keep &= (rd == NONE) | (left.cap[pa] > context.cap_bound - np.where(rd == NONE, 0, rd))
    close = np.zeros(len(pa), dtype=np.bool_)
    for name, bound in context.bounds.items():
        total = left.sum(name)[pa] + right.sum(name)[z]
        keep &= total <= bound + context.slack[name]
        close |= total > bound - context.slack[name]
    pa, z, close = pa[keep], z[keep], close[keep]
    if np.any(close):
        exact = context.exact(left.local[pa[close]], right.local[z[close]])
        fits = np.ones(len(exact), dtype=np.bool_)
        for name, bound in context.upper.items():
            fits &= exact.metric(name) <= bound
        keep = np.ones(len(pa), dtype=np.bool_)
        keep[np.nonzero(close)[0][~fits]] = False
        pa, z = pa[keep], z[keep]
    cio, cap = left.cio[pa] + right.cio[z], left.cap[pa] + right.cap[z]
    fresh = ~running.beaten(cio, cap)
    running.add(cio[fresh], cap[fresh], left.local[pa[fresh]], right.local[z[fresh]])


def _ranges(
    starts: IntArray, stops: IntArray, rows: IntArray | None = None
) -> tuple[IntArray, IntArray]:
    """Every (row, value) with starts[i] <= value < stops[i], row i (or rows[i])."""
    counts = np.maximum(stops - starts, 0)
    owner = np.repeat(np.arange(len(starts)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    values = starts[owner] + offsets
    return (owner if rows is None else rows[owner]), values
