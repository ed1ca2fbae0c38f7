"""Pareto ranking against a brute-force O(n^2) dominance check on random data (with ties), in
one pass and streamed chunk by chunk as the sweep does; single-objective ranking against a sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hardnet_analysis.pareto import hypervolume, nondominated_ranks, strictly_dominated
from hardnet_analysis.search.evaluate import Metrics
from hardnet_analysis.search.objectives import OBJECTIVES
from hardnet_analysis.search.sweep import ObjectiveRanker, ParetoRanker

Points = list[tuple[int, int]]

# The checks are cheap: run many more examples than the profile's default.
many = settings(max_examples=100)

# Small value ranges so that ties and duplicate points are common.
points = st.lists(st.tuples(st.integers(0, 12), st.integers(-12, 0)), min_size=0, max_size=60)


def dominates(p: tuple[int, int], q: tuple[int, int]) -> bool:
    return p[0] <= q[0] and p[1] <= q[1] and p != q


def brute_ranks(pts: Points) -> list[int]:
    """Peel fronts: rank r is what nothing left dominates once ranks < r are removed."""
    ranks = [0] * len(pts)
    left = set(range(len(pts)))
    rank = 0
    while left:
        rank += 1
        front = {i for i in left if not any(dominates(pts[j], pts[i]) for j in left)}
        for i in front:
            ranks[i] = rank
        left -= front
    return ranks


def arrays(pts: Points) -> tuple[np.ndarray, np.ndarray]:
    f1 = np.array([p[0] for p in pts], dtype=np.int64)
    f2 = np.array([p[1] for p in pts], dtype=np.int64)
    return f1, f2


@many
@given(points)
def test_ranks_equal_brute_force(pts: Points) -> None:
    assert nondominated_ranks(*arrays(pts)).tolist() == brute_ranks(pts)


@many
@given(points, st.integers(1, 4))
def test_ranks_beyond_max_rank_are_zero(pts: Points, max_rank: int) -> None:
    expected = [r if r <= max_rank else 0 for r in brute_ranks(pts)]
    assert nondominated_ranks(*arrays(pts), max_rank=max_rank).tolist() == expected


@many
@given(points)
def test_front_is_exactly_the_undominated_points(pts: Points) -> None:
    front = nondominated_ranks(*arrays(pts)) == 1
    for i, p in enumerate(pts):
        assert front[i] == (not any(dominates(q, p) for q in pts))


@many
@given(points, points)
def test_strictly_dominated_equals_brute_force(pts: Points, by: Points) -> None:
    got = strictly_dominated(*arrays(pts), *arrays(by)).tolist()
    assert got == [any(b[0] < p[0] and b[1] < p[1] for b in by) for p in pts]


def metrics(pts: Points, offset: int = 0) -> Metrics:
    """Points as candidates: CIO = first value, MACs (capacity) = minus the second."""
    n = len(pts)
    f1, f2 = arrays(pts)
    zeros = np.zeros(n, dtype=np.int64)
    index = np.arange(offset, offset + n, dtype=np.int64)
    return Metrics(index, zeros, -f2, f1, zeros, np.zeros(n, dtype=np.float64))


@many
@given(points, st.integers(1, 4), st.integers(1, 9))
def test_streamed_pareto_keeps_exact_top_ranks(pts: Points, keep: int, chunk: int) -> None:
    ranker = ParetoRanker("macs", keep)
    for lo in range(0, len(pts), chunk):
        ranker.update(metrics(pts[lo : lo + chunk], offset=lo))
    kept, ranks, _ = ranker.best()
    brute = brute_ranks(pts)
    expected = {i: r for i, r in enumerate(brute) if r <= keep}
    assert dict(zip(kept.index.tolist(), ranks.tolist(), strict=True)) == expected
    # Best first: rank, then capacity (higher), then CIO (lower), then index.
    keys = [
        (r, -int(kept.macs[i]), int(kept.cio[i]), int(kept.index[i])) for i, r in enumerate(ranks)
    ]
    assert keys == sorted(keys)
    assert ranker.front_size == brute.count(1)


@many
@given(points, st.integers(1, 6), st.integers(1, 9))
def test_streamed_objective_keeps_the_best_by_value_then_index(
    pts: Points, keep: int, chunk: int
) -> None:
    ranker = ObjectiveRanker(OBJECTIVES["cio"], keep)
    for lo in range(0, len(pts), chunk):
        ranker.update(metrics(pts[lo : lo + chunk], offset=lo))
    kept, ranks, scores = ranker.best()
    expected = sorted(range(len(pts)), key=lambda i: (pts[i][0], i))[:keep]
    assert kept.index.tolist() == expected
    assert ranks.tolist() == list(range(1, len(expected) + 1))
    assert scores.tolist() == [float(pts[i][0]) for i in expected]


@given(
    st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), max_size=25),
    st.integers(0, 14),
    st.integers(0, 14),
)
def test_hypervolume_counts_the_dominated_unit_cells(
    points: list[tuple[int, int]], ref1: int, ref2: int
) -> None:
    """On integer points, the area is the number of unit cells [x, x+1] x [y, y+1] inside the
    reference box that some point is below and left of."""
    cells = sum(any(p <= x and q <= y for p, q in points) for x in range(ref1) for y in range(ref2))
    f1 = np.array([p for p, _ in points], dtype=np.int64)
    f2 = np.array([q for _, q in points], dtype=np.int64)
    assert hypervolume(f1, f2, ref1, ref2) == cells


def test_hypervolume_worked_example() -> None:
    assert hypervolume(np.array([1, 2]), np.array([3, 1]), 4, 4) == 7.0
