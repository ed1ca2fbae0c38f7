"""The stage-wise front equals the rank-1 set of the whole space, computed here by brute force
(every candidate evaluated, then a plain pairwise dominance check), on random small spaces,
budgets, capacities and a per-part latency feature; the pruning constants are shrunk so that
every path of the join (blocks, batches, neighbour search and its fallback) runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.search import stagewise
from hardnet_analysis.search import sweep as sweep_module
from hardnet_analysis.search.evaluate import GridEvaluator, Metrics, PartCosts
from hardnet_analysis.search.space import SearchSpace, default_space, load_template, with_flags
from hardnet_analysis.search.stagewise import Constraints, count_feasible, exact_front, separable
from hardnet_analysis.search.sweep import Budgets, ParetoRanker, sweep
from hardnet_analysis.shapes import InputShape

SHAPE = (1, 3, 32, 32)


def fake_latency(analysis: Analysis, place: str) -> float:
    """A per-part feature that is not a function of capacity and CIO alone."""
    t = analysis.totals
    return t.macs * 1e-12 + t.params * 3e-10 + (1e-4 if place == "first" else 0.0)


def everything(grid: GridEvaluator) -> Metrics:
    return Metrics.concat([grid.evaluate(lo, hi) for lo, hi in grid.chunks(1 << 16)])


def feasible(m: Metrics, budgets: Budgets) -> Any:
    ok = np.ones(len(m), dtype=bool)
    for name, bound in budgets.given().items():
        ok &= m.metric(name) >= bound if name == "min_moc" else m.metric(name) <= bound
    return ok


def brute_front(m: Metrics, capacity: str, budgets: Budgets) -> set[int]:
    """Indices of the feasible candidates no feasible candidate dominates (CIO lower,
    capacity higher; equal points do not dominate each other)."""
    ok = feasible(m, budgets)
    cio, cap, index = m.cio[ok], m.metric(capacity)[ok], m.index[ok]
    front = set()
    for i in range(len(cio)):
        no_worse = (cio <= cio[i]) & (cap >= cap[i])
        better = (cio < cio[i]) | (cap > cap[i])
        if not np.any(no_worse & better):
            front.add(int(index[i]))
    return front


@pytest.fixture(autouse=True)
def tiny_constants(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Blocks of 3, steps of 5, batches of 7 pairs, 2 neighbours: every path runs."""
    monkeypatch.setattr(stagewise, "BLOCK", 3)
    monkeypatch.setattr(stagewise, "STEP", 5)
    monkeypatch.setattr(stagewise, "PAIRS", 7)
    monkeypatch.setattr(stagewise, "NEIGHBOURS", 2)
    yield


lists = st.lists(st.sampled_from([0.5, 0.75, 1.0, 1.25, 1.5]), min_size=1, max_size=3, unique=True)


@st.composite
def spaces(draw: st.DrawFn) -> SearchSpace:
    template = draw(st.sampled_from(["hardnet39ds", "hardnet68"]))
    space = default_space(load_template(template), template)
    ks = "/".join(
        ",".join(f"{2 * draw(st.integers(2, 12))}" for _ in range(draw(st.integers(1, 3))))
        for _ in space.stages
    )
    ns = "/".join(
        ",".join(f"{draw(st.integers(1, 8))}" for _ in range(draw(st.integers(1, 2))))
        for _ in space.stages
    )
    ms = ",".join(
        str(v)
        for v in draw(
            st.lists(st.sampled_from([1.5, 1.6, 1.7, 1.8]), min_size=1, max_size=2, unique=True)
        )
    )
    space = with_flags(space, ks, ms, ns)
    if draw(st.booleans()):  # transition widths searched too: 1 or 2 per stage, kept small
        stages = len(space.stages)
        two = set(draw(st.lists(st.integers(0, stages - 1), max_size=2, unique=True)))
        ws = "/".join(
            ",".join(str(8 * draw(st.integers(2, 24))) for _ in range(2 if i in two else 1))
            for i in range(stages)
        )
        space = with_flags(space, None, None, None, ws)
    return space


def quantile(data: st.DataObject, values: Any) -> float:
    return float(np.quantile(values, data.draw(st.floats(0.0, 1.0))))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), data=st.data())
def test_the_front_equals_brute_force(space: SearchSpace, data: st.DataObject) -> None:
    latency = data.draw(st.booleans())
    costs = PartCosts(space, SHAPE, features={"latency_s": fake_latency} if latency else None)
    grid = GridEvaluator(space, costs)
    m = everything(grid)
    capacity = data.draw(st.sampled_from(["macs", "params"]))
    bounds: dict[str, Any] = {}  # Budgets fields by name
    for name, chance in (("macs", 0.8), ("params", 0.4), ("cio", 0.3)):
        if data.draw(st.floats(0, 1)) < chance:
            bounds[name] = int(quantile(data, m.metric(name)))
    if data.draw(st.floats(0, 1)) < 0.3:
        bounds["min_moc"] = quantile(data, m.min_moc) * data.draw(st.floats(0, 1))
    if latency and data.draw(st.booleans()):
        bounds["latency_s"] = quantile(data, m.metric("latency_s"))
    budgets = Budgets(**bounds)
    rules = Constraints.of(capacity, budgets)
    found = exact_front(grid, rules)
    assert found is not None
    counted = count_feasible(grid, rules)
    sums = [n for n in bounds if n != "min_moc"]
    assert (counted is None) == (len(sums) > 1 or "latency_s" in sums)
    assert counted in (None, int(np.count_nonzero(feasible(m, budgets))))
    assert {int(i) for i in found.index} == brute_front(m, capacity, budgets)
    if len(found):  # the sweep's order: capacity descending, then CIO, then index
        keys = list(zip(-found.metric(capacity), found.cio, found.index, strict=True))
        assert keys == sorted(keys)


def test_the_default_space_front_equals_the_sweep() -> None:
    """HarDNet-68's default space (3,037,500) at 224 with a 4.5G MACs budget: 111 members,
    the same candidates and metrics as the streaming Pareto ranker's rank 1, from 1.28 G."""
    space = default_space(load_template("hardnet68"))
    grid = GridEvaluator(space, PartCosts(space, (1, 3, 224, 224)))
    found = exact_front(grid, Constraints.of("macs", Budgets(macs=4_500_000_000)))
    assert found is not None
    result = sweep(
        space, InputShape.of_image(224), Budgets(macs=4_500_000_000), ParetoRanker("macs", 1)
    )
    assert [c.index for c in result.candidates] == [int(i) for i in found.index]
    assert [c.cio for c in result.candidates] == [int(v) for v in found.cio]
    assert len(found) == 111
    assert 1.28e9 <= int(found.macs.min()) < 1.29e9  # the "from 1.28 G up"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_dense_template_front_equals_brute_force(data: st.DataObject) -> None:
    """FC-HarDNet's decoder reads widths that other stages set: the halves are joined per
    key (the widths the right half reads from the left), and the front is still exact."""
    space = default_space(load_template("fchardnet70"), "fchardnet70")
    varied = set(data.draw(st.lists(st.integers(0, 8), min_size=1, max_size=4, unique=True)))
    stages = tuple(s if i in varied else replace(s, k=s.k[-1:], n_layers=s.n_layers[-1:])
                   for i, s in enumerate(space.stages))  # fmt: skip
    space = replace(space, stages=stages, m=(1.7,))
    grid = GridEvaluator(space, PartCosts(space, (1, 3, 64, 64)))
    assert separable(grid)
    m = everything(grid)
    capacity = data.draw(st.sampled_from(["macs", "params"]))
    bounds = {"cio": int(quantile(data, m.cio))} if data.draw(st.booleans()) else {}
    budgets = Budgets(**bounds)
    rules = Constraints.of(capacity, budgets)
    found = exact_front(grid, rules)
    assert found is not None
    assert {int(i) for i in found.index} == brute_front(m, capacity, budgets)
    assert count_feasible(grid, rules) == int(np.count_nonzero(feasible(m, budgets)))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=spaces(), data=st.data())
def test_several_input_sizes_built_stage_by_stage_equal_the_sweep(
    space: SearchSpace, data: st.DataObject
) -> None:
    """`--input 32,40,48`: each size's front built stage by stage, then the front of their
    union, is the sweep's front over every (candidate, size), tagged with each member's size."""
    sizes = data.draw(st.lists(st.sampled_from([32, 40, 48, 64]), min_size=2, max_size=3,
                               unique=True))  # fmt: skip
    shapes = [(1, 3, s, s) for s in sizes]
    latency = data.draw(st.booleans())
    features = {"latency_s": fake_latency} if latency else None
    capacity = data.draw(st.sampled_from(["macs", "params"]))
    probe = everything(GridEvaluator(space, PartCosts(space, shapes[-1])))
    budgets = Budgets(macs=int(quantile(data, probe.macs)))
    inputs = [InputShape((s,)) for s in shapes]
    visited = sweep(space, inputs, budgets, ParetoRanker(capacity, 1), features=features)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep_module, "SWEEP_LIMIT", 0)
        built = sweep(space, inputs, budgets, ParetoRanker(capacity, 1), features=features)
    assert visited.front is not None and built.front is not None
    keys = [(c.index, c.input) for c in visited.front.members]
    assert [(c.index, c.input) for c in built.front.members] == keys
    assert built.front.members == visited.front.members
    assert built.feasible == visited.feasible
    assert built.size == visited.size == space.size * len(sizes)
    assert {c.input for c in visited.front.members} <= {(s, s) for s in sizes}


def test_no_feasible_candidate_gives_an_empty_front() -> None:
    space = with_flags(default_space(load_template("hardnet39ds"), "hardnet39ds"), "8", "1.6", "2")
    grid = GridEvaluator(space, PartCosts(space, SHAPE))
    found = exact_front(grid, Constraints.of("macs", Budgets(macs=1)))
    assert found is not None and len(found) == 0


@pytest.mark.parametrize("budgets", [Budgets(macs=4_500_000_000), Budgets(cio=10_000_000)])
def test_a_sweep_beyond_the_limit_finds_what_the_sweep_finds(
    monkeypatch: pytest.MonkeyPatch, budgets: Budgets
) -> None:
    """The same search visited (the sweep) and built stage by stage (`SWEEP_LIMIT` 0): the
    same front, count within the budgets, template, and ranked rows (all of rank 1)."""
    space = with_flags(default_space(load_template("hardnet68")), "x0.75,x1", "1.6,1.7", "x0.5,x1")
    shape = (1, 3, 224, 224)
    visited = sweep(space, InputShape((shape,)), budgets, ParetoRanker("macs", 5), sample=20)
    monkeypatch.setattr(sweep_module, "SWEEP_LIMIT", 0)
    built = sweep(space, InputShape((shape,)), budgets, ParetoRanker("macs", 5), sample=20)
    assert visited.front is not None and built.front is not None
    assert [c.index for c in built.front.members] == [c.index for c in visited.front.members]
    assert built.front_size == visited.front_size == len(visited.front.members) > 5
    assert built.feasible == visited.feasible
    assert built.candidates == visited.candidates[:5]  # the sweep keeps ranks <= 5; rows: 5
    assert built.template == visited.template
    assert built.sample == visited.sample


def test_nothing_within_the_budgets_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweep_module, "SWEEP_LIMIT", 0)
    space = with_flags(default_space(load_template("hardnet39ds"), "hardnet39ds"), "8", "1.6", "2")
    with pytest.raises(UsageError, match=r"no candidate of the 1 meets the budgets \(macs <= 1\)"):
        sweep(space, InputShape((SHAPE,)), Budgets(macs=1), ParetoRanker("macs", 3))


def test_search_reports_a_billion_candidates_front(tmp_path: Path) -> None:
    """`hda search` on 992,436,543 candidates (per stage 3 k, 3 m, 7 n_layers) answers in
    seconds: its front (1,220 members, the sweep's too: benchmarks/bench_front.py --verify),
    the count within 4.5G MACs, and ranked rows that are front members."""
    m = "/".join(["1.6,1.7,1.8"] * 5)
    flags = ["--k", "x0.75,x1,x1.25", "--m", m, "--n-layers", "2,4,6,8,10,12,16"]
    out = subprocess.run(
        [sys.executable, "-m", "hardnet_analysis", "search", *flags, "--budget-macs", "4.5G",
         "--top", "3", "--format", "json"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    doc = json.loads(out)
    assert doc["space_size"] == 992_436_543
    members = doc["front"]["members"]
    assert doc["front_size"] == len(members) == 1220
    assert all(member["macs"] <= 4_500_000_000 for member in members)
    assert 0 < doc["feasible"] < doc["space_size"]
    ids = {member["id"] for member in members}
    assert [row["rank"] for row in doc["candidates"]] == [1, 1, 1]
    assert {row["id"] for row in doc["candidates"]} <= ids
