"""Threads are an input: one device model file holds a model per thread count, and predict,
search and scoring take the count asked for (a real tiny calibration at 1 and 2 threads)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hardnet_analysis.analysis import analyze
from hardnet_analysis.cli.main import main
from hardnet_analysis.documents.device_model import DeviceModels
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.predict import predict
from hardnet_analysis.metrics.predictor_score import score_file

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")
FAST = ["--grid", "tiny", "--repeat", "1", "--budget", "0.0005"]


@pytest.fixture(scope="module")
def two_counts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("threads") / "cpu.json"
    argv = ["calibrate", *FAST, "--threads", "2", "1", "--thread-time", "--out", str(out)]
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # a count calibrate does not use, so a leak would show
    try:
        assert main([*argv, "--format", "json"]) == 0
        assert torch.get_num_threads() == 3  # calibrate gave torch its thread count back
    finally:
        torch.set_num_threads(before)
    return out


def test_one_file_holds_a_model_per_thread_count(two_counts: Path) -> None:
    document = json.loads(two_counts.read_text())
    assert [m["threads"] for m in document["models"]] == [1, 2]  # fewest first
    # --thread-time clocks the 1-thread model only: two threads' work is timed on the wall
    assert [m["clock"] for m in document["models"]] == [
        "time.thread_time_ns",
        "time.perf_counter_ns",
    ]
    for model in document["models"]:
        assert model["context"]["models"] and model["load_probe"]["threads"] == model["threads"]
        # each count's probes are on its own clock, so a run is compared with like
        thread_time = model["clock"] == "time.thread_time_ns"
        assert (
            model["load_probe"]["thread_time"] == model["end_probe"]["thread_time"] == thread_time
        )
        assert len(model["samples"]) == document["models"][0]["fit"]["n"]


def test_predict_takes_the_thread_count(
    two_counts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = DeviceModels.read(two_counts)
    expected = {n: predict(analyze(TINY, 64), models.at(n)).latency_s for n in (1, 2)}
    assert expected[1] != expected[2]  # two fits of two sets of timings
    for threads in (1, 2):
        argv = ["predict", TINY, "--input", "64", "--device-model", str(two_counts)]
        assert main([*argv, "--threads", str(threads), "--format", "json"]) == 0
        found = json.loads(capsys.readouterr().out)["latency_s"]
        assert found == pytest.approx(expected[threads], rel=1e-12)


def test_a_count_the_file_lacks_is_a_one_line_error(
    two_counts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", TINY, "--device-model", str(two_counts), "--threads", "3"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "holds threads 1, 2, not 3; accepted: --threads 1 or 2" in err


def test_the_default_is_torchs_count_when_held_else_the_only_one(
    two_counts: Path, device_file: Path
) -> None:
    before = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert DeviceModels.read(two_counts).at().threads == n
        torch.set_num_threads(2)
        assert DeviceModels.read(device_file).at().threads == 1  # a file of one count
        torch.set_num_threads(3)
        with pytest.raises(UsageError, match="holds threads 1, 2, not 3"):
            DeviceModels.read(two_counts).at()
    finally:
        torch.set_num_threads(before)


def test_scoring_picks_the_runs_count_and_refuses_a_mix(
    two_counts: Path, profiled_runs: list[Path]
) -> None:
    runs = [_run(p) for p in profiled_runs]  # 1 thread
    assert not any("threads" in w for w in score_file(runs, two_counts).warnings)
    mixed = [runs[0], replace(runs[1], threads=2), *runs[2:]]
    with pytest.raises(UsageError, match=r"runs of one thread count; these have \[1, 2\]"):
        score_file(mixed, two_counts)
    two = [replace(r, threads=2) for r in runs]
    assert not any("threads" in w for w in score_file(two, two_counts).warnings)


def _run(path: Path) -> ProfileRun:
    return ProfileRun.read(path)


def test_a_file_with_a_count_twice_is_refused(two_counts: Path, tmp_path: Path) -> None:
    document = json.loads(two_counts.read_text())
    document["models"][1]["threads"] = 1
    bad = tmp_path / "twice.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(UsageError, match="each thread count once"):
        DeviceModels.read(bad)


def test_thread_time_needs_one_thread_among_the_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["calibrate", *FAST, "--threads", "2", "--thread-time", "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "--thread-time needs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_search_predicts_latency_for_the_count_asked(
    two_counts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["search", "--template", "hardnet39ds", "--k", "x1", "--n-layers", "x1", "--m", "1.6"]
    found = {}
    for threads in ("1", "2"):
        argv = [*base, "--device-model", str(two_counts), "--threads", threads]
        assert main([*argv, "--format", "json"]) == 0
        document = json.loads(capsys.readouterr().out)
        found[threads] = document
    assert found["1"] != found["2"]
    assert main([*base, "--threads", "2"]) == 2
    assert "--threads needs --device-model" in capsys.readouterr().err
