"""Where a front's trials live: any storage Optuna takes, named by one string.

- ``sqlite:///...``, ``postgresql://...``, ``mysql://...``: an Optuna `RDBStorage` (PostgreSQL
  needs the ``postgres`` extra: ``pip install 'hda[postgres]'``);
- a directory: the SQLite file ``DIR/optuna.db`` (the default, in the search's directory);
- any other path: Optuna's journal file storage (one file on a shared file system, no server);
  an existing SQLite file is opened as SQLite.

Heartbeats. `RDBStorage` has Optuna's own: a worker records one every `interval` seconds and
`optuna.storages.fail_stale_trials` fails a running trial whose last one is older than `grace`
seconds, then runs the storage's stale-trial callback (the front's retry). Optuna's journal
storage has none, so `HeartbeatJournalStorage` adds the same `BaseHeartbeat` methods on top of
it (the heartbeat is a trial system attribute holding the worker's clock), and the same
``fail_stale_trials`` call serves both.

SQLite: SQLAlchemy's sqlite driver starts a transaction only at its first write, so two workers
could both read a trial as waiting and both take it. Every transaction here starts with ``BEGIN
IMMEDIATE`` instead, which serialises them (a busy timeout makes the others wait).
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from hardnet_analysis.errors import UsageError

DEFAULT_DB = "optuna.db"
#: The trial system attribute that holds a journal trial's last heartbeat (seconds since epoch).
HEARTBEAT_ATTR = "hda_heartbeat"
#: What runs when a trial is failed for a lapsed heartbeat: (study, the failed trial).
StaleCallback = Callable[[optuna.Study, FrozenTrial], None]


@contextlib.contextmanager
def quiet_experimental() -> Iterator[None]:
    """Silence Optuna's warnings that heartbeats and metric names are experimental: hda relies on
    them knowingly, and a user could do nothing about the warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def storage_url(spec: str) -> str:
    """The storage `spec` names: a URL as given, a directory's ``sqlite:///DIR/optuna.db``, an
    SQLite file's URL, or any other path (a journal file) absolute."""
    if "://" in spec:
        return spec
    path = Path(spec).expanduser().resolve()
    if path.is_dir():
        path = path / DEFAULT_DB
    if path.name == DEFAULT_DB or _is_sqlite(path):
        return f"sqlite:///{path}"
    return str(path)


def storage_file(url: str) -> Path | None:
    """The file a storage URL (`storage_url`'s) keeps its data in: a journal's path or an
    SQLite database's; None for a server's database or SQLite in memory."""
    if "://" not in url:
        return Path(url)
    if url.startswith("sqlite:///"):
        name = url[len("sqlite:///") :].split("?", 1)[0]
        return Path(name) if name and name != ":memory:" else None
    return None


def check_exists(spec: str) -> None:
    """A UsageError when `spec` names a storage file that is not there: opening it would create
    an empty database or journal, and a command that only reads a study would leave it behind."""
    url = storage_url(spec)
    path = storage_file(url)
    if path is not None and not path.exists():
        raise UsageError(
            f"storage {shown(url)!r} does not exist; `hda search ... --train-top N --out DIR` "
            "makes it"
        )


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def shown(url: str) -> str:
    """`url` with any password replaced by ``***``, for messages and documents."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(
    spec: str, interval: int | None = None, grace: int | None = None, on_stale: Any = None
) -> BaseStorage:
    """The storage `spec` names (see the module docstring), with heartbeats every `interval`
    seconds (None: none) and `on_stale` (a `StaleCallback`) run on each trial failed for a
    heartbeat older than `grace` seconds. Anything that cannot be opened is a UsageError."""
    url = storage_url(spec)
    try:
        if "://" not in url:
            return HeartbeatJournalStorage(url, interval, grace, on_stale)
        with quiet_experimental():
            storage = RDBStorage(
                url,
                engine_kwargs=_engine_kwargs(url),
                heartbeat_interval=interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=on_stale,
            )
    except ImportError as exc:
        raise UsageError(
            f"storage {shown(url)!r} needs a database driver ({exc.__cause__ or exc}); for "
            "PostgreSQL: pip install 'hda[postgres]'"
        ) from None
    except Exception as exc:  # sqlalchemy's errors for unreachable or foreign databases
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"storage {shown(url)!r} cannot be opened: {first}") from None
    if url.startswith("sqlite:"):
        _begin_immediate(storage)
    return storage


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite:"):
        return {"connect_args": {"timeout": 120}}  # seconds a writer waits for the lock
    return {"pool_pre_ping": True}  # a server that dropped an idle connection is reconnected


def _begin_immediate(storage: RDBStorage) -> None:
    """Make every SQLite transaction of `storage` take the write lock when it begins."""
    import sqlalchemy

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own BEGIN off; ours below

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    sqlalchemy.event.listen(storage.engine, "connect", connect)
    sqlalchemy.event.listen(storage.engine, "begin", begin)
    storage.engine.dispose()  # connections opened before the listeners are dropped


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal file storage with the heartbeat methods of `BaseHeartbeat`.

    A trial's heartbeat is its `HEARTBEAT_ATTR` system attribute (the worker's clock, so the
    hosts sharing the file must keep their clocks in step to within the grace period); a
    running trial without one counts from its start.
    """

    def __init__(self, path: str, interval: int | None, grace: int | None, on_stale: Any) -> None:
        super().__init__(JournalFileBackend(path))
        self.interval = interval
        self.grace = grace if grace is not None else 2 * (interval or 0)
        self.on_stale: StaleCallback | None = on_stale

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            start = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - float(trial.system_attrs.get(HEARTBEAT_ATTR, start)) > self.grace:
                stale.append(self.get_trial_id_from_study_id_trial_number(study_id, trial.number))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self.interval

    def get_heartbeat_stale_trial_callback(self) -> StaleCallback | None:
        return self.on_stale
