"""The front documents: typed round trips, and one-line errors for wrong, old or broken files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.fronts import (
    FRONT_FILE,
    FrontMember,
    SearchFront,
    TrainedCandidate,
    TrainedFront,
    WholeFront,
)
from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json
from hardnet_analysis.search.emit import FrontKey
from hardnet_analysis.search.space import default_space, load_template
from hardnet_analysis.search.space_file import space_from_dict
from hardnet_analysis.search.sweep import Budgets
from hardnet_analysis.shapes import InputShape
from tests.test_pool import fake_candidate, fake_front

#: The fronts committed under results/, written by earlier versions of hda.
RESULTS = Path(__file__).parents[1] / "results"
COMMITTED = sorted(RESULTS.glob("*/candidates/front.json"))


def front() -> SearchFront:
    return fake_front(
        (fake_candidate("aa", 1, 4000, "candidates/aa.json"), fake_candidate("bb", 2, 3000, None))
    )


def test_search_front_round_trips(tmp_path: Path) -> None:
    path = front().write(tmp_path / FRONT_FILE)
    assert SearchFront.read(path) == front()
    row = json.loads(path.read_text())["candidates"][0]
    assert list(row)[:6] == ["id", "rank", "k", "m", "n_layers", "params"]
    assert "definition" not in json.loads(path.read_text())["candidates"][1]


def test_whole_front_round_trips_and_files_without_it_still_read(tmp_path: Path) -> None:
    metrics = {"params": 10, "macs": 2000, "cio": 300, "min_moc": 1.5, "act_bytes": 40}
    members = (
        FrontMember("aa", 7, (6, 8), (1.6, 1.6), (4, 4), metrics, latency_s=0.0125),
        FrontMember("cc", 9, (8, 8), (1.7, 1.7), (2, 4), {**metrics, "macs": 3000, "cio": 400}),
    )
    document = replace(front(), front=WholeFront("macs", members))
    path = document.write(tmp_path / FRONT_FILE)
    assert SearchFront.read(path) == document
    written = json.loads(path.read_text())
    assert list(written)[-2:] == ["candidates", "front"]  # beside the ranked rows
    first, second = written["front"]["members"]
    assert first["latency_s"] == 0.0125 and "latency_s" not in second
    assert list(first)[:5] == ["id", "index", "k", "m", "n_layers"]
    written.pop("front")  # as hda wrote version 2 before it kept the whole front
    older = atomic_write_json(tmp_path / "older.json", written)
    assert SearchFront.read(older) == front() and SearchFront.read(older).front is None


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parts[-3])
def test_a_committed_front_reads_back_equal(path: Path) -> None:
    """An existing front.json reads back and writes the same JSON, key for key and in order."""
    assert COMMITTED, "no committed front.json under results/"
    written = json.loads(path.read_text())
    again = SearchFront.read(path).to_dict()
    assert again == written and list(again) == list(written)


# kind-sweep's front is left out: an older hda wrote its id (hda at main gives its command
# another, 7d028a3ebe88, as this one does).
@pytest.mark.parametrize("name", ["predict-sweep", "thread-sweep"])
def test_a_committed_fronts_id_comes_back_from_a_key_holding_an_input_shape(name: str) -> None:
    """A `FrontKey` holding the search's `InputShape` (rebuilt from the document's (h, w) and
    batch) hashes to the id the committed front.json was written under: carrying the type
    changed no front's id."""
    path = RESULTS / name / "candidates" / "front.json"
    held = SearchFront.read(path)
    info = dict(held.objective_info)
    latency = info.pop("budget_latency_s", None)  # `recorded_info` adds it back
    assert set(held.budgets) == {"macs"}  # these searches bound only MACs
    key = FrontKey(
        space_from_dict(held.space, str(path)),
        InputShape.of_image(held.input, batch=held.batch),
        held.dtype,
        Budgets(macs=int(held.budgets["macs"]), latency_s=latency),
        held.objective,
        info,
    )
    assert key.id == held.id and key.recorded_info == held.objective_info


def test_a_front_key_refuses_what_is_not_one_image() -> None:
    """The search's cost model reads one NCHW image: a key of another input (token ids) is a
    one-line usage error when the key is made, before any sweep."""
    space = default_space(load_template("hardnet39ds"), "hardnet39ds")
    with pytest.raises(UsageError, match="one NCHW image"):
        FrontKey(space, InputShape(((1, 128),), ("int64",)), "fp32", Budgets(), "pareto", {})


def test_trained_front_round_trips(tmp_path: Path) -> None:
    first, second = front().candidates
    done = TrainedCandidate(first, "done", 91.5, 99.0, 90.0, None, "runs/aa", 1, 1)
    failed = TrainedCandidate(second, "failed", None, None, None, "boom", "runs/bb", 3)
    document = TrainedFront("hda-f00d", "sqlite:////x/optuna.db", (done, failed))
    assert TrainedFront.read(document.write(tmp_path / "t.json")) == document


def broken(tmp_path: Path, change: Any) -> Path:
    """front.json after `change` edits its JSON form."""
    document = front().to_dict()
    change(document)
    return atomic_write_json(tmp_path / FRONT_FILE, document)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(format="hda-latency-model"),
            "is not an hda search front (format 'hda-latency-model'); accepted:",
        ),
        (lambda d: d.update(version=1), "is older version 1 of 'hda-search-front'"),
        (lambda d: d.update(version=7), "is newer version 7 of 'hda-search-front'"),
        (
            lambda d: d["candidates"][1].pop("cio"),
            "candidates[1]: missing field 'cio'; accepted: format",
        ),
        (
            lambda d: d["candidates"][0].update(rank="1"),
            "candidates[0].rank: expected int, got '1'",
        ),
        (lambda d: d["template_metrics"].pop("params"), "template_metrics: missing field 'params'"),
        (lambda d: d.pop("candidates"), ": missing field 'candidates'"),
        (lambda d: d.update(input=[16]), "input: expected 2 values, got 1"),
        (
            lambda d: d.update(front={"capacity": "flops", "members": []}),
            "front.capacity: 'flops' is not one of 'macs', 'params'",
        ),
        (
            lambda d: d["budgets"].update(flops=1),
            "budgets: unknown field(s) flops; known: params, macs, cio",
        ),
    ],
)
def test_a_wrong_old_or_broken_front_is_one_line(tmp_path: Path, change: Any, message: str) -> None:
    path = broken(tmp_path, change)
    with pytest.raises(UsageError) as caught:
        SearchFront.read(path)
    text = str(caught.value)
    assert text.startswith(f"front file {str(path)!r}") and message in text
    assert "\n" not in text


def test_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        TrainedFront.read(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match="is not valid JSON"):
        SearchFront.read(tmp_path / "bad.json")


def test_worker_on_a_broken_front_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken(tmp_path, lambda d: d["candidates"][0].pop("definition"))
    assert main(["search-worker", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no definition for aa, bb" in lines[0]
    broken(tmp_path, lambda d: d["candidates"][0].pop("macs"))
    assert main(["search-worker", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "candidates[0]: missing field 'macs'" in lines[0]
