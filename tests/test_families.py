"""Conformance: every registered family and model passes the same checks, and a family added as
one folder (the toy family in ``tests/families``) shows up everywhere with no edit elsewhere.

Per model: the analytic graph equals the trace of the torch model node by node; MACs, CIO and
conv count equal an independent hook counter; params equal ``sum(p.numel())``; the definition
survives a JSON round trip and its file analyses like the name; the analytic graph's parameter
owners are exactly the torch model's (the state-dict layout the graph names).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import hardnet_analysis.families as families_pkg
from hardnet_analysis import analyze, create_model
from hardnet_analysis.cli.main import main
from hardnet_analysis.families import (
    get_definition,
    get_family,
    list_families,
    list_models,
    registry,
)
from hardnet_analysis.families.serialize import from_dict, save_definition, to_dict
from hardnet_analysis.resolve import native_input_size
from tests.hookcount import hook_count

BUILT_IN = {
    "centernet",
    "condensenet",
    "densenet",
    "fcdensenet",
    "fchardnet",
    "hardnet",
    "resnet",
}


def check_model(name: str, tmp_path: Path) -> None:
    """Every conformance check on registered model `name` (see the module docstring)."""
    defn = get_definition(name)
    height, width = native_input_size(defn)
    with torch.device("meta"):
        model = create_model(name)
    # Odd, non-square input and batch 2: analytic == traced, node by node.
    odd = (height + 1, width - 7)
    analytic = analyze(name, odd, batch=2)
    traced = analyze(model, odd, batch=2, in_channels=defn.in_channels)
    assert (analytic.source, traced.source) == ("analytic", "traced")
    assert traced.layers == analytic.layers
    assert traced.unhandled == analytic.unhandled == ()
    # Independent counts at the native input, batch 1.
    totals = analyze(name).totals
    with torch.device("meta"):
        counted = hook_count(model, torch.empty(1, defn.in_channels, height, width))
    assert (totals.macs, totals.cio, totals.conv_layers) == (
        counted.macs,
        counted.cio,
        counted.convs,
    )
    assert totals.params == sum(p.numel() for p in model.parameters())
    # JSON round trip, and the file analyses like the name (at its own native input).
    assert from_dict(json.loads(json.dumps(to_dict(defn)))) == defn
    path = save_definition(defn, tmp_path / f"{name}.json")
    assert analyze(str(path)).totals == totals
    # The graph's parameter owners are the modules that hold parameters in the torch model.
    owners = {n.rsplit(".", 1)[0] for n, _ in model.named_parameters()}
    keys = {r.name for r in analytic.layers if r.params}
    assert keys == owners


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_conforms(name: str, tmp_path: Path) -> None:
    check_model(name, tmp_path)


def test_every_family_is_registered_once_with_its_parts() -> None:
    assert set(list_families()) >= BUILT_IN
    for family in BUILT_IN:
        spec = get_family(family)
        assert list_models(family), f"{family} registers no model"
        for name in list_models(family):
            assert isinstance(get_definition(name), spec.definition)


def test_unknown_family_in_a_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "hda-definition", "version": 1, "family": "nope"}))
    with pytest.raises(
        Exception, match=r"x.json: family 'nope' is not one of centernet, condensenet"
    ):
        analyze(str(path))


# --- a family added as a folder ----------------------------------------------------------------


@pytest.fixture
def toy_family(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put ``tests/families`` on the families package's search path, as a folder under
    ``hardnet_analysis/families`` would be; the registry is restored afterwards."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    path = [*families_pkg.__path__, str(Path(__file__).parent / "families")]
    monkeypatch.setattr(families_pkg, "__path__", path)
    yield


@pytest.mark.usefixtures("toy_family")
def test_a_new_family_folder_shows_up_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "toynet" in list_families()
    assert "toynet_s" in list_models()
    assert main(["models", "--family", "toynet", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["model"], row["input"]) == ("toynet_s", 48)
    assert main(["cio", "toynet_s", "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totals"]["cio"] == analyze("toynet_s").totals.cio > 0
    model = create_model("toynet_s", num_classes=3)
    assert type(model).__name__ == "ToyNet"
    assert model.get_submodule("classifier").out_features == 3
    check_model("toynet_s", tmp_path)


# --- definitions carry classes, input channels and native size ---------------------------------


def test_definition_in_channels_are_analysed() -> None:
    # analyze() used to ignore a definition's in_channels (always 3): for HarDNet-39DS with one
    # input channel it gave 3,488,228 params while its model has 3,487,796.
    from dataclasses import replace

    from hardnet_analysis.families.hardnet import HarDNetDef

    defn = get_definition("hardnet39ds")
    assert isinstance(defn, HarDNetDef)
    gray = replace(defn, stem=replace(defn.stem, in_channels=1))
    with torch.device("meta"):
        params = sum(p.numel() for p in create_model(gray).parameters())
    totals = analyze(gray).totals
    assert totals.params == params == 3_487_796
    assert analyze(gray).input_shape == (1, 1, 224, 224)


def test_with_num_classes_resizes_every_family() -> None:
    for name in list_models():
        defn = get_definition(name).with_num_classes(7)
        assert defn.num_classes == 7
        # The first output: (1, 7), a dense (1, 7, H, W), or a detector's heatmap before its
        # box maps (CenterNet's hm, then wh).
        first = next(r for r in analyze(defn).layers if r.op == "output")
        assert first.out_shape[:2] == (1, 7)
