"""Atomic file writes: a temporary file in the same directory, fsync, then rename.

A reader never sees a half-written result, and a crash leaves the previous file intact. The file
gets the mode an ordinary ``open(path, "w")`` would give it (0666 less the process umask), not
the 0600 of `tempfile.mkstemp`: a search directory shared between users or hosts stays readable.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from hardnet_analysis.errors import HdaError, UsageError


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (``Umask:`` in
    /proc/self/status); elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it here
    os.umask(mask)
    return mask


def check_output(path: str | Path, kind: Literal["file", "directory"]) -> Path:
    """`path` as a place to write a `kind`: a UsageError (one line) when it cannot be one, found
    before any work is done: the path is empty, a file is asked for where a directory stands
    (or the other way round), or a part of its parent path is a file."""
    text = str(path)
    if not text.strip():
        raise UsageError(f"the {kind} to write has an empty name")
    target = Path(text)
    if kind == "file" and target.is_dir():
        raise UsageError(f"{text!r} is a directory; give a file name")
    if kind == "directory" and target.exists() and not target.is_dir():
        raise UsageError(f"{text!r} is a file; give a directory")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{text!r} cannot be written: {str(parent)!r} is a file")
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path. A path that cannot be a file is a
    UsageError (`check_output`), any other failure to write an HdaError naming the path."""
    target = check_output(path, "file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_replacing(target, data)
    except OSError as exc:
        raise HdaError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
    return target


def _write_replacing(target: Path, data: bytes) -> None:
    """A temporary file beside `target`, written and synced, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, document: Any) -> Path:
    """Write `document` as indented JSON to `path` atomically."""
    return atomic_write_text(path, json.dumps(document, indent=2) + "\n")


def read_json(path: str | Path, what: str) -> Any:
    """The JSON document at `path`; a missing or unparsable file is a one-line UsageError that
    names it as `what` (``"definition file"``, ``"calibration file"``)."""
    file = Path(path)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {str(file)!r} does not exist") from None
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8, bad JSON, a huge integer
        raise UsageError(f"{what} {str(file)!r} is not valid JSON: {exc}") from None
    except RecursionError:
        raise UsageError(f"{what} {str(file)!r} is nested too deeply to read") from None
