"""Non-dominated sorting of two objectives, both minimised, in O(n log n + R n) for R ranks.

Point p dominates q when p is no worse in both objectives and better in at least one. Rank 1
is the Pareto front (points nothing dominates); rank r + 1 is the front of what remains once
ranks 1..r are removed. Equal points do not dominate each other and share a rank. Example, as
(CIO, -MACs): (1, -5), (2, -6), (2, -5), (3, -1) have ranks 1, 1, 2, 3.

Streaming: a point's rank within a subset never exceeds its rank in the whole set, and every
point that dominates a rank-r point has a smaller rank. So keeping, chunk after chunk, only the
points of rank <= R among (kept + new) gives the exact ranks <= R of the whole set, in memory
bounded by the size of those R fronts (the search's streaming Pareto ranker relies on this).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.int64] | npt.NDArray[np.float64]
Ranks = npt.NDArray[np.int64]


def _first_front(f1: Array, f2: Array) -> npt.NDArray[np.bool_]:
    """Mask of the non-dominated points, for points already sorted by (f1, f2) ascending.

    A point is dominated exactly when some point sorted before its run of equal points has
    f2 <= its f2 (that point has smaller f1, or equal f1 and smaller f2).
    """
    n = len(f1)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    new_run = np.ones(n, dtype=np.bool_)
    new_run[1:] = (f1[1:] != f1[:-1]) | (f2[1:] != f2[:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(n), 0))
    prefix_min = np.minimum.accumulate(f2)  # prefix_min[i]: min f2 over positions 0..i
    before = prefix_min[np.maximum(run_start - 1, 0)]
    return np.asarray((run_start == 0) | (before > f2), dtype=np.bool_)


def nondominated_ranks(f1: Array, f2: Array, max_rank: int | None = None) -> Ranks:
    """Rank (1 = Pareto front) of every point for minimising both `f1` and `f2`.

    Points beyond `max_rank` get rank 0 (they are not ranked further). Values are compared
    exactly, in their own dtype. The points are sorted once; each rank is one linear pass.
    """
    n = len(f1)
    ranks = np.zeros(n, dtype=np.int64)
    order = np.lexsort((f2, f1))
    s1, s2 = f1[order], f2[order]
    alive = np.arange(n)
    rank = 0
    while len(alive) and (max_rank is None or rank < max_rank):
        rank += 1
        front = _first_front(s1[alive], s2[alive])
        ranks[order[alive[front]]] = rank
        alive = alive[~front]
    return ranks


def strictly_dominated(f1: Array, f2: Array, by1: Array, by2: Array) -> npt.NDArray[np.bool_]:
    """True where some point of (`by1`, `by2`) is strictly better in both objectives.

    Used to drop, before sorting, the points a rank-R point dominates: their rank is at least
    R + 1 in any superset, so they never reach the best R ranks. O((n + m) log m).
    """
    if len(by1) == 0:
        return np.zeros(len(f1), dtype=np.bool_)
    order = np.argsort(by1, kind="stable")
    keys, best = by1[order], np.minimum.accumulate(by2[order])
    below = np.searchsorted(keys, f1, side="left")  # how many have by1 < f1
    return np.asarray((below > 0) & (best[np.maximum(below - 1, 0)] < f2), dtype=np.bool_)


def hypervolume(f1: Array, f2: Array, ref1: float, ref2: float) -> float:
    """Area dominated by the points (both objectives minimised) and bounded by the reference
    point (`ref1`, `ref2`); points not better than it in both count nothing. Example: (1, 3)
    and (2, 1) with reference (4, 4): 3 x 1 + 2 x 2 = 7 (the union of [1,4]x[3,4] and
    [2,4]x[1,4])."""
    a, b = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    inside = (a < ref1) & (b < ref2)
    a, b = a[inside], b[inside]
    if not len(a):
        return 0.0
    order = np.lexsort((b, a))
    a, low = a[order], np.minimum.accumulate(b[order])
    above = np.concatenate([[ref2], low[:-1]])  # each point adds the slab below the last low
    return float(np.sum((ref1 - a) * np.maximum(above - low, 0.0)))
