"""Atomic writes: whole files only, created with the mode the user's umask gives."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hardnet_analysis.fileio import atomic_write_json, atomic_write_text, current_umask


@pytest.fixture
def umask() -> Iterator[None]:
    """Run the test under umask 022, then restore the caller's."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
def test_current_umask_reads_without_changing_it() -> None:
    assert current_umask() == 0o022
    os.umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_get_the_umask_mode(tmp_path: Path, mask: int, mode: int) -> None:
    os.umask(mask)
    text = atomic_write_text(tmp_path / "a.txt", "hello")
    document = atomic_write_json(tmp_path / "sub" / "b.json", {"a": 1})
    assert (_mode(text), _mode(document)) == (mode, mode)
    assert text.read_text() == "hello"
    assert not [p for p in tmp_path.rglob("*.tmp")]  # no temporary file left behind


@pytest.mark.usefixtures("umask")
def test_replacing_a_file_gives_the_umask_mode(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_json(path, [1])
    assert _mode(path) == 0o644 and json.loads(path.read_text()) == [1]
