"""One training worker of a front study (`hardnet_analysis.train.trials`).

It loops: fail the trials of dead workers (`optuna.storages.fail_stale_trials`, which enqueues
their retries), take a waiting trial (the storage lets exactly one worker set it running), and
train its candidate into ``<directory>/runs/<front id>/<candidate id>/``, resuming from
``last.pt`` when an earlier attempt left one. While it trains, a thread records the trial's
heartbeat. It stops when no trial waits or runs and no failed trial is owed a retry (a retry is
enqueued just after its trial fails; one still missing after the grace period it enqueues itself).

Failures are classified: a configuration error (`UsageError`: missing data, a wrong layout, a
class mismatch, an unknown model) fails the trial without a retry and stops the worker at once
(exit status 2: every candidate would fail the same way); anything else (out of memory, a NaN
loss, a lost worker) is transient, recorded with its error, and retried up to ``max_retries``
times. Each start, completion and failure is also appended to ``<directory>/events.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import BaseStorage, fail_stale_trials
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial, TrialState

from hardnet_analysis.documents.fronts import TASK_METRICS
from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json
from hardnet_analysis.train.progress import Reporter
from hardnet_analysis.train.storage import quiet_experimental
from hardnet_analysis.train.trials import FrontStudy, RetryCandidate, open_front_study

HOST = socket.gethostname()
EVENTS = "events.jsonl"


class TrialLost(Exception):
    """Another worker failed this worker's trial (its heartbeat lapsed): stop training it."""


class Interrupted(Exception):
    """Ctrl-C reached the worker: stop the trial at the next step (`StopRequest`)."""


class StopRequest:
    """Ctrl-C for a worker, taken at a step boundary: the first SIGINT sets `requested` (the
    trial stops at its next training step, is failed as interrupted and the worker exits 130);
    a second one raises KeyboardInterrupt at once.

    A KeyboardInterrupt raised at an arbitrary point can land inside a lazy import (torch's
    sympy), leave the module half-made and be swallowed; the worker would then fail every later
    trial with an AttributeError instead of stopping.
    """

    def __init__(self) -> None:
        self.requested = threading.Event()

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._before = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._before)

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def check(self) -> None:
        if self.requested.is_set():
            raise Interrupted("interrupted (Ctrl-C)")


class Heartbeat:
    """Records a trial's heartbeat every `interval` seconds in a thread, and notices when the
    trial stops running (another worker took it over): `lost` is then set."""

    def __init__(self, storage: BaseStorage, trial_id: int, interval: int) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if isinstance(self.storage, BaseHeartbeat):
                    self.storage.record_heartbeat(self.trial_id)
                if self.storage.get_trial(self.trial_id).state != TrialState.RUNNING:
                    self.lost.set()
                    return
            except UpdateFinishedTrialError:
                self.lost.set()
                return
            except Exception:  # the storage unreachable for a moment: try again next beat
                continue


class WatchedReporter(Reporter):
    """A quiet-bar reporter that stops the run at the next step once the trial is lost or the
    worker is asked to stop."""

    def __init__(self, lost: threading.Event, stop: StopRequest, prefix: str) -> None:
        super().__init__(prefix=prefix)
        self.lost, self.stop = lost, stop

    def advance(self) -> None:
        if self.lost.is_set():
            raise TrialLost("the trial was taken over after a lapsed heartbeat")
        self.stop.check()
        super().advance()


def log_event(directory: Path, event: str, cid: str, **fields: Any) -> None:
    """Append one JSON line to ``events.jsonl`` (O_APPEND: lines from workers never interleave)."""
    record = {"event": event, "id": cid, "host": HOST, "pid": os.getpid(), "time": time.time()}
    line = (json.dumps({**record, **fields}) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / EVENTS, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def pop_trial(front: FrontStudy) -> FrozenTrial | None:
    """A waiting trial this worker now runs (its first heartbeat recorded), or None."""
    for trial in front.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        trial_id = front.trial_id(trial)
        try:
            if not front.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                continue
        except UpdateFinishedTrialError:
            continue
        if isinstance(front.storage, BaseHeartbeat):
            # at once: Optuna never counts a running trial without any heartbeat as stale
            front.storage.record_heartbeat(trial_id)
        return front.storage.get_trial(trial_id)
    return None


def _taken(front: FrontStudy, trial: FrozenTrial) -> bool:
    """True if `trial`'s candidate is done, or run by an older trial: then this one yields
    (two trials of one candidate can be enqueued when a later run of the command races a
    failing worker's retry)."""
    others = front.by_candidate()[str(trial.user_attrs["candidate_id"])]
    older = [t for t in others if t.number < trial.number]
    return any(t.state == TrialState.COMPLETE for t in others) or any(
        t.state == TrialState.RUNNING for t in older
    )


def run_worker(front: FrontStudy, poll: float = 1.0) -> int:
    """Train waiting trials until none waits or runs; returns how many this worker took.

    While others run, it waits (`poll` seconds) so that a dead worker's trial is still taken
    over. A configuration error propagates as a UsageError after it is recorded; Ctrl-C
    (`StopRequest`) as a KeyboardInterrupt once the running trial is failed as interrupted.
    """
    taken = 0
    owed: dict[int, float] = {}  # failed trial number -> when this worker saw its retry owed
    with StopRequest() as stop:
        while True:
            if stop.requested.is_set():
                raise KeyboardInterrupt
            with quiet_experimental():
                fail_stale_trials(front.study)
            trial = pop_trial(front)
            if trial is not None:
                run_trial(front, trial, stop)
                taken += 1
                continue
            active = (TrialState.WAITING, TrialState.RUNNING)
            if not front.study.get_trials(deepcopy=False, states=active):
                missing = front.owed_retries()
                if not missing:
                    return taken
                enqueue_overdue(front, missing, owed)
            stop.requested.wait(poll)


def enqueue_overdue(front: FrontStudy, missing: list[FrozenTrial], owed: dict[int, float]) -> None:
    """Enqueue the retries in `missing` (`FrontStudy.owed_retries`) that this worker has seen
    owed for longer than the grace period: the worker that failed the trial died before it
    enqueued them. Until then the failing worker is given the time to do it."""
    now = time.monotonic()
    for failed in missing:
        since = owed.setdefault(failed.number, now)
        if now - since > front.settings.grace:
            RetryCandidate(front.settings.max_retries)(front.study, failed)
            cid = str(failed.user_attrs["candidate_id"])
            log_event(Path(front.settings.directory), "retry-enqueued", cid, trial=failed.number)


def run_trial(front: FrontStudy, trial: FrozenTrial, stop: StopRequest | None = None) -> None:
    """Train `trial`'s candidate and tell the study how it went."""
    cid = str(trial.user_attrs["candidate_id"])
    directory = Path(front.settings.directory)
    if _taken(front, trial):
        front.study.tell(trial.number, state=TrialState.PRUNED)
        return
    trial_id = front.trial_id(trial)
    for key, value in (("recipe", front.settings.recipe.to_dict()), ("host", HOST)):
        front.storage.set_trial_user_attr(trial_id, key, value)
    front.storage.set_trial_user_attr(trial_id, "pid", os.getpid())
    stop = stop or StopRequest()
    with Heartbeat(front.storage, trial_id, front.settings.heartbeat) as beat:
        try:
            result = _train(front, trial, WatchedReporter(beat.lost, stop, f"[{cid}] "))
        except TrialLost:
            log_event(directory, "lost", cid, trial=trial.number)
            return
        except (Interrupted, KeyboardInterrupt) as exc:
            # Failed, not left running: the same command enqueues the candidate again at once
            # and resumes it from last.pt, instead of waiting out the heartbeat's grace period.
            _fail(front, trial, Interrupted("interrupted (Ctrl-C)"), "interrupted")
            raise KeyboardInterrupt from exc
        except UsageError as exc:
            _fail(front, trial, exc, "configuration")
            raise
        except Exception as exc:  # transient: recorded and retried, the worker goes on
            if _fail(front, trial, exc, "transient"):
                RetryCandidate(front.settings.max_retries)(front.study, trial)
            return
    _complete(front, trial, result)


def _train(front: FrontStudy, trial: FrozenTrial, reporter: Reporter) -> Any:
    # Imported here: training needs torch, a worker waiting for trials does not.
    from hardnet_analysis.train.loop import train

    cid = str(trial.user_attrs["candidate_id"])
    run_dir = front.settings.run_dir(cid)
    definition = run_dir / "definition.json"
    if not definition.is_file():
        atomic_write_json(definition, trial.user_attrs["definition"])
    resume = (run_dir / "last.pt").is_file()
    config = front.settings.recipe.replace(model=str(definition), out=str(run_dir), resume=resume)
    directory = Path(front.settings.directory)
    log_event(directory, "start", cid, trial=trial.number, resume=resume)
    return train(config, reporter)


def _fail(front: FrontStudy, trial: FrozenTrial, error: BaseException, kind: str) -> bool:
    """Record `error` on `trial` and fail it; False if it was no longer this worker's."""
    cid = str(trial.user_attrs["candidate_id"])
    message = (f"{type(error).__name__}: {error}".splitlines() or [""])[0]
    trial_id = front.trial_id(trial)
    try:
        front.storage.set_trial_user_attr(trial_id, "error", message)
        front.storage.set_trial_user_attr(trial_id, "error_kind", kind)
        front.study.tell(trial.number, state=TrialState.FAIL)
    except (ValueError, UpdateFinishedTrialError):
        return False
    log_event(Path(front.settings.directory), "failed", cid, trial=trial.number, error=message)
    return True


def _complete(front: FrontStudy, trial: FrozenTrial, result: Any) -> None:
    """Tell the study the trial's values: the best validation score (top-1 or mIoU, %) and the
    candidate's CIO; the final epoch's metrics (`TASK_METRICS`) become user attributes."""
    cid = str(trial.user_attrs["candidate_id"])
    last = result.history[-1] if result.history else {}
    trial_id = front.trial_id(trial)
    cio = float(trial.user_attrs["candidate"]["cio"])
    score, second, final = TASK_METRICS[front.settings.recipe.task]
    try:
        front.storage.set_trial_user_attr(trial_id, second, last.get(f"val_{second}"))
        front.storage.set_trial_user_attr(trial_id, final, last.get(f"val_{score}"))
        front.study.tell(trial.number, [result.best, cio])
    except (ValueError, UpdateFinishedTrialError):
        return  # taken over meanwhile: its retry resumes from last.pt and tells instead
    log_event(Path(front.settings.directory), "done", cid, trial=trial.number)


def open_and_run(storage: str, study: str | None, poll: float = 1.0) -> tuple[FrontStudy, int]:
    """Open the front study and run one worker on it (`hda search-worker`)."""
    front = open_front_study(storage, study)
    _check_recipe(front)
    return front, run_worker(front, poll)


def _check_recipe(front: FrontStudy) -> None:
    """The recipe's data must load on this host before any trial is taken."""
    # Imported here, as in `_train`: loading the data needs torch.
    from hardnet_analysis.train.task import make_task

    recipe = front.settings.recipe
    make_task(recipe).load(recipe)
