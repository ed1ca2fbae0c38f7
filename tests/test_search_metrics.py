"""The search's metric list is declared once: the containers, objectives, budgets and CLI
choices all follow `hardnet_analysis.search_metrics.METRICS`."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from hardnet_analysis.cli.search import OBJECTIVE_CHOICES
from hardnet_analysis.search.evaluate import Metrics, PartCost
from hardnet_analysis.search.objectives import OBJECTIVES
from hardnet_analysis.search.sweep import Budgets, Candidate, is_floor
from hardnet_analysis.search_metrics import METRIC_NAMES, METRICS, check_fields, metric


def test_containers_have_one_field_per_metric() -> None:
    for cls, others in ((PartCost, {"out_shapes"}), (Metrics, {"index", "extra"})):
        assert {f.name for f in fields(cls)} == set(METRIC_NAMES) | others
    assert set(METRIC_NAMES) <= {f.name for f in fields(Candidate)}


def test_a_container_that_misses_a_metric_fails() -> None:
    @dataclass(frozen=True)
    class Short:
        params: int

    with pytest.raises(TypeError, match=r"missing .*'cio'"):
        check_fields(Short)


def test_objectives_budgets_and_choices_follow_the_specs() -> None:
    assert list(OBJECTIVES) == list(METRIC_NAMES)
    for spec in METRICS:
        assert OBJECTIVES[spec.name].higher_is_better is not spec.lower_is_better
    assert OBJECTIVES["cio"].description == "memory traffic (CIO elements), lower first"
    assert OBJECTIVE_CHOICES[1:-1] == METRIC_NAMES
    assert [is_floor(f.name) for f in fields(Budgets)] == [False] * 3 + [True, False]
    assert [metric(f.name).budget_is_floor for f in fields(Budgets)[:4]] == [False] * 3 + [True]
    assert Budgets(macs=4_500_000_000, min_moc=19.0).describe() == "macs <= 4.5G, min MoC >= 19"
    both = Budgets(macs=4_500_000_000, latency_s=0.012)  # the latency bound is one more budget
    assert both.describe() == "macs <= 4.5G, predicted latency <= 12 ms"
    assert both.on_metrics() == {"macs": 4_500_000_000}
    assert both.info() == {"budget_latency_s": 0.012}  # where front.json has always kept it


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: params, macs, cio, min_moc, act_bytes"):
        metric("flops")
