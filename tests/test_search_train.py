"""`hda search --train-top N`: the emitted candidates are trained and the front re-ranked."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from hardnet_analysis.cli.main import main
from tests.trainkit import (
    hda_process,
    hda_run,
    shapes_dataset,
    tiny_definition_file,
    tiny_fchardnet_file,
)


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
    assert all((out / c["run"] / "last.pt").is_file() for c in done)
    assert all(
        c["definition"].startswith(f"candidates/{front['id']}/") for c in front["candidates"]
    )
    assert front["command"].startswith("hda search --template") and front["space"]["stages"]
    assert trained["study"] == f"hda-{front['id']}"
    starts = (out / "events.jsonl").read_text().count('"start"')

    # The same command again trains nothing twice.
    capsys.readouterr()
    assert _search(template, out) == 0
    assert (out / "events.jsonl").read_text().count('"start"') == starts
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # one JSON document: the re-ranked front
    assert printed["format"] == "hda-search-front-trained"
    assert f"study 'hda-{front['id']}'" in captured.err  # the study's name is printed


def test_the_directory_belongs_to_its_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tiny_definition_file(tmp_path)
    out = tmp_path / "search"
    search = ["search", "--template", str(template), "--input", "16", "--out", str(out)]
    assert main([*search, "--k", "4,6", "--format", "json"]) == 0
    first = json.loads((out / "front.json").read_text())
    capsys.readouterr()
    assert main([*search, "--k", "8", "--format", "json"]) == 2  # another space: refused
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"holds front {first['id']}" in err and "--force" in err
    assert json.loads((out / "front.json").read_text()) == first  # left as it was
    assert main([*search, "--k", "8", "--format", "json", "--force"]) == 0
    second = json.loads((out / "front.json").read_text())
    assert second["id"] != first["id"]
    # each front's definitions stay under its own id: none of the old front's are mixed in
    assert {p.name for p in (out / "candidates").iterdir()} == {first["id"], second["id"]}
    listed = {c["definition"] for c in second["candidates"]}
    assert listed == {
        f"candidates/{second['id']}/{p.name}" for p in (out / "candidates" / second["id"]).iterdir()
    }


def test_configuration_error_fails_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "search"
    assert _search(tiny_definition_file(tmp_path), out, "--data", str(tmp_path / "nodir")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hda search: error: data directory") and "Traceback" not in err[-1]
    assert not (out / "runs").exists() and not (out / "events.jsonl").exists()


def test_failures_are_retried_and_a_later_run_retries_what_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tiny_definition_file(tmp_path)
    out = tmp_path / "search"
    # lr 1e30 diverges: a NaN loss is transient, tried once and retried once, then failed
    assert _search(template, out, "--lr", "1e30", "--max-retries", "1") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err.startswith("hda search: error: 2 of 2 candidates did not finish") and "NonFinite" in err
    )
    trained = json.loads((out / "front_trained.json").read_text())
    assert [c["attempts"] for c in trained["candidates"]] == [2, 2]
    assert _search(template, out) == 0  # fixed settings: what failed is trained
    trained = json.loads((out / "front_trained.json").read_text())
    assert [(c["status"], c["attempts"]) for c in trained["candidates"]] == [("done", 3)] * 2


def test_train_top_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["search", "--budget-macs", "4.5G", "--train-top", "2"])
    assert code == 2
    assert "--train-top needs --out" in capsys.readouterr().err


def test_train_top_flags_default_to_the_recipe() -> None:
    from hardnet_analysis.cli.main import build_parser
    from hardnet_analysis.train.config import MAX_RETRIES, RECIPE

    args = build_parser().parse_args(["search", "--train-top", "2", "--out", "x"])
    assert args.storage is None and args.workers == 1
    for name in ("dataset", "epochs", "batch_size", "lr", "device", "seed"):
        assert getattr(args, name) == getattr(RECIPE, name), name
    assert args.max_retries == MAX_RETRIES


def test_the_recipe_module_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, hardnet_analysis.train.config\nassert 'torch' not in sys.modules\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_dense_template_trains_for_segmentation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two candidates of a tiny FC-HarDNet template trained through the front's Optuna study:
    ranked by best validation mIoU against CIO."""
    template = tiny_fchardnet_file(tmp_path)
    data = shapes_dataset(tmp_path / "shapes", train=16, val=8, size=32)
    out = tmp_path / "search"
    argv = ["search", "--template", str(template), "--k", "4,6", "--n-layers", "2", "--m", "1.7",
            "--input", "32", "--out", str(out), "--train-top", "2", "--epochs", "1",
            "--batch-size", "8", "--image-size", "32", "--format", "json"]  # fmt: skip
    assert main([*argv[:-2], "--data", str(data), "--format", "table"]) == 2  # no --task
    assert "needs --task segmentation" in capsys.readouterr().err
    assert main([*argv, "--task", "segmentation", "--data", str(data), "--schedule", "poly"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["task"] == "segmentation" and trained["objectives"] == {
        "miou": "max",
        "cio": "min",
    }
    done = [c for c in trained["candidates"] if c["status"] == "done"]
    assert len(done) == 2
    assert all(0.0 <= c["miou"] <= 100.0 and c["top1"] is None for c in done)
    assert all(c["final_miou"] is not None and c["pixel_acc"] is not None for c in done)
    runs = [json.loads((out / c["run"] / "args.json").read_text()) for c in done]
    assert all(r["task"] == "segmentation" and r["schedule"] == "poly" for r in runs)


# --- Ctrl-C ------------------------------------------------------------------------------------


def _interruptible_search(tmp_path: Path, workers: int) -> list[str]:
    """A search whose two trials each last about 10 s (30 epochs of a tiny model)."""
    template = tiny_definition_file(tmp_path)
    return [
        "search", "--template", str(template), "--k", "4,6", "--n-layers", "2,4", "--m", "1.6",
        "--input", "16", "--out", str(tmp_path / "search"), "--train-top", "2",
        "--epochs", "30", "--batch-size", "64", "--image-size", "16",
        "--workers", str(workers),
    ]  # fmt: skip


def _started(events: Path, count: int) -> bool:
    return events.is_file() and events.read_text().count('"start"') >= count


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_training_search_and_the_same_command_resumes(
    tmp_path: Path, workers: int
) -> None:
    """SIGINT to the process group (what Ctrl-C sends), with SIGINT ignored at start as a
    shell leaves it for a background job: exit 130 within seconds, no worker left, and the
    interrupted trials resume from their checkpoints when the command is run again."""
    argv = _interruptible_search(tmp_path, workers)
    events = tmp_path / "search" / "events.jsonl"
    process = hda_process(
        *argv,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 240
    # every worker mid-trial, with a checkpoint to resume from
    while not _started(events, workers) or len(list(tmp_path.rglob("last.pt"))) < workers:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.rstrip().endswith("hda: interrupted")
    with pytest.raises(ProcessLookupError):  # every worker of the group is gone
        os.killpg(process.pid, 0)
    interrupted = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in interrupted].count("failed") == workers
    assert all("interrupted" in e["error"] for e in interrupted if e["event"] == "failed")

    code, _, err = hda_run(*argv, timeout=600)
    assert code == 0, err
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    resumed = {e["id"] for e in lines[len(interrupted) :] if e["event"] == "start" and e["resume"]}
    assert resumed == {e["id"] for e in interrupted if e["event"] == "failed"}


def test_ctrl_c_to_the_command_alone_stops_its_workers(tmp_path: Path) -> None:
    """SIGINT to `hda search` only (kill -INT PID): it passes the interrupt on to its worker,
    which fails its trial as interrupted, and exits 130."""
    process = hda_process(*_interruptible_search(tmp_path, 1))
    events = tmp_path / "search" / "events.jsonl"
    deadline = time.monotonic() + 240
    while not _started(events, 1):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    failed = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["error"] for e in failed if e["event"] == "failed"] == [
        "Interrupted: interrupted (Ctrl-C)"
    ]


def test_other_training_flags_on_a_trained_front_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tiny_definition_file(tmp_path)
    out = tmp_path / "search"
    assert _search(template, out, "--workers", "0") == 1  # the study made, nothing trained
    capsys.readouterr()
    assert _search(template, out, "--seed", "3") == 0  # nothing trained yet: new recipe taken
    trained = (out / "front_trained.json").read_text()
    capsys.readouterr()
    # Trained with seed 3: a recipe that differs would report those results as its own.
    assert _search(template, out, "--seed", "4", "--epochs", "2") == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("hda search: error: front ") and "2 candidate(s) trained" in err[-1]
    assert "--epochs 2 (the study's: 1)" in err[-1] and "--seed 4 (the study's: 3)" in err[-1]
    assert (out / "front_trained.json").read_text() == trained  # left as it was
    assert _search(template, out, "--seed", "3", "--workers", "0") == 0  # same recipe: reported
