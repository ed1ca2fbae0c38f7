"""Terminal tables at 80 columns (``COLUMNS=80``): every line fits, and the key column (layer,
model, predictor, candidate id) is shown whole on every row; what is left out is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardnet_analysis.cli.main import main
from hardnet_analysis.present.fit import Col, FitTable, abbreviate

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")


def at_80(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
    """What `argv` prints to stdout with ``COLUMNS=80``; every line at most 80 wide."""
    monkeypatch.setenv("COLUMNS", "80")
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    return out


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def whole_cells(out: str) -> list[str]:
    """The first cell of each table row (``│ key │``) or simple-box row (``  key  ``)."""
    cells = []
    for line in out.splitlines():
        if line.startswith("│"):
            cells.append(line.split("│")[1].strip())
    return cells


def test_abbreviate_keeps_both_ends() -> None:
    assert abbreviate("condensenet74_c4_g4_converted", 12) == "conden…erted"
    assert abbreviate("short", 12) == "short"


def test_fit_table_drops_least_important_first_and_puts_back_what_fits() -> None:
    from rich.console import Console

    columns = [Col("key"), Col("a" * 30, drop=1), Col("b", drop=2), Col("c" * 10, shorten=True)]
    table = FitTable("t", columns)
    table.add_row("k" * 20, "x", "y", "z" * 40)
    console = Console(width=60, record=True)
    console.print(table)
    text = console.export_text()
    assert "k" * 20 in text and "b " in text and "not shown at this width: " + "a" * 30 in text
    assert "z…z" in text and max(len(line) for line in text.splitlines()) <= 60


def test_cio_keeps_layer_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    layers = as_json(capsys, "cio", "densenet121")
    assert isinstance(layers, dict)
    names = [r["name"] for r in layers["layers"] if r["op"] in ("conv", "linear")]
    out = at_80(capsys, monkeypatch, "cio", "densenet121")
    assert whole_cells(out)[: len(names)] == names  # features.denseblock4.denselayer16.conv2
    assert "not shown at this width: output, op" in out
    by_block = at_80(capsys, monkeypatch, "cio", "condensenet74_c4_g4_converted", "--by-block")
    assert "denseblock5" in whole_cells(by_block)


def test_models_keeps_model_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = as_json(capsys, "models", "--family", "condensenet")
    assert isinstance(models, list)
    out = at_80(capsys, monkeypatch, "models", "--family", "condensenet")
    assert whole_cells(out) == [m["model"] for m in models]
    assert len(set(whole_cells(out))) == len(models)  # no two rows read the same


def test_profile_and_correlate_keep_layers_and_predictors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, profiled_runs: list[Path]
) -> None:
    run = json.loads(profiled_runs[0].read_text())
    out = at_80(capsys, monkeypatch, "correlate", *map(str, profiled_runs))
    keys = [line.split("│")[2].strip() for line in out.splitlines() if line.startswith("│ ")]
    assert {"model_bytes", "model_fused_bytes", "cio", "macs"} <= set(keys)
    from hardnet_analysis.documents.profile_run import ProfileRun

    loaded = ProfileRun.read(profiled_runs[0])
    monkeypatch.setattr("hardnet_analysis.cli.profile._one", lambda *args: loaded)
    out = at_80(capsys, monkeypatch, "profile", TINY, "--input", "32")
    names = [layer["name"] for layer in run["layers"]]
    assert whole_cells(out)[: len(names)] == names


def test_search_keeps_candidate_ids(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["search", "--budget-macs", "4.5G", "--k", "x1", "--n-layers", "x0.75,x1", "--top", "4"]
    front = as_json(capsys, *argv)
    assert isinstance(front, dict)
    out = at_80(capsys, monkeypatch, *argv)
    ids = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and line.split()]
    assert [c["id"] for c in front["candidates"]] == [i for i in ids if len(i) == 12][:4]
    assert "k per stage" in out and "not shown at this width: rank" in out
