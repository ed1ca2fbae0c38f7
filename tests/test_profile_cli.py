"""`hda profile`: run files, sweeps that survive failures, device fallback, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hardnet_analysis.backends import specs
from hardnet_analysis.cli.main import main
from hardnet_analysis.profiler import run as run_mod

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")
FAST = ["--repeat", "2", "--warmup", "1", "--threads", "1"]


@pytest.fixture(autouse=True)
def _no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine probe copies 256 MiB; a fixed spec keeps the tests fast."""
    spec = specs.DEVICES["Jetson Nano"]
    monkeypatch.setattr(run_mod, "roofline_spec", lambda backend, device: spec)


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sweep_writes_runs_records_failures_and_skips_done(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = call(
        capsys, "profile", TINY, "--input", "48", "2", "--out", str(tmp_path), *FAST
    )
    assert code == 1 and "failed" in err  # 2x2 is too small for the tiny HarDNet
    ok = json.loads((tmp_path / "tinyhardnet-48x48-cpu-fp32-b1-t1-r2.json").read_text())
    bad = json.loads((tmp_path / "tinyhardnet-2x2-cpu-fp32-b1-t1-r2.json").read_text())
    assert ok["status"] == "ok" and bad["status"] == "failed"
    assert "too small" in bad["failures"][0]["error"]
    assert ok["definition"]["name"] == "tinyhardnet" and ok["counters"]["source"] == "model"
    assert ok["latency"]["n"] == 2 and ok["totals"]["macs"] > 0
    assert ok["load_probe"]["threads"] == ok["end_probe"]["threads"] == 1  # brackets the timing
    controls = ok["pace"]["controls"]  # a control beside each of the 2 timed forwards
    assert len(controls["seconds"]) == 2 and controls["threads"] == 1
    latency, seconds = ok["latency"], controls["seconds"]
    assert latency["min_s"] / max(seconds) <= ok["pace"]["paced"] <= latency["max_s"] / min(seconds)
    assert ok["subnormals"] == []  # looked for, and random data gives none
    timed = [layer for layer in ok["layers"] if layer["ops"] == ["conv"]]
    assert len(timed) > 5
    assert sum(layer["macs"] for layer in ok["layers"]) == ok["totals"]["macs"]
    assert sum(layer["model_bytes"] for layer in ok["layers"]) == ok["totals"]["model_bytes"]
    code, _, err = call(capsys, "profile", TINY, "--input", "48", "--out", str(tmp_path), *FAST)
    assert code == 0 and "skipped" in err


def test_what_changes_the_numbers_makes_a_distinct_run_and_force_reruns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = ["--input", "32", "--warmup", "1", "--out", str(tmp_path)]
    setups = (
        ["--repeat", "2", "--threads", "1"],
        ["--repeat", "2", "--threads", "1", "--channels-last"],
        ["--repeat", "3", "--threads", "1"],
        ["--repeat", "2", "--threads", "2"],
    )
    for setup in setups:
        assert call(capsys, "profile", TINY, *out, *setup)[0] == 0
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert names == [
        "tinyhardnet-32x32-cpu-fp32-b1-nhwc-t1-r2.json",
        "tinyhardnet-32x32-cpu-fp32-b1-t1-r2.json",
        "tinyhardnet-32x32-cpu-fp32-b1-t1-r3.json",
        "tinyhardnet-32x32-cpu-fp32-b1-t2-r2.json",
    ]
    first = tmp_path / names[1]
    before = first.stat().st_mtime_ns
    code, _, err = call(capsys, "profile", TINY, *out, *setups[0])
    assert code == 0 and "skipped" in err and first.stat().st_mtime_ns == before
    code, _, err = call(capsys, "profile", TINY, *out, *setups[0], "--force")
    assert code == 0 and "skipped" not in err and first.stat().st_mtime_ns != before


def test_cuda_without_gpu_falls_back_or_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, out, err = call(
        capsys, "profile", TINY, "--input", "32", "--device", "cuda", "--format", "json", *FAST
    )
    assert code == 0 and "fell back to cpu" in err
    (document,) = json.loads(out)
    assert document["device"]["requested"] == "cuda" and document["device"]["used"] == "cpu"
    code, _, _ = call(capsys, "profile", TINY, "--input", "32", "--device", "cuda", *FAST,
                      "--out", str(tmp_path))  # fmt: skip
    assert code == 0  # named as the CPU run it was
    assert [p.name for p in tmp_path.iterdir()] == ["tinyhardnet-32x32-cpu-fp32-b1-t1-r2.json"]
    code, _, err = call(capsys, "profile", TINY, "--device", "cuda", "--strict-device")
    assert code == 2 and "no CUDA GPU" in err and "Traceback" not in err


def test_unknown_model_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "profile", "resnet5O")
    assert code == 2 and "unknown model" in err and len(err.strip().splitlines()) == 1


def test_thread_time_needs_one_thread(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = call(capsys, "profile", TINY, "--thread-time", "--threads", "2")
    assert code == 2 and "--threads 1" in err
    code, out, _ = call(
        capsys, "profile", TINY, "--input", "32", "--thread-time", "--format", "json", *FAST
    )
    run = json.loads(out)[0]
    assert code == 0 and run["settings"]["clock"] == "time.thread_time_ns"
    assert run["load_probe"]["thread_time"] and run["end_probe"]["thread_time"]  # same clock


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "profile", TINY, "--input", "32", *FAST)
    assert code == 0 and "base.0.conv" in out and "tinyhardnet" in out
