"""Definition files: JSON round trips and one-line errors naming the bad field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 99}, "d.json is newer version 99 of 'hda-definition'"),
        ({"format": None}, "d.json is not an hda definition (format None)"),
        ({"stages.0.block.grmul": float("nan")}, "stages[0].block.grmul: expected a finite number"),
        ({"head.num_classes": 0}, "d.json: head: num_classes must be >= 1, got 0"),
        ({"stem.in_channels": 0}, "d.json: stem: in_channels must be >= 1, got 0"),
        (
            {"stages.1.block.n_layers": 0},
            "d.json: stages[1].block: n_layers must be from 1 to 256, got 0",
        ),
    ],
)
def test_bad_definition_files_name_the_file_and_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    # Each of these used to be accepted silently (or crash with a ValueError for NaN), or was
    # refused without the file and field path.
    data = to_dict(get_definition("hardnet39ds"))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UsageError) as info:
        analyze(str(path))
    assert message in str(info.value) and "\n" not in str(info.value)
