"""The whole Pareto front a search keeps (`SearchResult.front`, ``front.json``'s ``front``)
equals a brute-force O(n^2) dominance check over every feasible candidate of small spaces, each
candidate summed part by part (not through the sweep's grid); its members meet the budgets and
none dominates another; it is the same under any ranking; ``hda search`` says its size and span
and writes it beside unchanged ranked rows."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.fronts import SearchFront
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.hardnet.definition import HarDNetDef
from hardnet_analysis.search.emit import whole_front
from hardnet_analysis.search.evaluate import PartCost, PartCosts
from hardnet_analysis.search.objectives import LATENCY, OBJECTIVES, get_objective
from hardnet_analysis.search.space import SearchSpace, default_space, load_template, with_flags
from hardnet_analysis.search.sweep import Budgets, ObjectiveRanker, ParetoRanker, Ranker, sweep
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.units import format_count

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")
SHAPE = (1, 3, 224, 224)
#: 2048 candidates of HarDNet-68: two k, two n_layers per stage, two m.
FLAGS = ("x0.875,x1.25", "1.6,1.75", "x0.5,x1")
CLI_FLAGS = ("--k", FLAGS[0], "--m", FLAGS[1], "--n-layers", FLAGS[2])


@cache
def small_space() -> SearchSpace:
    return with_flags(default_space(load_template("hardnet68"), "hardnet68"), *FLAGS)


def totals(space: SearchSpace, shape: tuple[int, ...] = SHAPE) -> tuple[PartCost, ...]:
    """Every candidate of `space`, summed part by part (the scalar path, not the grid)."""
    costs = PartCosts(space, shape)
    return tuple(costs.total(space.choices(i)) for i in range(space.size))


@cache
def small_totals() -> tuple[PartCost, ...]:
    return totals(small_space())


def meets(t: PartCost, budgets: Budgets) -> bool:
    """The budgets checked one by one, as the README states them."""
    return (
        (budgets.macs is None or t.macs <= budgets.macs)
        and (budgets.params is None or t.params <= budgets.params)
        and (budgets.cio is None or t.cio <= budgets.cio)
        and (budgets.min_moc is None or t.min_moc >= budgets.min_moc)
    )


def brute_front(rows: tuple[PartCost, ...], budgets: Budgets, capacity: str) -> set[int]:
    """Indices of the feasible candidates no feasible candidate dominates (CIO no more and
    capacity no less, one of them strictly), by comparing every pair."""
    feasible = [i for i, t in enumerate(rows) if meets(t, budgets)]
    cio = np.array([rows[i].cio for i in feasible], dtype=np.int64)
    cap = np.array([getattr(rows[i], capacity) for i in feasible], dtype=np.int64)
    # beats[j, i]: candidate j dominates candidate i (the n x n comparison, all pairs).
    no_worse = (cio[:, None] <= cio[None, :]) & (cap[:, None] >= cap[None, :])
    better = (cio[:, None] < cio[None, :]) | (cap[:, None] > cap[None, :])
    beats: npt.NDArray[np.bool_] = no_worse & better
    dominated = np.any(beats, axis=0)
    return {i for n, i in enumerate(feasible) if not dominated[n]}


def ranker(kind: str, capacity: str) -> Ranker:
    if kind == "pareto":
        return ParetoRanker(capacity, 3)
    return ObjectiveRanker(OBJECTIVES[kind], 3)


budgets_st = st.builds(
    Budgets,
    macs=st.none() | st.integers(1_500_000_000, 6_000_000_000),
    params=st.none() | st.integers(5_000_000, 30_000_000),
    cio=st.none() | st.integers(7_000_000, 13_000_000),
    min_moc=st.none() | st.floats(0, 25),
)


@settings(max_examples=30)
@given(
    budgets=budgets_st,
    capacity=st.sampled_from(["macs", "params"]),
    kind=st.sampled_from(["pareto", "cio", "macs", "min_moc"]),
    chunk=st.sampled_from([97, 500, 1 << 18]),
)
def test_front_equals_brute_force_under_any_budgets_and_ranking(
    budgets: Budgets, capacity: str, kind: str, chunk: int
) -> None:
    space, rows = small_space(), small_totals()
    expected = brute_front(rows, budgets, capacity)
    if not expected:  # nothing meets the budgets: the sweep says so instead
        with pytest.raises(UsageError, match="no candidate"):
            sweep(space, InputShape((SHAPE,)), budgets, ranker(kind, capacity), capacity=capacity)
        return
    result = sweep(
        space, InputShape((SHAPE,)), budgets, ranker(kind, capacity), chunk=chunk, capacity=capacity
    )
    assert result.front is not None and result.front.capacity == capacity
    members = result.front.members
    assert [c.index for c in members if c.index is not None] == sorted(
        expected, key=lambda i: (getattr(rows[i], capacity), rows[i].cio, i)
    )  # all of it, by capacity, then CIO, then index
    for c in members:
        assert c.index is not None
        t = rows[c.index]
        assert (c.params, c.macs, c.cio, c.min_moc) == (t.params, t.macs, t.cio, t.min_moc)
        assert c.rank == 1 and meets(t, budgets)


@st.composite
def tiny_spaces(draw: st.DrawFn) -> SearchSpace:
    """Random small spaces on the tiny HarDNet: 2 stages, a few k, n_layers and m each."""
    lists = st.lists(st.integers(2, 12), min_size=1, max_size=3, unique=True)
    ks = "/".join(",".join(map(str, draw(lists))) for _ in range(2))
    ns = "/".join(",".join(map(str, draw(st.lists(st.integers(1, 6), min_size=1, max_size=3,
                                                  unique=True)))) for _ in range(2))  # fmt: skip
    ms = ",".join(f"{m:g}" for m in draw(st.sets(st.sampled_from([1.5, 1.6, 1.7]), min_size=1)))
    return with_flags(default_space(load_template(TINY)), ks, ms, ns)


@settings(max_examples=20)
@given(
    space=tiny_spaces(),
    macs_fraction=st.floats(0.3, 1.2),
    capacity=st.sampled_from(["macs", "params"]),
)
def test_front_of_random_spaces_equals_brute_force(
    space: SearchSpace, macs_fraction: float, capacity: str
) -> None:
    shape = (1, 3, 32, 32)
    rows = totals(space, shape)
    budgets = Budgets(macs=int(macs_fraction * max(t.macs for t in rows)))
    expected = brute_front(rows, budgets, capacity)
    if not expected:
        return
    result = sweep(space, InputShape((shape,)), budgets, ParetoRanker(capacity, 1), chunk=7)
    assert result.front is not None
    assert {c.index for c in result.front.members} == expected
    assert result.front_size == len(expected)


def dominates(a: dict[str, Any], b: dict[str, Any], capacity: str) -> bool:
    no_worse = a["cio"] <= b["cio"] and a[capacity] >= b[capacity]
    return bool(no_worse and (a["cio"] < b["cio"] or a[capacity] > b[capacity]))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """``hda search --budget-macs 3G --out DIR`` of the small space: front.json and DIR."""
    out = tmp_path_factory.mktemp("front")
    argv = ["search", *CLI_FLAGS, "--budget-macs", "3G", "--out", str(out), "--emit", "4"]
    assert main([*argv, "--format", "json"]) == 0
    return json.loads((out / "front.json").read_text()), out


def test_front_json_holds_the_brute_force_front_with_ids_and_choices(
    written: tuple[dict[str, Any], Path],
) -> None:
    document, _ = written
    space, rows = small_space(), small_totals()
    front = document["front"]
    assert front["capacity"] == "macs" and document["front_size"] == len(front["members"])
    expected = brute_front(rows, Budgets(macs=3_000_000_000), "macs")
    assert {m["index"] for m in front["members"]} == expected and len(expected) > 5
    for member in front["members"]:
        choices = space.choices(member["index"])
        assert member["k"] == [c.k for c in choices]
        assert member["m"] == [c.m for c in choices]
        assert member["n_layers"] == [c.n_layers for c in choices]
        t = rows[member["index"]]
        assert (member["params"], member["macs"], member["cio"]) == (t.params, t.macs, t.cio)
        assert member["macs"] <= 3_000_000_000 and "latency_s" not in member
    macs = [m["macs"] for m in front["members"]]
    assert macs == sorted(macs)
    for a in front["members"]:
        assert not any(dominates(b, a, "macs") for b in front["members"])
    # The ranked rows of rank 1 are front members, under the same id.
    ids = {m["id"]: m["index"] for m in front["members"]}
    assert all(r["id"] in ids for r in document["candidates"] if r["rank"] == 1)


def test_ranked_rows_and_definitions_are_unchanged_beside_the_front(
    written: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    document, out = written
    capsys.readouterr()
    argv = ["search", *CLI_FLAGS, "--budget-macs", "3G", "--top", "4", "--format", "json"]
    assert main(argv) == 0
    shown = json.loads(capsys.readouterr().out)  # no --out: no definitions
    assert [r["id"] for r in shown["candidates"]] == [r["id"] for r in document["candidates"]]
    assert shown["front"] == document["front"]  # the JSON output holds the front too
    assert SearchFront.read(out / "front.json").front is not None
    names = sorted(p.name for p in out.iterdir())
    assert names == ["candidates", "front.json", "sample.json"]


def test_table_says_the_fronts_size_and_span(
    written: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    document, _ = written
    capsys.readouterr()
    assert main(["search", *CLI_FLAGS, "--budget-macs", "3G", "--objective", "cio"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("front:")]
    members = document["front"]["members"]
    lo, hi = format_count(members[0]["macs"]), format_count(members[-1]["macs"])
    assert lines == [
        f"front: {len(members)} candidates, {lo}-{hi} MACs (every rank-1 candidate of CIO "
        "against MACs)"
    ]  # under --objective cio too: the front does not depend on the ranking


def test_front_members_carry_their_predicted_latency(device_file: Path) -> None:
    space = with_flags(default_space(load_template(TINY)), "4,8", "1.6", "2,4")
    objective = get_objective("latency", device_model=device_file)
    result = sweep(
        space,
        InputShape.of_image(32),
        Budgets(),
        ParetoRanker("macs", 1),
        features=objective.features,
    )
    front = whole_front(result)
    assert front is not None and front.members
    costs = PartCosts(space, (1, 3, 32, 32), features=objective.features)
    for member in front.members:
        expected = costs.total_extra(space.choices(member.index))[LATENCY]
        assert member.latency_s == pytest.approx(expected, rel=1e-12) and expected > 0


@settings(max_examples=15, deadline=None)
@given(
    space=tiny_spaces(),
    widths=st.lists(
        st.sets(st.sampled_from([16, 24, 40, 64]), min_size=1, max_size=2), min_size=2, max_size=2
    ),
    sizes=st.lists(st.sampled_from([24, 32, 40]), min_size=2, max_size=3, unique=True),
    macs_fraction=st.floats(0.3, 1.2),
    capacity=st.sampled_from(["macs", "params"]),
)
def test_front_over_widths_and_input_sizes_equals_brute_force(
    space: SearchSpace,
    widths: list[set[int]],
    sizes: list[int],
    macs_fraction: float,
    capacity: str,
) -> None:
    """``--widths`` and ``--input 24,32``: the front over every (candidate, size), summed part
    by part here, is the sweep's, each member tagged with its widths and size."""
    space = with_flags(space, None, None, None, "/".join(",".join(map(str, w)) for w in widths))
    shapes = [(1, 3, s, s) for s in sizes]
    rows = tuple(t for shape in shapes for t in totals(space, shape))  # size-major, as indexed
    budgets = Budgets(macs=int(macs_fraction * max(t.macs for t in rows)))
    expected = brute_front(rows, budgets, capacity)
    if not expected:
        return
    result = sweep(
        space, [InputShape((s,)) for s in shapes], budgets, ParetoRanker(capacity, 1), chunk=7
    )
    assert result.front is not None
    found = {
        sizes.index(c.input[0]) * space.size + (c.index or 0)
        for c in result.front.members
        if c.input
    }
    assert found == expected and len(result.front.members) == len(expected)
    for member in result.front.members:
        defn = space.definition(member.choices)
        assert isinstance(defn, HarDNetDef)
        assert [c.width for c in member.choices] == [s.transition_channels for s in defn.stages]
    row = whole_front(result)
    assert row is not None and row.members[0].input is not None
    assert row.members[0].widths is not None and len(row.members[0].widths) == 2


def test_cli_widths_and_sizes_reach_front_json(tmp_path: Path) -> None:
    """``hda search --widths ... --input 32,48 --out DIR``: the space file keeps the widths,
    rows and members carry widths and input, ``inputs`` lists the sizes, and the id differs
    from the same search at one size."""
    out, flags = tmp_path / "run", ["search", "--template", TINY, "--widths", "16,24/32,48"]
    assert main([*flags, "--input", "32,48", "--budget-macs", "20M", "--out", str(out)]) == 0
    document = json.loads((out / "front.json").read_text())
    assert document["inputs"] == [[32, 32], [48, 48]] and document["input"] == [32, 32]
    assert [s["widths"] for s in document["space"]["stages"]] == [[16, 24], [32, 48]]
    assert document["space_size"] == 2 * small_tiny_size()
    for row in [*document["candidates"], *document["front"]["members"]]:
        assert row["input"] in ([32, 32], [48, 48])
        assert row["widths"][0] in (16, 24) and row["widths"][1] in (32, 48)
    one = tmp_path / "one"
    assert main([*flags, "--input", "32", "--budget-macs", "20M", "--out", str(one)]) == 0
    single = json.loads((one / "front.json").read_text())
    assert "inputs" not in single and "input" not in single["candidates"][0]
    assert single["id"] != document["id"]


def test_training_candidates_of_several_sizes_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--train-top trains at one --image-size, so a search over several sizes refuses it."""
    flags = ["search", "--template", TINY, "--input", "32,48", "--budget-macs", "20M"]
    train = ["--train-top", "2", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main([*flags, *train]) == 2
    assert "--train-top trains at one --image-size" in capsys.readouterr().err


def small_tiny_size() -> int:
    """The tiny template's default space with two widths in each of its two stages."""
    space = default_space(load_template(TINY))
    return with_flags(space, None, None, None, "16,24/32,48").size


def test_widths_on_a_template_without_transitions_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no transition widths"):
        with_flags(
            default_space(load_template("fchardnet70"), "fchardnet70"), None, None, None, "x1"
        )
