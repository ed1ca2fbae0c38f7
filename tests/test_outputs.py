"""Outputs never destroy what stands at their path: a device node is written in place (or refused),
a symlink's target is replaced (never the link), an unwritable place is refused before any work,
and a directory that one command writes is refused to a second one meanwhile."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hardnet_analysis.cli.main import main
from hardnet_analysis.fileio import atomic_write_text, locked_directory
from tests.trainkit import hda_run


def _one_line(code: int, err: str, status: int, *words: str) -> None:
    assert code == status, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert all(word in err for word in words), err


def hda(*argv: str) -> int:
    """`hda ARGV` in this process; its exit status, argparse's usage errors included."""
    try:
        return main(list(argv))
    except SystemExit as stop:
        return int(str(stop.code))


def _char_device(path: Path, minor: int) -> Path:
    """A character device node of the memory driver (major 1): minor 3 is a null device, 7 a
    full one. Only root may make it."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


def test_a_null_device_is_written_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    null = _char_device(tmp_path / "null", 3)
    for command in (["definition", "hardnet68"], ["graph", "hardnet39ds"]):
        assert hda(*command, "--out", str(null)) == 0, capsys.readouterr().err
        assert stat.S_ISCHR(null.stat().st_mode)  # still the device, not a regular file
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no temporary file left


def test_a_full_device_fails_in_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = _char_device(tmp_path / "full", 7)
    code = hda("definition", "hardnet68", "--out", str(full))
    _one_line(code, capsys.readouterr().err, 1, "cannot write", "No space left")
    assert stat.S_ISCHR(full.stat().st_mode)


def test_a_block_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    block = tmp_path / "disk"
    try:  # major 240 is reserved for local use: no driver, so nothing behind it to harm
        os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(240, 0))
    except PermissionError:
        pytest.skip("making a device node needs root")
    code = hda("definition", "hardnet68", "--out", str(block))
    _one_line(code, capsys.readouterr().err, 2, "is a block device")
    assert stat.S_ISBLK(block.stat().st_mode)


def test_a_pipe_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    atomic_write_text(fifo, '{"a": 1}\n')
    reader.join(timeout=30)
    assert received == [b'{"a": 1}\n'] and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_symlink_is_followed_and_its_target_replaced(tmp_path: Path) -> None:
    target = tmp_path / "real" / "def.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert hda("definition", "hardnet68", "--out", str(link)) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["name"] == "hardnet68"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "new.json")
    assert hda("definition", "hardnet68", "--out", str(dangling)) == 0
    assert dangling.is_symlink() and (tmp_path / "real" / "new.json").is_file()


def test_a_symlink_loop_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    code = hda("definition", "hardnet68", "--out", str(tmp_path / "a"))
    _one_line(code, capsys.readouterr().err, 2, "symlink loop")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    assert (tmp_path / "a").is_symlink()


@pytest.mark.parametrize(
    "command",
    [
        ["definition", "hardnet68", "--out", "/proc/hda-test.json"],
        ["calibrate", "--grid", "quick", "--out", "/proc/hda-test.json"],
        ["profile", "hardnet39ds", "--out", "/proc/hda-test-runs"],
        ["search", "--budget-macs", "4.5G", "--out", "/proc/hda-test-search"],
        ["report", "hardnet68", "--out", "/proc/hda-test.html"],
    ],
    ids=lambda c: c[0],
)
def test_an_unwritable_place_is_refused_before_any_work(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux's /proc")
    code = hda(*command)  # refused by argparse's type check: before any work at all
    _one_line(code, capsys.readouterr().err, 2, "cannot be written")


def test_one_command_at_a_time_writes_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "search"
    search = ["search", "--template", "hardnet39ds", "--k", "16,20", "--out", str(out)]
    with locked_directory(out):  # another command is writing it
        code = hda(*search)
        _one_line(code, capsys.readouterr().err, 2, "being written by another hda command")
        assert list(out.iterdir()) == []
    assert hda(*search) == 0  # once it is done, the directory is free again
    assert (out / "front.json").is_file()


def test_a_killed_writer_frees_its_directory(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    code = (
        "from hardnet_analysis.fileio import locked_directory\n"
        f"lock = locked_directory({str(out)!r}); lock.__enter__()\n"
        "print('held', flush=True)\nimport time; time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    profile = ["profile", "hardnet39ds", "--input", "32", "--repeat", "2", "--out", str(out)]
    status, _, err = hda_run(*profile)
    _one_line(status, err, 2, "being written by another hda command")
    holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the lock with the process
    holder.wait()
    status, _, err = hda_run(*profile)
    assert status == 0, err
