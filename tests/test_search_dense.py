"""The search on a dense template (fchardnet70: 5 encoder + 4 decoder blocks) is exact: a
decoder stage's input widths depend on the previous decoder block and on its skip's encoder
block, and every sampled candidate still equals `analyze()` of its definition; emitted
definitions equal `analyze()` and an independent hook count of their torch models."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hardnet_analysis import analyze, create_model
from hardnet_analysis.cli.main import main
from hardnet_analysis.families.serialize import load_definition
from hardnet_analysis.search.emit import write_front
from hardnet_analysis.search.evaluate import GridEvaluator, PartCosts
from hardnet_analysis.search.space import default_space, load_template, with_flags
from hardnet_analysis.search.sweep import Budgets, ParetoRanker, sweep, template_candidate
from hardnet_analysis.shapes import InputShape
from tests.hookcount import hook_count

NATIVE = (1, 3, 1024, 2048)


@cache
def grid(shape: tuple[int, ...] = NATIVE, per_stage_m: bool = False) -> GridEvaluator:
    space = default_space(load_template("fchardnet70"), "fchardnet70")
    if per_stage_m:  # per-stage m and other lists: decoder inputs vary in other ways
        space = with_flags(
            space, "x0.875,x1.25", "1.6,1.7/1.7/1.7/1.7/1.7/1.6,1.8/1.7/1.7/1.7", None
        )
    return GridEvaluator(space, PartCosts(space, shape))


def test_default_space_and_the_template_candidate_equal_analyze() -> None:
    g = grid()
    assert g.space.size == 4 * 4**9 == 1_048_576
    template = template_candidate(g.space, g)
    totals = analyze("fchardnet70").totals
    assert template.index is not None
    assert (template.params, template.macs, template.cio) == (
        totals.params,
        totals.macs,
        totals.cio,
    )
    # The decoder stages are measured once per (block, previous width, skip width) they meet.
    assert g.costs.measured > sum(len(o) for grp in g.space.groups for o in grp.options)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_candidate_equals_analyze_of_its_definition(data: st.DataObject) -> None:
    per_stage_m = data.draw(st.booleans())
    shape = data.draw(st.sampled_from([NATIVE, (2, 3, 360, 480)]))
    g = grid(shape, per_stage_m)
    index = data.draw(st.integers(0, g.space.size - 1))
    m = g.at([index])
    totals = analyze(g.space.definition(g.space.choices(index)), shape[2:], batch=shape[0]).totals
    assert (int(m.params[0]), int(m.macs[0]), int(m.cio[0]), int(m.act_bytes[0])) == (
        totals.params,
        totals.macs,
        totals.cio,
        totals.act_bytes,
    )
    assert float(m.min_moc[0]) == totals.min_moc


def test_emitted_candidates_meet_the_budget_and_equal_hook_counts(tmp_path: Path) -> None:
    g = grid()
    result = sweep(
        g.space, InputShape((NATIVE,)), Budgets(cio=200_000_000), ParetoRanker("macs", 3)
    )
    write_front(tmp_path, result, emit=6)
    front = json.loads((tmp_path / "front.json").read_text())
    for row in random.Random(0).sample(front["candidates"], 3):
        defn = load_definition(tmp_path / row["definition"])
        totals = analyze(defn).totals  # at the definition's own 1024x2048
        assert (row["params"], row["macs"], row["cio"]) == (totals.params, totals.macs, totals.cio)
        assert totals.cio <= 200_000_000
        with torch.device("meta"):
            model = create_model(defn)
        counted = hook_count(model, torch.empty(*NATIVE, device="meta"))
        assert (counted.macs, counted.cio) == (totals.macs, totals.cio)
        assert sum(p.numel() for p in model.parameters()) == totals.params


def test_cli_searches_at_the_template_input(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["search", "--template", "fchardnet70", "--budget-cio", "200M", "--top", "2"]
    assert main([*args, "--k", "x1", "--n-layers", "x0.5,x1", "--format", "json"]) == 0
    front = json.loads(capsys.readouterr().out)
    assert (front["input"], front["space_size"]) == ([1024, 2048], 4 * 2**9)
    assert all(row["cio"] <= 200_000_000 for row in front["candidates"])
    # a dense template trains per pixel: without --task segmentation, refused before the sweep
    assert main([*args, "--train-top", "1", "--out", "unused"]) == 2
    assert "needs --task segmentation" in capsys.readouterr().err
