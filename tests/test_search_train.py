"""`hda search --train-top N`: the emitted candidates are trained and the front re-ranked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardnet_analysis.cli.main import main
from tests.trainkit import tiny_definition_file


def _search(template: Path, out: Path, *extra: str) -> int:
    return main(
        ["search", "--template", str(template), "--k", "4,6", "--n-layers", "2,4", "--m", "1.6",
         "--input", "16", "--out", str(out), "--train-top", "2", "--epochs", "1",
         "--batch-size", "64", "--image-size", "16", "--format", "json", *extra]
    )  # fmt: skip


def test_train_top_trains_and_reranks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tiny_definition_file(tmp_path)
    out = tmp_path / "search"
    assert _search(template, out) == 0
    trained = json.loads((out / "front_trained.json").read_text())
    front = json.loads((out / "front.json").read_text())
    done = [c for c in trained["candidates"] if c["status"] == "done"]
    # The two best candidates of the front were trained, each into its own run directory.
    assert {c["id"] for c in done} == {c["id"] for c in front["candidates"][:2]}
    assert all(0.0 <= c["top1"] <= 100.0 and c["pareto_rank"] >= 1 for c in done)
    assert all((out / "runs" / c["id"] / "last.pt").is_file() for c in done)
    starts = (out / "events.jsonl").read_text().count('"start"')

    # The same command again trains nothing twice.
    capsys.readouterr()
    assert _search(template, out) == 0
    assert (out / "events.jsonl").read_text().count('"start"') == starts
    printed = json.loads(capsys.readouterr().out)  # one JSON document: the re-ranked front
    assert printed["format"] == "hda-search-front-trained"


def test_train_top_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "--budget-macs", "4.5G", "--train-top", "2"])
    assert code == 2
    assert "--train-top needs --out" in capsys.readouterr().err


def test_train_top_flags_default_to_the_recipe() -> None:
    from hardnet_analysis.cli.main import build_parser
    from hardnet_analysis.train.config import MAX_RETRIES, RECIPE

    args = build_parser().parse_args(["search", "--train-top", "2", "--out", "x"])
    for name in ("dataset", "epochs", "batch_size", "lr", "device", "seed"):
        assert getattr(args, name) == getattr(RECIPE, name), name
    assert args.max_retries == MAX_RETRIES


def test_the_recipe_module_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, hardnet_analysis.train.config\nassert 'torch' not in sys.modules\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
