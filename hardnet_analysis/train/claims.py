"""Exclusive claims on pool candidates, shared through a directory by workers on many hosts.

A claim is a small JSON file (host, pid, token, time) created with ``O_CREAT | O_EXCL``, so
exactly one worker wins it. Its mtime is a heartbeat, refreshed every ``timeout / 4`` seconds
while held; a claim older than ``timeout`` seconds, or held by a dead process on this host, is
stale and taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object at `path`; None when it is missing, unreadable or not an object (a file
    another worker is replacing reads as absent rather than failing this one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Claim:
    """An exclusive claim on one candidate, kept fresh by a heartbeat thread while held."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        body = {"host": HOST, "pid": os.getpid(), "token": self.token, "time": time.time()}
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle)
        return True

    def _is_stale(self, holder: dict[str, Any] | None) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        local = holder is not None and holder.get("host") == HOST
        if local and holder is not None and not _pid_alive(int(holder.get("pid", -1))):
            return True
        return age > self.timeout

    def _take_over(self, holder: dict[str, Any] | None) -> None:
        """Move a stale claim aside; if it changed meanwhile (a fresh claim), put it back."""
        aside = self.path.with_name(f"{self.path.name}.stale-{self.token}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        if read_json_object(aside) != holder:
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)  # no-clobber restore of someone's fresh claim
        aside.unlink(missing_ok=True)

    def acquire(self) -> bool:
        """True if this worker now holds the claim (taking over a stale one if need be)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._create():
            holder = read_json_object(self.path)
            if not self._is_stale(holder):
                return False
            self._take_over(holder)
            if not self._create():
                return False
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.timeout / 4):
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.path)

    def held(self) -> bool:
        holder = read_json_object(self.path)
        return holder is not None and holder.get("token") == self.token

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held():
            self.path.unlink(missing_ok=True)
