"""A search front's training as an Optuna study, and the trained front summarised from it.

The study is named ``hda-<front id>`` and has two objectives, the recipe task's score (best
validation top-1, or mIoU for segmentation; maximised) and the candidate's CIO (minimised), named
``top1`` (or ``miou``) and ``cio``. Its user attribute ``hda`` holds the
`FrontSettings` every worker follows (the recipe, the retries, the heartbeat, where the run
directories are). Each candidate starts as one enqueued trial whose user attributes are the
candidate's id (``candidate_id``), its front row (``candidate``) and its definition
(``definition``); the worker that takes it adds the recipe it trains with (``recipe``), its
``host`` and ``pid``, and on failure the one-line ``error`` and its ``error_kind``.

A candidate's later trials are retries (`RetryCandidate`: Optuna's retry scheme, with
``failed_trial`` and ``retry_history`` system attributes) or, after a later run of the command,
fresh trials. It is ``done`` once a trial is complete, ``pending`` while one waits or runs, and
``failed`` otherwise. A trial that found its candidate already taken is pruned and ignored.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from hardnet_analysis.documents.fronts import (
    TASK_METRICS,
    TRAINED_FILE,
    FrontCandidate,
    Status,
    TrainedCandidate,
    TrainedFront,
)
from hardnet_analysis.documents.records import decode
from hardnet_analysis.errors import UsageError
from hardnet_analysis.pareto import nondominated_ranks
from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.storage import (
    check_exists,
    open_storage,
    quiet_experimental,
    shown,
    storage_file,
    storage_url,
)

STUDY_PREFIX = "hda-"
SETTINGS_ATTR = "hda"
#: A trial lost with its worker has no error of its own; this says what happened.
LOST = "the worker stopped sending heartbeats (killed, or cut off from the storage)"


@dataclass(frozen=True)
class FrontSettings:
    """What every worker of a front follows (the study's ``hda`` user attribute): the front's
    id, the run root (``<directory>/runs/<front id>/<candidate id>/``), the recipe, how often a
    transient failure is retried, and the heartbeat interval and grace period in seconds."""

    front_id: str
    directory: str
    recipe: TrainConfig
    max_retries: int
    heartbeat: int
    grace: int

    def to_attr(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "recipe": self.recipe.to_dict()}

    @classmethod
    def from_attr(cls, value: Any, study: str) -> FrontSettings:
        try:
            return cls(**{**value, "recipe": TrainConfig.from_dict(value["recipe"])})
        except (TypeError, KeyError) as exc:
            raise UsageError(f"study {study!r} is not an hda front study ({exc})") from None

    def run_dir(self, cid: str) -> Path:
        return Path(self.directory) / "runs" / self.front_id / cid


class RetryCandidate:
    """Enqueue a failed trial's candidate again, at most `max_retries` times in a row.

    Optuna's `RetryHeartbeatStaleTrialCallback` does the same but copies every user attribute,
    so a retry would carry its predecessor's error, host and recipe; this copies only those the
    candidate was enqueued with.
    """

    def __init__(self, max_retries: int) -> None:
        self.max_retries = max_retries

    @staticmethod
    def history(trial: FrozenTrial) -> list[int]:
        """The numbers of the candidate's failed trials in a row, `trial` last."""
        return [*trial.system_attrs.get("retry_history", []), trial.number]

    def owed(self, trial: FrozenTrial) -> bool:
        """True if failed `trial` is to be retried: it was lost (no ``error_kind``) or failed
        transiently, and its candidate has retries left."""
        retryable = trial.user_attrs.get("error_kind", "transient") == "transient"
        return retryable and len(self.history(trial)) <= self.max_retries

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not self.owed(trial):
            return
        history = self.history(trial)
        first = trial.system_attrs.get("failed_trial", trial.number)
        system = {"failed_trial": first, "retry_history": history}
        keep = {k: trial.user_attrs[k] for k in ("candidate_id", "candidate", "definition")}
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING, user_attrs=keep, system_attrs=system
            )
        )


@dataclass
class FrontStudy:
    """An open front study: the Optuna study, the storage object it uses, the storage's URL
    and the front's settings."""

    study: optuna.Study
    storage: BaseStorage
    url: str
    settings: FrontSettings

    @property
    def name(self) -> str:
        return self.study.study_name

    def by_candidate(self) -> dict[str, list[FrozenTrial]]:
        """Each candidate's trials, oldest first (pruned ones left out)."""
        groups: dict[str, list[FrozenTrial]] = defaultdict(list)
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state != TrialState.PRUNED:
                groups[str(trial.user_attrs["candidate_id"])].append(trial)
        return dict(groups)

    def owed_retries(self) -> list[FrozenTrial]:
        """The failed trials whose retry is owed but not enqueued: each the last trial of a
        candidate with no trial done, waiting or running (so all failed; pruned ones are left
        out), if `RetryCandidate.owed`.

        A worker fails a trial and only then enqueues its retry, so another worker can see the
        candidate with nothing pending in between (a CI run saw a worker stop there, the
        candidate reported lost), and the failing worker may die in between."""
        retry = RetryCandidate(self.settings.max_retries)
        settled = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
        return [
            trials[-1]
            for trials in self.by_candidate().values()
            if not any(t.state in settled for t in trials) and retry.owed(trials[-1])
        ]

    def trial_id(self, trial: FrozenTrial) -> int:
        study_id = self.storage.get_study_id_from_name(self.name)
        return self.storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)


def study_name(front_id: str) -> str:
    return f"{STUDY_PREFIX}{front_id}"


def status(trials: list[FrozenTrial]) -> Status:
    """``done``, ``pending`` or ``failed`` (see the module docstring)."""
    states = {t.state for t in trials}
    if TrialState.COMPLETE in states:
        return "done"
    if states & {TrialState.WAITING, TrialState.RUNNING}:
        return "pending"
    return "failed"


def create_front_study(
    spec: str, settings: FrontSettings, candidates: list[tuple[FrontCandidate, dict[str, Any]]]
) -> FrontStudy:
    """Create (or reopen) the front's study in storage `spec`, store `settings` and enqueue each
    candidate (its row, its definition) that is neither done nor pending: the first run
    enqueues them all, a later one what failed."""
    storage = open_storage(spec)
    study = optuna.create_study(
        storage=storage,
        study_name=study_name(settings.front_id),
        directions=["maximize", "minimize"],
        load_if_exists=True,
    )
    with quiet_experimental():
        study.set_metric_names([TASK_METRICS[settings.recipe.task][0], "cio"])
    study.set_user_attr(SETTINGS_ATTR, settings.to_attr())
    front = FrontStudy(study, storage, storage_url(spec), settings)
    trials = front.by_candidate()
    for row, definition in candidates:
        if status(trials.get(row.id, [])) == "failed":  # also true of a candidate never tried
            attrs = {"candidate_id": row.id, "candidate": row.to_dict(), "definition": definition}
            study.enqueue_trial({}, user_attrs=attrs)
    return front


def trained_settings(spec: str, front_id: str) -> tuple[FrontSettings, int] | None:
    """The settings of front `front_id`'s study in storage `spec` and how many of its
    candidates are trained or training under them; None where the storage file or the study
    is not there yet (nothing is created to find out)."""
    path = storage_file(storage_url(spec))
    if path is not None and not path.exists():
        return None
    storage = open_storage(spec)
    name = study_name(front_id)
    if name not in optuna.get_all_study_names(storage):
        return None
    study = optuna.load_study(study_name=name, storage=storage)
    attr = study.user_attrs.get(SETTINGS_ATTR)
    if attr is None:
        return None
    busy = (TrialState.COMPLETE, TrialState.RUNNING)
    trained = {str(t.user_attrs.get("candidate_id")) for t in study.get_trials(states=busy)}
    return FrontSettings.from_attr(attr, name), len(trained)


def open_front_study(spec: str, name: str | None = None) -> FrontStudy:
    """The front study `name` in storage `spec` (None: the storage's only hda study), opened
    with the heartbeat and retries its settings ask for. A storage file that is not there is a
    UsageError, not created."""
    check_exists(spec)
    plain = open_storage(spec)
    names = [n for n in optuna.get_all_study_names(plain) if n.startswith(STUDY_PREFIX)]
    if name is None:
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise UsageError(
                f"storage {shown(storage_url(spec))!r} holds {len(names)} hda studies ({found}); "
                "name one with --study"
            )
        name = names[0]
    elif name not in names:
        raise UsageError(f"storage {shown(storage_url(spec))!r} has no hda study {name!r}")
    attr = optuna.load_study(study_name=name, storage=plain).user_attrs.get(SETTINGS_ATTR)
    settings = FrontSettings.from_attr(attr, name)
    retry = RetryCandidate(settings.max_retries)
    storage = open_storage(spec, settings.heartbeat, settings.grace, retry)
    study = optuna.load_study(study_name=name, storage=storage)
    return FrontStudy(study, storage, storage_url(spec), settings)


def pareto_ranks(points: list[tuple[float, float]]) -> list[int]:
    """Non-dominated sorting of (accuracy, cio), accuracy maximised and CIO minimised; rank 1
    is the front, rank 2 the front without it, and so on (`hardnet_analysis.pareto`):
    ``pareto_ranks([(90, 10), (80, 5), (70, 20)]) == [1, 1, 2]``.
    """
    accuracy = np.array([-p[0] for p in points], dtype=np.float64)
    cio = np.array([p[1] for p in points], dtype=np.float64)
    return [int(r) for r in nondominated_ranks(accuracy, cio)]


def _row(cid: str, trials: list[FrozenTrial], front: FrontStudy) -> TrainedCandidate:
    """Where candidate `cid` stands, from its trials."""
    where = f"study {front.name!r}, candidate {cid}"
    candidate = decode(FrontCandidate, trials[0].user_attrs["candidate"], where)
    done = next((t for t in trials if t.state == TrialState.COMPLETE), None)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    error = str(failed[-1].user_attrs.get("error", LOST)) if failed else None
    run = front.settings.run_dir(cid).relative_to(front.settings.directory)
    metrics: dict[str, Any] = {k: None for keys in TASK_METRICS.values() for k in keys}
    if done is not None and done.values:
        score, second, final = TASK_METRICS[front.settings.recipe.task]
        metrics |= {score: done.values[0]}
        metrics |= {k: done.user_attrs.get(k) for k in (second, final)}
    return TrainedCandidate(
        candidate,
        status=status(trials),
        error=error if done is None else None,
        run=str(run),
        attempts=len(trials),
        **metrics,
    )


def trained_front(front: FrontStudy) -> TrainedFront:
    """The study as a `TrainedFront`: trained candidates first, by (Pareto rank, -score, CIO),
    then the others in front order."""
    rows = [_row(cid, trials, front) for cid, trials in front.by_candidate().items()]
    done = [r for r in rows if r.status == "done"]
    scores = [(float(r.score or 0.0), float(r.candidate.metrics["cio"])) for r in done]
    ranks = pareto_ranks(scores) if scores else []
    ranked = [dataclasses.replace(r, pareto_rank=k) for r, k in zip(done, ranks, strict=True)]
    ranked.sort(key=lambda r: (r.pareto_rank, -(r.score or 0.0), r.candidate.metrics["cio"]))
    others = sorted((r for r in rows if r.status != "done"), key=lambda r: r.candidate.rank)
    task = front.settings.recipe.task
    return TrainedFront(front.name, shown(front.url), (*ranked, *others), task)


def write_trained_front(front: FrontStudy) -> TrainedFront:
    """`trained_front` written to ``<directory>/front_trained.json`` (atomically)."""
    document = trained_front(front)
    document.write(Path(front.settings.directory) / TRAINED_FILE)
    return document
