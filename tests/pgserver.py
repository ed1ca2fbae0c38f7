"""A throw-away PostgreSQL server for tests: `initdb` in a temporary directory, `pg_ctl start` on
a free localhost port, trust authentication, removed afterwards.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user (the
Debian package creates it) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def find_tool(name: str) -> str | None:
    """`name` (initdb, pg_ctl) on PATH or in Debian's versioned directories, else None."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def available() -> bool:
    """True where a server can be started here: the tools exist, and as root the ``postgres``
    user to run them as."""
    if not (find_tool("initdb") and find_tool("pg_ctl")):
        return False
    try:
        return os.geteuid() != 0 or bool(pwd.getpwnam("postgres") and shutil.which("runuser"))
    except KeyError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user() -> tuple[list[str], int | None]:
    """The command prefix that runs a tool as a user PostgreSQL accepts, and that user's id."""
    if os.geteuid() != 0:
        return [], None
    return ["runuser", "-u", "postgres", "--"], pwd.getpwnam("postgres").pw_uid


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running server's URL (``postgresql://postgres@127.0.0.1:PORT/postgres``)."""
    initdb, pg_ctl = find_tool("initdb"), find_tool("pg_ctl")
    assert initdb and pg_ctl, "no PostgreSQL here (check find_tool first)"
    prefix, uid = _as_server_user()
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as
    # postgres.
    root = Path(tempfile.mkdtemp(prefix="hda-pg-"))
    if uid is not None:
        os.chown(root, uid, -1)
    data, port = root / "data", _free_port()
    _run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"])
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"])
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)
