"""Definition files: JSON round trips and one-line errors naming the bad field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given

from hardnet_analysis import analyze, create_model
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families import get_definition, list_models
from hardnet_analysis.families.hardnet import HarDNetDef
from hardnet_analysis.families.serialize import (
    from_dict,
    load_definition,
    save_definition,
    to_dict,
)
from tests.strategies import hardnets


@given(hardnets())
def test_json_round_trip(defn: HarDNetDef) -> None:
    assert from_dict(json.loads(json.dumps(to_dict(defn)))) == defn


@pytest.mark.parametrize("name", list_models())
def test_zoo_files_analyse_like_the_names(tmp_path: Path, name: str) -> None:
    # The file carries the native input size (CIFAR models: 32), so no size is needed; files
    # used to be analysed at 224 whatever their model was made for.
    path = save_definition(get_definition(name), tmp_path / f"{name}.json")
    assert analyze(str(path)).input_shape == analyze(name).input_shape
    assert analyze(str(path)).totals == analyze(name).totals


def test_create_model_from_file(tmp_path: Path) -> None:
    path = save_definition(get_definition("hardnet39ds"), tmp_path / "d.json")
    model = create_model(str(path))
    assert sum(p.numel() for p in model.parameters()) == analyze("hardnet39ds").totals.params


def _edited(**changes: object) -> dict[str, object]:
    data = to_dict(get_definition("hardnet68"))
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_edited(family="alexnet"), "family 'alexnet' is not one of"),
        (_edited(colour="red"), "unknown field"),
        (_edited(stem={"channels": [32]}), "stem.channels: expected 2 values"),
        (_edited(stem={"channels": [32, 64], "downsample": "avgpool"}), "'avgpool' is not one of"),
        (_edited(head={"dropout": "lots"}), "head.dropout: expected float"),
        (_edited(stages=[]), "at least one stage"),
    ],
)
def test_bad_definitions(data: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        from_dict(data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load_definition(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_definition(broken)
