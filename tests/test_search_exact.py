"""The search's numbers are exact: for sampled candidates they equal `analyze()` on the emitted
definition and an independent hook count on the torch model built from it; emitted candidates
meet every budget; the template is in the default space with its official numbers."""

from __future__ import annotations

import hashlib
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hardnet_analysis import analyze, create_model
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.serialize import load_definition
from hardnet_analysis.search.emit import write_front
from hardnet_analysis.search.evaluate import GridEvaluator, PartCost, PartCosts
from hardnet_analysis.search.space import SearchSpace, default_space, load_template, with_flags
from hardnet_analysis.search.sweep import (
    Budgets,
    ParetoRanker,
    SearchResult,
    sweep,
    template_candidate,
)
from hardnet_analysis.shapes import InputShape
from tests.hookcount import hook_count

BUDGETS = Budgets(macs=4_500_000_000, params=20_000_000, cio=11_000_000, min_moc=19.0)


@cache
def grid(template: str = "hardnet68", shape: tuple[int, ...] = (1, 3, 224, 224)) -> GridEvaluator:
    space = default_space(load_template(template), template)
    return GridEvaluator(space, PartCosts(space, shape))


@cache
def small_space(template: str) -> SearchSpace:
    """A few thousand candidates at most: two k and two n_layers per stage, two m values."""
    space = default_space(load_template(template), template)
    return with_flags(space, "x0.875,x1.25", "1.6,1.75", "x0.5,x1")


def hooks_and_params(definition: Any, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(params, MACs, CIO) of the torch model, counted by forward hooks on the meta device."""
    with torch.device("meta"):
        model = create_model(definition)
    counted = hook_count(model, torch.empty(*shape, device="meta"))
    return sum(p.numel() for p in model.parameters()), counted.macs, counted.cio


def test_default_space_holds_a_million_and_the_template_with_official_numbers() -> None:
    g = grid()
    assert g.space.size >= 1_000_000
    template = template_candidate(g.space, g)
    assert template.index is not None  # measured through the vectorised grid
    assert (template.params, template.macs, template.cio) == (17_565_348, 4_246_114_304, 11_468_940)


@pytest.mark.parametrize(
    ("name", "params", "macs", "cio"),
    [
        ("hardnet85", 36_670_212, 9_074_081_584, 17_469_284),
        ("hardnet39ds", 3_488_228, 429_471_474, 9_818_424),
    ],
)
def test_other_templates_report_their_official_numbers(
    name: str, params: int, macs: int, cio: int
) -> None:
    g = grid(name)
    t = template_candidate(g.space, g)
    assert t.index is not None
    assert (t.params, t.macs, t.cio) == (params, macs, cio)


@given(st.data())
def test_any_candidate_equals_analyze_of_its_definition(data: st.DataObject) -> None:
    g = grid()
    index = data.draw(st.integers(0, g.space.size - 1))
    m = g.at([index])
    totals = analyze(g.space.definition(g.space.choices(index))).totals
    assert int(m.params[0]) == totals.params
    assert int(m.macs[0]) == totals.macs
    assert int(m.cio[0]) == totals.cio
    assert int(m.act_bytes[0]) == totals.act_bytes
    assert float(m.min_moc[0]) == totals.min_moc


@given(st.data())
def test_other_input_batch_and_ds_template_equal_analyze(data: st.DataObject) -> None:
    space = small_space("hardnet39ds")
    g = GridEvaluator(space, PartCosts(space, (2, 3, 320, 480)))
    index = data.draw(st.integers(0, space.size - 1))
    m = g.at([index])
    totals = analyze(space.definition(space.choices(index)), (320, 480), batch=2).totals
    assert (int(m.params[0]), int(m.macs[0]), int(m.cio[0])) == (
        totals.params,
        totals.macs,
        totals.cio,
    )


@pytest.mark.parametrize("template", ["hardnet68", "hardnet85"])
def test_grid_decoding_equals_part_by_part_sums_over_a_whole_space(template: str) -> None:
    space = small_space(template)
    costs = PartCosts(space, (1, 3, 224, 224))
    g = GridEvaluator(space, costs)
    whole = g.evaluate(0, space.groups[0].size)
    for row in range(0, len(whole), 37):
        index = int(whole.index[row])
        t = costs.total(space.choices(index))
        assert (t.params, t.macs, t.cio, t.min_moc) == (
            int(whole.params[row]),
            int(whole.macs[row]),
            int(whole.cio[row]),
            float(whole.min_moc[row]),
        )
    assert space.index_of(space.choices(space.size - 1)) == space.size - 1


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[SearchResult, dict[str, Any], Path]:
    g = grid()
    result = sweep(g.space, InputShape.of_image(224), BUDGETS, ParetoRanker("macs", 10))
    out = tmp_path_factory.mktemp("front")
    write_front(out, result, emit=10)
    return result, json.loads((out / "front.json").read_text()), out


def test_emitted_candidates_equal_analyze_and_hook_counts(
    emitted: tuple[SearchResult, dict[str, Any], Path],
) -> None:
    _, front, out = emitted
    assert front["format"] == "hda-search-front" and len(front["candidates"]) == 10
    sample = random.Random(4).sample(front["candidates"], 3)
    for row in sample:
        path = out / row["definition"]
        totals = analyze(str(path)).totals
        assert (row["params"], row["macs"], row["cio"]) == (totals.params, totals.macs, totals.cio)
        assert row["min_moc"] == totals.min_moc
        assert hooks_and_params(load_definition(path), (1, 3, 224, 224)) == (
            row["params"],
            row["macs"],
            row["cio"],
        )


def test_emitted_candidates_meet_every_budget_and_are_named_by_their_id(
    emitted: tuple[SearchResult, dict[str, Any], Path],
) -> None:
    result, front, out = emitted
    assert front["budgets"] == BUDGETS.given()
    assert result.feasible is not None and result.feasible > 0
    for row in front["candidates"]:
        totals = analyze(str(out / row["definition"])).totals
        assert totals.macs <= 4_500_000_000 and totals.params <= 20_000_000
        assert totals.cio <= 11_000_000 and totals.min_moc is not None
        assert totals.min_moc >= 19.0
        # The id is the documented rule applied to the file: SHA-256 of the canonical JSON
        # without the name, first 12 hex digits.
        document = json.loads((out / row["definition"]).read_text())
        assert document.pop("name") == f"hardnet68-{row['id']}"
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        assert hashlib.sha256(canonical.encode()).hexdigest()[:12] == row["id"]


def test_chunk_size_does_not_change_the_result() -> None:
    space = small_space("hardnet68")
    budgets = Budgets(macs=3_000_000_000)
    results = [
        sweep(space, InputShape.of_image(224), budgets, ParetoRanker("macs", 5), chunk=chunk)
        for chunk in (97, 1 << 18)
    ]
    assert results[0].candidates == results[1].candidates
    assert results[0].feasible == results[1].feasible


@cache
def part_by_part_totals() -> list[PartCost]:
    space = small_space("hardnet68")
    costs = PartCosts(space, (1, 3, 224, 224))
    return [costs.total(space.choices(i)) for i in range(space.size)]


@given(
    macs=st.integers(1_000_000_000, 6_000_000_000),
    params=st.integers(5_000_000, 30_000_000),
    min_moc=st.floats(0, 25),
)
def test_budget_counts_equal_a_candidate_by_candidate_check(
    macs: int, params: int, min_moc: float
) -> None:
    space = small_space("hardnet68")
    budgets = Budgets(macs=macs, params=params, min_moc=min_moc)
    totals = part_by_part_totals()
    expected = sum(t.macs <= macs and t.params <= params and t.min_moc >= min_moc for t in totals)
    try:
        result = sweep(space, InputShape.of_image(224), budgets, ParetoRanker("macs", 3))
    except UsageError as exc:
        assert expected == 0, exc
        assert "no candidate" in str(exc)
        return
    assert result.feasible == expected
    for c in result.candidates:
        assert c.macs <= macs and c.params <= params and c.min_moc >= min_moc


@given(st.data())
def test_a_candidate_with_searched_widths_equals_analyze_and_hook_counts(
    data: st.DataObject,
) -> None:
    """``--widths x0.75,x1``: a stage meets one input width per choice of the stage before, so
    it is measured per (choice, input width); any candidate's sums still equal `analyze()` of
    its definition and a hook count of its torch model, at another input size too."""
    space = with_flags(small_space("hardnet68"), None, None, None, "x0.75,x1")
    size = data.draw(st.sampled_from([224, 256]))
    g = GridEvaluator(space, PartCosts(space, (1, 3, size, size)))
    index = data.draw(st.integers(0, space.size - 1))
    m = g.at([index])
    defn = space.definition(space.choices(index))
    totals = analyze(defn, (size, size)).totals
    assert (int(m.params[0]), int(m.macs[0]), int(m.cio[0]), int(m.act_bytes[0])) == (
        totals.params,
        totals.macs,
        totals.cio,
        totals.act_bytes,
    )
    assert hooks_and_params(defn, (1, 3, size, size)) == (totals.params, totals.macs, totals.cio)
