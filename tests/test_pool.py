"""Training a front on Optuna's storage: workers on SQLite, PostgreSQL and a journal file, one
killed mid-trial and one started late, train every candidate to completion exactly once."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import FrozenTrial, TrialState

from hardnet_analysis.documents.fronts import (
    FRONT_FILE,
    TRAINED_FILE,
    FrontCandidate,
    SearchFront,
    TrainedFront,
)
from hardnet_analysis.shapes import InputShape
from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.pool import train_front
from hardnet_analysis.train.storage import open_storage, shown, storage_url
from hardnet_analysis.train.trials import (
    FrontStudy,
    RetryCandidate,
    open_front_study,
    pareto_ranks,
)
from hardnet_analysis.train.worker import run_worker
from tests import pgserver
from tests.trainkit import hda_background, image_folder, tiny_definition_file

CANDIDATES = ("c0", "c1", "c2", "c3")
FRONT_ID = "f00dfeedbeef"
EPOCHS = 2


def fake_front(candidates: tuple[FrontCandidate, ...]) -> SearchFront:
    """A front as `hda search` would write it around `candidates` (the summary is made up)."""
    metrics = {"params": 0, "macs": 0, "cio": 5000, "min_moc": 1.0, "act_bytes": 0}
    return SearchFront(
        id=FRONT_ID, command="hda search --made-up", space={"format": "hda-search-space"},
        template="tiny", input=(16, 16), batch=1, dtype="fp32", budgets={}, objective="cio",
        objective_info={}, space_size=len(candidates), feasible=len(candidates),
        front_size=None, template_metrics=metrics, candidates=candidates,
    )  # fmt: skip


def fake_candidate(cid: str, rank: int, cio: int, definition: str | None) -> FrontCandidate:
    metrics = {"params": 1000 * rank, "macs": 10**6, "cio": cio, "min_moc": 1.0, "act_bytes": 0}
    return FrontCandidate(
        cid, rank, (6, 8), (1.6, 1.6), (4, 4), metrics, 0.0, definition=definition
    )


def make_front(root: Path) -> None:
    """Four tiny HarDNets, their CIO falling with their rank."""
    candidates = []
    for rank, cid in enumerate(CANDIDATES, start=1):
        tiny_definition_file(root / "candidates" / FRONT_ID, cid, growth=4 + 2 * rank)
        path = f"candidates/{FRONT_ID}/{cid}.json"
        candidates.append(fake_candidate(cid, rank, 5000 - 900 * rank, path))
    fake_front(tuple(candidates)).write(root / FRONT_FILE)


def prepare(root: Path, storage: str | None) -> str:
    """The front's study, made and enqueued with no local worker; returns its name."""
    make_front(root)
    # Small batches: about 90 steps an epoch, so that a trial's second epoch lasts long enough
    # for the test to catch a worker mid-trial even on a fast, quiet machine (with 12 steps the
    # first worker finished every candidate before the poll saw it).
    recipe = TrainConfig(
        model="-",
        dataset="digits",
        image_size=InputShape.of_image(16),
        epochs=EPOCHS,
        batch_size=16,
    )
    # A 30 s grace: with three workers training on 2 cores, a live worker's heartbeat thread
    # once went 6 s unheard (a retry then failed as lost and the candidate ran out of retries),
    # and over 15 s twice with a calibration-sized job on the same 2 cores.
    trained = train_front(root, 4, recipe, workers=0, storage=storage, heartbeat=(1, 30))
    assert [c.status for c in trained.candidates] == ["pending"] * 4
    return trained.study


def running_in(storage: str, study: str, pid: int, root: Path) -> bool:
    """True once worker `pid` runs a trial whose candidate has a checkpoint (it is mid-trial)."""
    trials = optuna.load_study(study_name=study, storage=open_storage(storage)).get_trials(
        deepcopy=False, states=(TrialState.RUNNING,)
    )
    return any(
        t.user_attrs.get("pid") == pid
        and (root / "runs" / FRONT_ID / t.user_attrs["candidate_id"] / "last.pt").exists()
        for t in trials
    )


def kill_mid_trial(worker: subprocess.Popen[bytes], storage: str, study: str, root: Path) -> None:
    deadline = time.monotonic() + 240
    while not running_in(storage, study, worker.pid, root):
        assert worker.poll() is None and time.monotonic() < deadline, "never caught mid-trial"
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    assert worker.wait() == -signal.SIGKILL


def three_workers(root: Path, storage: str | None) -> None:
    """Two workers, one killed mid-trial, a third started late; the survivors must exit 0."""
    study = prepare(root, storage)
    spec = storage or str(root)
    args = ["search-worker", str(root)] if storage is None else ["search-worker", "--storage", spec]
    log = root / "workers.log"
    first, second = hda_background(log, *args), hda_background(log, *args)
    kill_mid_trial(first, spec, study, root)
    late = hda_background(log, *args)
    for worker in (second, late):
        assert worker.wait(timeout=600) == 0, log.read_text()[-3000:]
    check_exactly_once(root, spec, study)


def check_exactly_once(root: Path, spec: str, name: str) -> None:
    """Counted from the study and from the run directories."""
    study = optuna.load_study(study_name=name, storage=open_storage(spec))
    trials = study.get_trials(deepcopy=False)
    done = Counter(t.user_attrs["candidate_id"] for t in trials if t.state == TrialState.COMPLETE)
    assert done == dict.fromkeys(CANDIDATES, 1)
    killed = [t for t in trials if t.state == TrialState.FAIL]
    assert killed, "the killed worker's trial was not failed"
    retried = {t.system_attrs.get("failed_trial") for t in trials if t.state == TrialState.COMPLETE}
    assert {t.number for t in killed} <= retried  # each taken over and finished by a retry
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    assert Counter(e["id"] for e in events if e["event"] == "done") == dict.fromkeys(CANDIDATES, 1)
    assert any(e["event"] == "start" and e["resume"] for e in events), "nothing resumed last.pt"
    for cid in CANDIDATES:
        lines = (root / "runs" / FRONT_ID / cid / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == list(range(1, EPOCHS + 1))
    check_values(TrainedFront.read(root / TRAINED_FILE), study)


def check_values(trained: TrainedFront, study: optuna.Study) -> None:
    """`optuna.load_study` gives the trained front's values and Pareto front."""
    assert trained.study == study.study_name
    assert [c.status for c in trained.candidates] == ["done"] * 4
    values = {t.user_attrs["candidate_id"]: t.values for t in study.best_trials}
    front = {c.candidate.id: [c.top1, c.candidate.metrics["cio"]] for c in trained.candidates}
    assert values == {cid: front[cid] for cid in values}
    assert set(values) == {c.candidate.id for c in trained.candidates if c.pareto_rank == 1}


def test_workers_on_sqlite_finish_every_candidate_once(tmp_path: Path) -> None:
    three_workers(tmp_path / "search", None)  # workers given DIR: its optuna.db


def test_workers_on_a_journal_file_finish_every_candidate_once(tmp_path: Path) -> None:
    three_workers(tmp_path / "search", str(tmp_path / "trials.log"))


@pytest.mark.skipif(not pgserver.available(), reason="no PostgreSQL server tools (initdb, pg_ctl)")
def test_workers_on_postgresql_finish_every_candidate_once(tmp_path: Path) -> None:
    with pgserver.postgres_server() as url:
        three_workers(tmp_path / "search", url)


def test_a_worker_refuses_at_once_without_data_or_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hardnet_analysis.cli.main import main

    assert main(["search-worker"]) == 2
    assert main(["search-worker", "--storage", str(tmp_path / "empty.log")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "give the search's DIR or --storage URL" in err[0] and "does not exist" in err[1]
    assert not (tmp_path / "empty.log").exists()  # a refused worker creates no storage
    root = tmp_path / "search"
    data = image_folder(tmp_path / "data", classes=2, per_class=2)
    make_front(root)
    recipe = TrainConfig(
        model="-", data=str(data), image_size=InputShape.of_image(16), epochs=1, batch_size=2
    )
    name = train_front(root, 4, recipe, workers=0).study
    shutil.rmtree(data)  # this host lacks the data: the worker takes no trial
    assert main(["search-worker", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hda search-worker: error: data directory")
    trials = optuna.load_study(study_name=name, storage=storage_url(str(root))).get_trials()
    assert [t.state for t in trials] == [TrialState.WAITING] * 4


def failed_trial(kind: str | None = None, history: tuple[int, ...] = ()) -> FrozenTrial:
    return optuna.trial.create_trial(
        state=TrialState.FAIL,
        user_attrs={"error_kind": kind} if kind else {},
        system_attrs={"retry_history": list(history)} if history else {},
    )


def test_a_lost_or_transient_failure_is_owed_a_retry_while_retries_are_left() -> None:
    retry = RetryCandidate(max_retries=2)
    assert retry.owed(failed_trial()) and retry.owed(failed_trial("transient"))
    assert not retry.owed(failed_trial("configuration"))
    assert not retry.owed(failed_trial("interrupted"))
    assert retry.owed(failed_trial(history=(0,)))  # the second retry
    assert not retry.owed(failed_trial(history=(0, 4)))  # a third would exceed max_retries


def owing_front(root: Path, grace: int, kind: str | None = None) -> FrontStudy:
    """The front's study (SQLite) with c1-c3 done and c0's one trial failed as `kind` (None:
    lost) and no retry enqueued: the moment between a worker failing a trial and enqueueing
    its retry, or forever if that worker died then."""
    make_front(root)
    recipe = TrainConfig(
        model="-", dataset="digits", image_size=InputShape.of_image(16), epochs=1, batch_size=64
    )
    train_front(root, 4, recipe, workers=0, heartbeat=(1, grace))
    front = open_front_study(str(root))
    for trial in front.study.get_trials():
        front.storage.set_trial_state_values(front.trial_id(trial), TrialState.RUNNING)
        if trial.user_attrs["candidate_id"] != "c0":
            front.study.tell(trial.number, [90.0, 1000.0])
            continue
        if kind is not None:
            front.storage.set_trial_user_attr(front.trial_id(trial), "error_kind", kind)
        front.study.tell(trial.number, state=TrialState.FAIL)
    return front


def events(root: Path) -> list[tuple[str, str]]:
    lines = (root / "events.jsonl").read_text().splitlines()
    return [(e["event"], e["id"]) for e in map(json.loads, lines)]


def test_a_worker_waits_for_the_retry_another_worker_owes(tmp_path: Path) -> None:
    """The failing worker enqueues the retry 1.5 s later; the idle worker must not stop
    (reporting the candidate lost) but take the retry."""
    front = owing_front(tmp_path, grace=60)
    (failed,) = front.owed_retries()

    def enqueue() -> None:  # as the failing worker would, with a storage of its own
        other = open_front_study(str(tmp_path))
        RetryCandidate(other.settings.max_retries)(other.study, failed)

    timer = threading.Timer(1.5, enqueue)
    timer.start()
    assert run_worker(front, poll=0.2) == 1
    timer.join()
    assert events(tmp_path) == [("start", "c0"), ("done", "c0")]


def test_a_worker_enqueues_a_retry_owed_by_a_dead_worker_after_the_grace(tmp_path: Path) -> None:
    front = owing_front(tmp_path, grace=1)
    start = time.monotonic()
    assert run_worker(front, poll=0.2) == 1
    assert time.monotonic() - start > 1
    assert events(tmp_path) == [("retry-enqueued", "c0"), ("start", "c0"), ("done", "c0")]


def test_a_worker_stops_when_no_retry_is_owed(tmp_path: Path) -> None:
    front = owing_front(tmp_path, grace=60, kind="configuration")
    assert front.owed_retries() == []
    assert run_worker(front, poll=0.2) == 0


def test_storage_names(tmp_path: Path) -> None:
    assert storage_url(str(tmp_path)) == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert storage_url(str(tmp_path / "trials.log")) == str(tmp_path / "trials.log")
    assert storage_url("postgresql://u:secret@h/db") == "postgresql://u:secret@h/db"
    assert shown("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert shown("sqlite:////x/optuna.db") == "sqlite:////x/optuna.db"


def test_pareto_ranks_example() -> None:
    assert pareto_ranks([(90, 10), (80, 5), (70, 20), (90, 10)]) == [1, 1, 2, 1]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_pareto_ranks_brute_force(points: list[tuple[int, int]]) -> None:
    """Rank r points are dominated only by points of lower rank, and by one of rank r - 1."""
    ranks = pareto_ranks([(float(a), float(c)) for a, c in points])

    def dominates(p: tuple[int, int], q: tuple[int, int]) -> bool:
        return p[0] >= q[0] and p[1] <= q[1] and p != q

    for i, p in enumerate(points):
        dominators = [ranks[j] for j, q in enumerate(points) if dominates(q, p)]
        assert all(r < ranks[i] for r in dominators)
        assert ranks[i] == 1 or ranks[i] - 1 in dominators
