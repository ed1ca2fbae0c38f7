"""Search to train: a killed and restarted pool trains every candidate exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hardnet_analysis.fileio import atomic_write_json
from hardnet_analysis.fronts import (
    FRONT_FILE,
    TRAINED_FILE,
    FrontCandidate,
    SearchFront,
    TrainedFront,
)
from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.pool import PoolSettings, pareto_ranks
from tests.trainkit import ROOT, tiny_definition_file

GOOD = ("c0", "c1", "c2", "c3")


def fake_front(candidates: tuple[FrontCandidate, ...]) -> SearchFront:
    """A front as `hda search` would write it around `candidates` (the summary is made up)."""
    metrics = {"params": 0, "macs": 0, "cio": 5000, "min_moc": 1.0, "act_bytes": 0}
    return SearchFront(
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
    """Four tiny HarDNets and one candidate whose definition file is broken."""
    candidates = []
    for rank, cid in enumerate((*GOOD, "broken")):
        if cid == "broken":
            (root / "candidates").mkdir(parents=True, exist_ok=True)
            (root / "candidates" / "broken.json").write_text("{not json")
        else:
            tiny_definition_file(root / "candidates", cid, growth=6 + 2 * rank)
        candidates.append(fake_candidate(cid, rank, 5000 - 900 * rank, f"candidates/{cid}.json"))
    fake_front(tuple(candidates)).write(root / FRONT_FILE)
    config = TrainConfig(
        model="-", dataset="digits", image_size=16, epochs=2, batch_size=64, deterministic=True
    )
    atomic_write_json(root / "train_config.json", PoolSettings(5, 1, 600.0, config).to_dict())


def pool(root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "hardnet_analysis", "search-worker", str(root)]
    return subprocess.Popen(
        [*command, "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so the test can kill the whole pool
    )


def events(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]


def test_killed_pool_finishes_every_candidate_once(tmp_path: Path) -> None:
    root = tmp_path / "search"
    make_front(root)
    first = pool(root)
    deadline = time.monotonic() + 240
    # kill once a candidate has a checkpoint but is not finished (it is mid-training)
    while time.monotonic() < deadline and first.poll() is None:
        runs = list((root / "runs").glob("*/last.pt")) if (root / "runs").exists() else []
        if any(not (p.parent / "result.json").exists() for p in runs):
            break
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    unfinished = [c for c in GOOD if not (root / "runs" / c / "result.json").exists()]
    assert unfinished, "the pool finished before it could be killed"

    second = pool(root)
    assert second.wait(timeout=300) == 0
    log = events(root)
    for cid in GOOD:
        assert [e["event"] for e in log if e["id"] == cid].count("done") == 1, cid
        result = json.loads((root / "runs" / cid / "result.json").read_text())
        assert result["final"]["epoch"] == 2
    assert any(e["event"] == "start" and e["resume"] for e in log), "no interrupted run resumed"
    failures = json.loads((root / "runs" / "broken" / "failures.json").read_text())["attempts"]
    assert len(failures) == 2 and "not valid JSON" in failures[0]["error"]  # 1 try + 1 retry
    front = TrainedFront.read(root / TRAINED_FILE).candidates
    assert [c.status for c in front].count("done") == 4
    assert front[-1].candidate.id == "broken" and front[-1].status == "failed"
    assert not list((root / "claims").glob("*.json")), "claims left behind"


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


def _foreign_claim(path: Path, age: float) -> None:
    """A claim held by a process on another host, last heartbeat `age` seconds ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"host": "other-host.invalid", "pid": 1, "token": "theirs", "time": time.time() - age}
    path.write_text(json.dumps(body))
    os.utime(path, (time.time() - age, time.time() - age))


def test_claim_of_another_host_expires_by_heartbeat_age(tmp_path: Path) -> None:
    from hardnet_analysis.train.claims import Claim

    fresh, stale = tmp_path / "claims" / "a.json", tmp_path / "claims" / "b.json"
    _foreign_claim(fresh, age=5)  # a live worker elsewhere: its pid cannot be checked from here
    _foreign_claim(stale, age=120)
    first = Claim(fresh, timeout=60)
    assert not first.acquire()
    assert json.loads(fresh.read_text())["token"] == "theirs"  # left alone
    second = Claim(stale, timeout=60)
    assert second.acquire()  # older than the timeout: taken over
    try:
        assert second.held() and json.loads(stale.read_text())["token"] == second.token
        assert not Claim(stale, timeout=60).acquire()  # and now it is exclusive
    finally:
        second.release()
    assert not stale.exists()
