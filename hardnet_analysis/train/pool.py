"""Search to train: worker processes, on one host or several sharing a directory, train a front.

Directory layout (``DIR`` is the search's output):

- ``front.json`` (from the search): a `hardnet_analysis.fronts.SearchFront`, whose candidates
  name their definition files (``candidates/<id>.json``);
- ``train_config.json``: the pool's settings and the `TrainConfig` shared by every candidate;
- ``claims/<id>.json``: who trains a candidate now (`hardnet_analysis.train.claims`): exactly one
  worker wins it; a claim older than ``claim_timeout`` seconds, or held by a dead process on this
  host, is stale and taken over;
- ``runs/<id>/``: the candidate's run directory (``last.pt`` makes an interrupted one resume);
  ``result.json`` marks it done, ``failures.json`` lists failed attempts with their errors;
- ``events.jsonl``: one appended line per start, completion and failure (an audit trail);
- ``front_trained.json``: a `hardnet_analysis.fronts.TrainedFront`, the front re-ranked by
  accuracy (higher better) against CIO (lower).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_json
from hardnet_analysis.fronts import (
    FRONT_FILE,
    TRAINED_FILE,
    FrontCandidate,
    SearchFront,
    Status,
    TrainedCandidate,
    TrainedFront,
)
from hardnet_analysis.pareto import nondominated_ranks
from hardnet_analysis.train.claims import HOST, Claim, read_json_object
from hardnet_analysis.train.config import CLAIM_TIMEOUT_S, MAX_RETRIES, TrainConfig

SETTINGS = "train_config.json"


@dataclass(frozen=True)
class PoolSettings:
    """What every worker of a pool agrees on, stored in ``DIR/train_config.json``."""

    top_n: int
    max_retries: int
    claim_timeout: float
    config: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "hda-train-pool",
            "version": 1,
            "top_n": self.top_n,
            "max_retries": self.max_retries,
            "claim_timeout": self.claim_timeout,
            "config": self.config.to_dict(),
        }

    @classmethod
    def load(cls, out_dir: Path) -> PoolSettings:
        path = out_dir / SETTINGS
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            config = TrainConfig.from_dict(data["config"])
            return cls(data["top_n"], data["max_retries"], data["claim_timeout"], config)
        except FileNotFoundError:
            raise UsageError(
                f"{str(out_dir)!r} has no {SETTINGS}; start the pool with `hda search ... "
                "--out DIR --train-top N` (or train_front() from Python), then more hosts "
                "can join with `hda search-worker DIR`"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{str(path)!r} is not a pool settings file: {exc}") from None


def load_front(out_dir: Path) -> list[FrontCandidate]:
    """The candidates of ``DIR/front.json``, best first (by their ``rank``); each must name its
    definition file."""
    path = out_dir / FRONT_FILE
    if not path.is_file():
        raise UsageError(f"{str(out_dir)!r} has no {FRONT_FILE} (run `hda search` first)")
    candidates = SearchFront.read(path).candidates
    missing = [c.id for c in candidates if c.definition is None]
    if missing:
        raise UsageError(f"front file {str(path)!r}: no definition for {', '.join(missing)}")
    return sorted(candidates, key=lambda c: c.rank)


def log_event(out_dir: Path, event: str, cid: str, **fields: Any) -> None:
    """Append one JSON line to ``events.jsonl`` (O_APPEND: lines from workers never interleave)."""
    record = {"event": event, "id": cid, "host": HOST, "pid": os.getpid(), "time": time.time()}
    line = (json.dumps({**record, **fields}) + "\n").encode()
    fd = os.open(out_dir / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# --- one candidate -----------------------------------------------------------------------------


def _failures(run_dir: Path) -> list[dict[str, Any]]:
    data = read_json_object(run_dir / "failures.json")
    return list(data["attempts"]) if data else []


def _status(out_dir: Path, cid: str, max_retries: int) -> Status:
    run_dir = out_dir / "runs" / cid
    if (run_dir / "result.json").is_file():
        return "done"
    if len(_failures(run_dir)) > max_retries:
        return "failed"
    return "pending"


def _train_candidate(out_dir: Path, candidate: FrontCandidate, settings: PoolSettings) -> None:
    from hardnet_analysis.train.loop import train
    from hardnet_analysis.train.progress import Reporter

    cid = candidate.id
    run_dir = out_dir / "runs" / cid
    resume = (run_dir / "last.pt").is_file()
    model = str(out_dir / str(candidate.definition))
    config = settings.config.replace(model=model, out=str(run_dir), resume=resume)
    log_event(out_dir, "start", cid, resume=resume)
    result = train(config, Reporter(prefix=f"[{cid}] "))
    last = result.history[-1] if result.history else {}
    document = {"id": cid, "best_top1": result.best_top1, "final": last, "host": HOST}
    atomic_write_json(run_dir / "result.json", {**document, "completed_at": time.time()})
    log_event(out_dir, "done", cid, best_top1=result.best_top1)


def _record_failure(out_dir: Path, cid: str, error: BaseException) -> None:
    run_dir = out_dir / "runs" / cid
    attempts = _failures(run_dir)
    message = f"{type(error).__name__}: {error}".splitlines()[0]
    attempts.append({"error": message, "host": HOST, "pid": os.getpid(), "time": time.time()})
    atomic_write_json(run_dir / "failures.json", {"id": cid, "attempts": attempts})
    log_event(out_dir, "failed", cid, error=message, attempt=len(attempts))


def _try_candidate(out_dir: Path, candidate: FrontCandidate, settings: PoolSettings) -> bool:
    """Train `candidate` if its claim can be had; True if this worker handled it."""
    claim = Claim(out_dir / "claims" / f"{candidate.id}.json", settings.claim_timeout)
    if not claim.acquire():
        return False
    try:
        # re-check under the claim: another worker may have finished it just before
        if _status(out_dir, candidate.id, settings.max_retries) != "pending":
            return True
        try:
            _train_candidate(out_dir, candidate, settings)
        except Exception as exc:  # any failure of one candidate is recorded, never fatal
            _record_failure(out_dir, candidate.id, exc)
        return True
    finally:
        claim.release()


def run_worker(out_dir: str | Path, poll: float = 1.0) -> int:
    """Train pending candidates of ``DIR`` until none is left; returns how many this one handled.

    While every pending candidate is claimed by a live worker, it waits (`poll` seconds) so that a
    stale claim is still taken over. Writes ``front_trained.json`` when it stops.
    """
    root = Path(out_dir)
    settings = PoolSettings.load(root)
    candidates = load_front(root)[: settings.top_n]
    handled = 0
    while True:
        pending = [c for c in candidates if _status(root, c.id, settings.max_retries) == "pending"]
        if not pending:
            break
        took = next((c for c in pending if _try_candidate(root, c, settings)), None)
        if took is None:
            time.sleep(poll)
        else:
            handled += 1
    write_trained_front(root, candidates, settings.max_retries)
    return handled


# --- the re-ranked front -----------------------------------------------------------------------


def pareto_ranks(points: list[tuple[float, float]]) -> list[int]:
    """Non-dominated sorting of (accuracy, cio), accuracy maximised and CIO minimised; rank 1
    is the front, rank 2 the front without it, and so on (`hardnet_analysis.pareto`):
    ``pareto_ranks([(90, 10), (80, 5), (70, 20)]) == [1, 1, 2]``.
    """
    accuracy = np.array([-p[0] for p in points], dtype=np.float64)
    cio = np.array([p[1] for p in points], dtype=np.float64)
    return [int(r) for r in nondominated_ranks(accuracy, cio)]


def _trained(out_dir: Path, candidate: FrontCandidate, max_retries: int) -> TrainedCandidate:
    """Where `candidate`'s training stands, from its run directory."""
    run_dir = out_dir / "runs" / candidate.id
    result = read_json_object(run_dir / "result.json") or {}
    final = result.get("final", {})
    failures = _failures(run_dir)
    return TrainedCandidate(
        candidate,
        status=_status(out_dir, candidate.id, max_retries),
        top1=result.get("best_top1"),
        top5=final.get("val_top5"),
        final_top1=final.get("val_top1"),
        error=failures[-1]["error"] if failures else None,
        run=f"runs/{candidate.id}",
    )


def write_trained_front(out_dir: Path, candidates: list[FrontCandidate], max_retries: int) -> Path:
    """``front_trained.json``: every candidate with status, top1/top5 and its Pareto rank.

    Trained candidates come first, by (pareto_rank, -top1, cio); the others keep front order.
    """
    rows = [_trained(out_dir, c, max_retries) for c in candidates]
    done = [r for r in rows if r.status == "done"]
    scores = [(float(r.top1 or 0.0), float(r.candidate.metrics["cio"])) for r in done]
    ranked = [
        replace(r, pareto_rank=rank) for r, rank in zip(done, pareto_ranks(scores), strict=True)
    ]
    ranked.sort(key=lambda r: (r.pareto_rank, -(r.top1 or 0.0), r.candidate.metrics["cio"]))
    others = [r for r in rows if r.status != "done"]
    return TrainedFront((*ranked, *others)).write(out_dir / TRAINED_FILE)


# --- local pools -------------------------------------------------------------------------------


def start_workers(out_dir: Path, workers: int) -> list[subprocess.Popen[bytes]]:
    """`workers` processes of ``hda search-worker DIR``, sharing this machine's cores."""
    import hardnet_analysis

    package_root = str(Path(hardnet_analysis.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    command = [sys.executable, "-m", "hardnet_analysis", "search-worker", str(out_dir)]
    return [subprocess.Popen(command, env=env) for _ in range(workers)]


@contextlib.contextmanager
def _reaped(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            process.wait()


def run_local_pool(out_dir: Path, workers: int) -> int:
    """Run `workers` local worker processes to the end; the number that exited with an error."""
    processes = start_workers(out_dir, workers)
    with _reaped(processes):
        return sum(1 for p in processes if p.wait() != 0)


def train_front(
    out_dir: str | Path,
    top_n: int,
    train_config: TrainConfig,
    workers: int = 1,
    max_retries: int = MAX_RETRIES,
    claim_timeout: float = CLAIM_TIMEOUT_S,
) -> Path:
    """Train the best `top_n` candidates of ``DIR/front.json`` with `workers` local processes.

    `train_config` is the recipe for every candidate (its `model` and `out` are replaced by the
    candidate's definition and ``DIR/runs/<id>``). Completed candidates are skipped, interrupted
    ones resume, failures are retried up to `max_retries` times. More workers may join from other
    hosts with ``hda search-worker DIR``. Returns the path of ``front_trained.json``.
    """
    root = Path(out_dir)
    load_front(root)  # fail early on a missing or foreign front
    settings = PoolSettings(top_n, max_retries, claim_timeout, train_config)
    atomic_write_json(root / SETTINGS, settings.to_dict())
    if run_local_pool(root, workers):
        print(f"hda: warning: some workers of {root} exited with an error", file=sys.stderr)
    candidates = load_front(root)[:top_n]
    return write_trained_front(root, candidates, max_retries)
