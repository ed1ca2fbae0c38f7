"""`hda search`: output formats, --out files and stable ids, space files, objectives, errors."""

from __future__ import annotations

import csv
import io
import json
from functools import cache
from pathlib import Path

import pytest

from hardnet_analysis import analyze
from hardnet_analysis.cli import search as search_cli
from hardnet_analysis.cli.main import main
from hardnet_analysis.search.objectives import objective_names

#: 32 candidates: HarDNet-68's k, n_layers of 1x or 0.5x per stage, m = 1.7.
SMALL = ("--k", "x1", "--n-layers", "x0.5,x1", "--m", "1.7")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["search", *argv])
    except SystemExit as exc:  # argparse exits on usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@cache
def small_space_totals() -> list[tuple[int, int, int]]:
    """(params, MACs, CIO) of all 32 small-space candidates, by analyze() on each definition."""
    from hardnet_analysis.search.space import default_space, load_template, with_flags

    space = with_flags(default_space(load_template("hardnet68")), "x1", "1.7", "x0.5,x1")
    rows = []
    for i in range(space.size):
        t = analyze(space.definition(space.choices(i))).totals
        rows.append((t.params, t.macs, t.cio))
    return rows


def test_default_search_table_shows_template_with_official_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "--budget-macs", "4.5G")
    assert code == 0
    assert "3,037,500 candidates" in out and "template" in out
    assert "17.6M" in out and "4.25G" in out and "11.5M" in out
    assert "candidates swept" in err  # plain progress lines when stderr is not a terminal


def test_json_front_is_ranked_and_within_budget(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SMALL, "--budget-macs", "4e9", "--format", "json", "--top", "50")
    doc = json.loads(out)
    assert code == 0 and doc["format"] == "hda-search-front" and doc["version"] == 2
    assert doc["space_size"] == 32 and doc["input"] == [224, 224]
    assert doc["budgets"] == {"macs": 4_000_000_000}
    expected = sorted(t for t in small_space_totals() if t[1] <= 4_000_000_000)
    assert doc["feasible"] == len(expected)
    got = sorted((c["params"], c["macs"], c["cio"]) for c in doc["candidates"])
    assert got == expected  # every feasible candidate is ranked (32 < --top 50)
    ranks = [c["rank"] for c in doc["candidates"]]
    assert ranks == sorted(ranks) and ranks[0] == 1
    assert doc["template_metrics"]["cio"] == 11_468_940


def test_csv_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SMALL, "--format", "csv", "--top", "5")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 5
    assert {"id", "rank", "k", "m", "n_layers", "params", "macs", "cio", "min_moc"} <= set(rows[0])
    assert rows[0]["k"] == "14/16/20/40/160"


def test_out_writes_front_and_definitions_with_stable_ids(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fronts = []
    for name in ("a", "b"):
        code, _, _ = run(capsys, *SMALL, "--out", str(tmp_path / name), "--emit", "4")
        assert code == 0
        fronts.append(json.loads((tmp_path / name / "front.json").read_text()))
    ids = [[c["id"] for c in f["candidates"]] for f in fronts]
    assert ids[0] == ids[1] and len(set(ids[0])) == 4
    assert fronts[0]["id"] == fronts[1]["id"]  # the same search: the same front
    for c in fronts[0]["candidates"]:
        assert c["definition"] == f"candidates/{fronts[0]['id']}/{c['id']}.json"
        a = (tmp_path / "a" / c["definition"]).read_bytes()
        assert a == (tmp_path / "b" / c["definition"]).read_bytes()
        totals = analyze(str(tmp_path / "a" / c["definition"])).totals
        assert (c["params"], c["macs"], c["cio"]) == (totals.params, totals.macs, totals.cio)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["candidates", "front.json", "sample.json"]  # the sample for `hda report`


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_write_space_then_read_it_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"space{suffix}"
    code, out, _ = run(capsys, *SMALL, "--write-space", str(path))
    assert code == 0 and "32 candidates" in out
    code, out, _ = run(capsys, "--space", str(path), "--format", "json", "--top", "3")
    assert code == 0 and json.loads(out)["space_size"] == 32


def test_default_space_file_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "space.toml"
    assert run(capsys, "--write-space", str(path))[0] == 0
    text = path.read_text()
    assert 'template = "hardnet68"' in text and "[[stages]]" in text
    from hardnet_analysis.search.space_file import load_space

    assert load_space(path).size == 3_037_500


def test_single_objective_ranks_by_that_metric(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SMALL, "--objective", "cio", "--format", "json", "--top", "32")
    cios = [c["cio"] for c in json.loads(out)["candidates"]]
    assert code == 0 and cios == sorted(t[2] for t in small_space_totals())


def test_latency_objective_from_a_calibration_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = {
        "format": "hda-latency-model",
        "version": 1,
        "device": "test GPU",
        "features": ["macs", "cio"],
        "coef": [1e-13, 2e-10],
        "intercept": 1e-4,
        "units": "s",
    }
    path = tmp_path / "latency.json"
    path.write_text(json.dumps(model))
    code, out, _ = run(
        capsys, *SMALL, "--objective", "latency", "--calibration", str(path), "--format", "json"
    )
    doc = json.loads(out)
    assert code == 0 and doc["objective"] == "latency"
    assert doc["objective_info"]["device"] == "test GPU"
    predicted = sorted(1e-4 + 1e-13 * t[1] + 2e-10 * t[2] for t in small_space_totals())
    scores = [c["score"] for c in doc["candidates"]]
    assert scores == pytest.approx(predicted[: len(scores)], rel=1e-12)


def test_objective_choices_match_the_registry() -> None:
    assert list(search_cli.OBJECTIVE_CHOICES) == ["pareto", *objective_names()]


def test_unmet_budget_says_so_with_the_smallest_candidate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, *SMALL, "--budget-macs", "1M")
    smallest = min(small_space_totals(), key=lambda t: t[1])
    assert code == 2 and out == ""
    line = err.strip().splitlines()[-1]
    assert line.startswith("hda search: error: no candidate of the 32 meets the budgets")
    assert "smallest macs" in line and f"MACs {smallest[1] / 1e9:.3g}G" in line


# Bad inputs of `hda search` are rows of the CLI contract table (tests/test_cli_contract.py).


def test_readme_space_file_example_loads(tmp_path: Path) -> None:
    from hardnet_analysis.search.space_file import load_space

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "space.toml"
    path.write_text(example)
    space = load_space(path)
    assert space.size == 2 * (3 * 2) * 2 * 2 * 2 * 1  # m x per-stage k x n_layers


def test_sample_is_seeded_and_flags_the_budgets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tiny = str(Path(__file__).parent / "data" / "tinyhardnet.json")
    argv = ["--template", tiny, "--input", "32", "--k", "x0.75,x1", "--m", "1.5,1.6"]
    for name in ("a", "b"):
        out = ["--out", str(tmp_path / name), "--sample", "10", "--budget-macs", "1M"]
        assert run(capsys, *argv, *out)[0] == 0
    first, second = (json.loads((tmp_path / n / "sample.json").read_text()) for n in "ab")
    assert first == second and len(first["candidates"]) == 10 and first["space_size"] == 72
    assert all(c["feasible"] == (c["macs"] <= 1_000_000) for c in first["candidates"])
    assert {c["feasible"] for c in first["candidates"]} == {True, False}


def test_a_sample_larger_than_the_space_is_said(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, *SMALL, "--out", str(tmp_path / "s"), "--sample", "100")
    assert code == 0
    assert "hda: warning: --sample 100 is more than the space's 32 candidates" in err
    sample = json.loads((tmp_path / "s" / "sample.json").read_text())
    assert len(sample["candidates"]) == 32
    code, _, err = run(capsys, *SMALL, "--out", str(tmp_path / "t"))  # the default: no word
    assert code == 0 and "--sample" not in err
