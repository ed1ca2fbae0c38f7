"""The official HarDNets: published figures and the paper's CIO (the generic checks, analytic ==
traced == hooks == numel, are in test_families.py)."""

from __future__ import annotations

import pytest

from hardnet_analysis import analyze
from hardnet_analysis.families import get_definition, list_models
from hardnet_analysis.families.hardnet.definition import PUBLISHED

ZOO = list_models(family="hardnet")

# Official README figures (224x224): params to the published 3 significant digits; MACs within
# 3% or half a unit of the last published digit: the counts computed here are 4.246 G, 9.074 G,
# 0.4295 G and 0.7753 G against the rounded 4.3 / 9.1 / 0.44 / 0.8 G published (the README does
# not say how it counted).
MACS_LAST_DIGIT = {
    "hardnet68": 0.1e9,
    "hardnet85": 0.1e9,
    "hardnet39ds": 0.01e9,
    "hardnet68ds": 0.1e9,
}


@pytest.mark.parametrize("name", ZOO)
def test_params_and_macs_match_published(name: str) -> None:
    totals = analyze(name).totals
    published = PUBLISHED[name]
    assert abs(totals.params - published["params"]) <= 0.05e6
    tolerance = max(0.03 * published["macs"], MACS_LAST_DIGIT[name] / 2)
    assert abs(totals.macs - published["macs"]) <= tolerance


def test_hardnet68_cio_matches_paper() -> None:
    # HarDNet paper, ImageNet table: HarDNet-68 CIO 11.5 M at 224x224.
    assert abs(analyze("hardnet68").totals.cio - 11.5e6) <= 0.05e6


def test_definition_and_name_give_the_same_analysis() -> None:
    assert analyze(get_definition("hardnet85")).layers == analyze("hardnet85").layers


def test_counts_scale_with_batch() -> None:
    one, four = analyze("hardnet39ds").totals, analyze("hardnet39ds", batch=4).totals
    assert (four.macs, four.cio, four.params) == (4 * one.macs, 4 * one.cio, one.params)
