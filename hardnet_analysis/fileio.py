"""Atomic file writes: a temporary file in the same directory, fsync, then rename.

A reader never sees a half-written result, and a crash leaves the previous file intact. The file
gets the mode an ordinary ``open(path, "w")`` would give it (0666 less the process umask), not
the 0600 of `tempfile.mkstemp`: a search directory shared between users or hosts stays readable.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    """`path` as a place to write a `kind`, checked before any work is done; returns it as given.

    A UsageError (one line) when it cannot be one: the name is empty; a file is asked for where
    a directory stands (or the other way round); a part of its parent path is a file; it is a
    symlink loop, a block device or a socket; or the place cannot be written (no permission, a
    read-only mount, /proc): a probe file is created there and removed at once. A symlink is
    followed (its target is what gets written); a character device (/dev/null) or a pipe is
    written in place, never replaced.
    """
    target, now = _place(path, kind)
    if now in IN_PLACE:
        if not os.access(target, os.W_OK):
            raise UsageError(f"{str(path)!r} cannot be written: permission denied")
    else:
        _probe(target if now == "directory" else _nearest_existing(target.parent), str(path))
    return Path(str(path))


def _place(path: str | Path, kind: Literal["file", "directory"]) -> tuple[Path, str]:
    """Where writing `path` as a `kind` lands (symlinks followed) and what stands there now
    (`_node_kind`); a UsageError where it cannot be such an output, without touching the disk."""
    text = str(path)
    if not text.strip():
        raise UsageError(f"the {kind} to write has an empty name")
    target = _final_target(Path(text))
    now = _node_kind(target)
    if kind == "file" and now == "directory":
        raise UsageError(f"{text!r} is a directory; give a file name")
    if kind == "directory" and now not in ("missing", "directory"):
        raise UsageError(f"{text!r} is a {now}; give a directory")
    if now in ("block device", "socket"):
        raise UsageError(f"{text!r} is a {now}; give a regular file, a character device or a pipe")
    for parent in Path(text).parents:  # as given: the message names the user's own path
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"{text!r} cannot be written: {str(parent)!r} is a file")
    return target, now


#: Existing outputs that are written in place, not replaced: replacing /dev/null with a regular
#: file would break it for the whole machine.
IN_PLACE = ("character device", "pipe")


def _final_target(path: Path) -> Path:
    """Where `path` leads: symlinks followed to their last target (a dangling link gives the
    name it points at, which is then created); a symlink loop is a UsageError."""
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{str(path)!r} is a symlink loop") from None
    if _node_kind(path) in IN_PLACE:  # /dev/stdout -> /proc/self/fd/1 -> pipe:[...]
        return path
    return Path(os.path.realpath(path))


def _node_kind(path: Path) -> str:
    """What stands at `path` (symlinks followed): missing, file, directory, character device,
    pipe, block device or socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    kinds = (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISFIFO, "pipe"),
        (stat.S_ISBLK, "block device"),
    )
    return next((name for test, name in kinds if test(mode)), "socket")


def _nearest_existing(directory: Path) -> Path:
    """`directory` or its nearest ancestor that exists (where the writer's mkdir starts)."""
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return directory


def _probe(directory: Path, text: str) -> None:
    """Create and remove a file in `directory`: the one test that a read-only mount, /proc and
    missing permissions all fail (root passes `os.access` on /proc). The directory's times are
    set back afterwards, so a refused command leaves no trace, not even a new mtime."""
    try:
        before = os.stat(directory)
        fd, probe = tempfile.mkstemp(prefix=".hda-probe-", dir=directory)
        os.close(fd)
        os.unlink(probe)
        os.utime(directory, ns=(before.st_atime_ns, before.st_mtime_ns))
    except OSError as exc:
        raise UsageError(f"{text!r} cannot be written: {exc.strerror or exc}") from None


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path written (a symlink's target).

    A regular file (or a new one) is replaced by rename, so a reader never sees half of it; a
    character device or a pipe is written in place. A path that cannot be a file is a
    UsageError (`check_output`), any other failure to write an HdaError naming the path.
    """
    target, now = _place(path, "file")
    try:
        if now in IN_PLACE:
            with open(target, "wb") as handle:
                handle.write(data)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_replacing(target, data)
    except OSError as exc:
        raise HdaError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
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


@contextmanager
def locked_directory(path: str | Path) -> Iterator[Path]:
    """Hold `path` (a directory, created if missing) for this process while a command writes
    several files into it: a second hda command asking for the same directory meanwhile gets a
    one-line UsageError instead of mixing its files with this one's.

    The lock is `flock` on the directory itself, so nothing is created for it and it ends with
    the process, however that ends (kill -9 included). It holds between processes on one host;
    network file systems may not honour it.
    """
    directory = Path(path)
    made = _missing(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UsageError(f"{str(path)!r} cannot be written: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{str(path)!r} is being written by another hda command; wait for it to end "
                "or give another directory"
            ) from None
        yield directory
    except BaseException:
        _remove_empty(made)  # a command that refused (no candidate, a bad input) leaves no trace
        raise
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _missing(directory: Path) -> list[Path]:
    """`directory` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    return missing


def _remove_empty(directories: list[Path]) -> None:
    """Remove `directories` (deepest first) that are still empty; stop at the first that is
    not: what a command wrote before it failed stays."""
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return
