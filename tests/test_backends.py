"""Backends: one seam for where a model runs. One picker with one behaviour and one message
for every command; a backend added as a module in a folder shows up in every command's
``--device`` choices, errors and help with no other file touched."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import hardnet_analysis.backends as backends_pkg
from hardnet_analysis.backends import MiB, check_thread_time, get_backend, list_backends, pick
from hardnet_analysis.backends.cpu import CpuBackend
from hardnet_analysis.cli.main import main
from hardnet_analysis.errors import UsageError

TINY = str(Path(__file__).parent / "data" / "tinyhardnet.json")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")


def hda(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = int(str(stop.code))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_registered_backends_and_auto() -> None:
    assert list_backends()[:2] == ["cpu", "cuda"]
    assert pick("cpu").device == torch.device("cpu") and pick("cpu").fallback is None
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick("auto").backend.name == expected and pick("auto").fallback is None
    with pytest.raises(UsageError, match=r"unknown device 'tpu'; accepted: cpu, cuda"):
        pick("tpu")
    with pytest.raises(UsageError, match="must be a number"):
        pick("cuda:x")


@NO_GPU
def test_a_missing_gpu_falls_back_or_is_refused_with_one_message() -> None:
    picked = pick("cuda")
    assert picked.backend.name == "cpu" and picked.device == torch.device("cpu")
    assert picked.warning("cuda") == (
        "--device cuda: no CUDA GPU is available (torch.cuda.is_available() is False); fell "
        "back to cpu"
    )
    with pytest.raises(UsageError, match="drop --strict-device to fall back to cpu"):
        pick("cuda:1", strict=True)


@NO_GPU
def test_every_command_refuses_a_missing_gpu_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = ("--device", "cuda", "--strict-device")
    commands = {
        "profile": ("profile", TINY, "--input", "32", *strict),
        "calibrate": ("calibrate", "--grid", "tiny", "--out", str(tmp_path / "d.json"), *strict),
        "train": ("train", TINY, "--dataset", "digits", "--out", str(tmp_path / "r"), *strict),
        "evaluate": ("evaluate", TINY, "--random-weights", "--dataset", "digits", *strict),
    }
    messages = set()
    for name, argv in commands.items():
        code, _, err = hda(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (name, err)
        messages.add(err.split("error: ", 1)[1])
    assert len(messages) == 1, messages  # one message, word for word
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_thread_time_needs_a_per_thread_clock_and_one_thread() -> None:
    check_thread_time(get_backend("cpu"), 1)
    for backend, threads in (("cpu", 2), ("cuda", 1)):
        with pytest.raises(UsageError, match=r"needs --device cpu and --threads 1"):
            check_thread_time(get_backend(backend), threads)


@pytest.fixture
def toy_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``tests/backends`` on the backends package's search path, as a module in
    ``hardnet_analysis/backends`` would be; the registry is restored afterwards."""
    monkeypatch.setattr(backends_pkg, "_BACKENDS", dict(backends_pkg._BACKENDS))
    path = [*backends_pkg.__path__, str(Path(__file__).parent / "backends")]
    monkeypatch.setattr(backends_pkg, "__path__", path)
    yield


@pytest.mark.usefixtures("toy_backend")
def test_a_new_backend_module_shows_up_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    assert "toycpu" in list_backends()
    for command in ("profile", "calibrate", "train", "evaluate"):
        code, out, _ = hda(capsys, command, "--help")
        assert code == 0 and "toycpu" in out, command
    code, _, err = hda(capsys, "profile", TINY, "--device", "tpu")
    assert code == 2 and "accepted: cpu, cuda, toycpu" in err
    code, out, err = hda(
        capsys, "profile", TINY, "--input", "32", "--repeat", "2", "--device", "toycpu",
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    (run,) = json.loads(out)
    assert run["device"]["used"] == "toycpu" and run["settings"]["clock"] == "time.process_time_ns"
    assert run["latency"]["median_s"] > 0
    code, _, err = hda(capsys, "profile", TINY, "--device", "toycpu", "--thread-time")
    assert code == 2 and "--thread-time needs --device cpu" in err


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_cpu_process_peak_is_its_own_and_resets() -> None:
    """Measured against /proc's own figures: a child of a process holding 1 GiB reports
    its own peak (ru_maxrss, which survives exec, would say over 1024), and a reset lowers
    the peak of this process after a 200 MiB buffer is freed."""
    code = "from hardnet_analysis.backends.cpu import CpuBackend; import torch; " \
        "print(CpuBackend().peak_memory_mb(torch.device('cpu')))"  # fmt: skip
    held = bytearray(1024 * MiB)
    held[::4096] = b"\1" * len(held[::4096])  # touched: resident
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(child.stdout) < 900  # torch imported: about 300
    del held
    backend, cpu = CpuBackend(), torch.device("cpu")
    block = bytearray(200 * MiB)
    block[::4096] = b"\1" * len(block[::4096])
    high = backend.peak_memory_mb(cpu)
    del block
    backend.reset_peak_memory(cpu)
    assert backend.peak_memory_mb(cpu) < high - 150
