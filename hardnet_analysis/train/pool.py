"""Training a search front: the command's side (`train_front`) and local worker processes.

`train_front` trains the best candidates of ``DIR/front.json`` (written by ``hda search --out
DIR``) as an Optuna study (`hardnet_analysis.train.trials`):

1. everything checkable is checked before any training (`preflight`): the data loads and holds
   usable images, and every candidate builds for its classes and gives (N, classes) logits; a
   failure is a one-line `UsageError` (exit status 2);
2. the front's study is created, or reopened by a later run, in the storage (default
   ``DIR/optuna.db``) with one enqueued trial per candidate that is neither done nor pending, so a
   later run with fixed settings retries what failed;
3. `workers` local ``hda search-worker --storage URL --study NAME`` processes train them
   (`hardnet_analysis.train.worker`); workers on other hosts may join with the same command;
4. ``DIR/front_trained.json`` is written from the study and returned.

Run directories are ``DIR/runs/<front id>/<candidate id>/``; ``DIR/events.jsonl`` logs each start,
completion and failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hardnet_analysis
from hardnet_analysis.documents.fronts import FRONT_FILE, FrontCandidate, SearchFront, TrainedFront
from hardnet_analysis.errors import HdaError, UsageError
from hardnet_analysis.fileio import read_json
from hardnet_analysis.train.config import GRACE_S, HEARTBEAT_S, MAX_RETRIES, TrainConfig
from hardnet_analysis.train.trials import (
    FrontSettings,
    create_front_study,
    write_trained_front,
)


def load_front(out_dir: Path) -> SearchFront:
    """``DIR/front.json``; each candidate must name its definition file."""
    path = out_dir / FRONT_FILE
    if not path.is_file():
        raise UsageError(f"{str(out_dir)!r} has no {FRONT_FILE} (run `hda search --out DIR`)")
    front = SearchFront.read(path)
    missing = [c.id for c in front.candidates if c.definition is None]
    if missing:
        raise UsageError(f"front file {str(path)!r}: no definition for {', '.join(missing)}")
    return front


def preflight(recipe: TrainConfig, models: list[str]) -> None:
    """Every check that needs no training, for `recipe` on each of `models` (definition files
    or names): the data (the task's `load`), then each model's build and output (one forward
    pass)."""
    # Imported here: building models needs torch, the command's side of the pool does not.
    from hardnet_analysis.train.model import build_for_classes
    from hardnet_analysis.train.task import make_task

    task = make_task(recipe)
    data = task.load(recipe)
    classes = recipe.num_classes or data.num_classes
    for model in models:
        net, _ = build_for_classes(model, classes)
        task.check_output(net, model, classes, data)


def _candidates(root: Path, front: SearchFront, top_n: int) -> list[tuple[FrontCandidate, Any]]:
    """The best `top_n` candidates, best first, each with its definition document."""
    best = sorted(front.candidates, key=lambda c: c.rank)[:top_n]
    return [(c, read_json(root / str(c.definition), "definition file")) for c in best]


def start_workers(url: str, study: str, workers: int) -> list[subprocess.Popen[bytes]]:
    """`workers` processes of ``hda search-worker --storage URL --study NAME``."""
    package_root = str(Path(hardnet_analysis.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    command = [sys.executable, "-m", "hardnet_analysis", "search-worker"]
    command += ["--storage", url, "--study", study]
    return [subprocess.Popen(command, env=env) for _ in range(workers)]


@contextlib.contextmanager
def _reaped(processes: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """On the way out (an interrupt, an error), stop the workers still running as Ctrl-C
    would: SIGINT first, so each fails its trial as interrupted and the same command resumes it
    at once, then SIGTERM and SIGKILL for any that did not stop within `STOP_GRACE_S`."""
    try:
        yield
    finally:
        for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            running = [p for p in processes if p.poll() is None]
            for process in running:
                process.send_signal(stop)
            deadline = time.monotonic() + STOP_GRACE_S
            for process in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))


#: Seconds a worker gets to stop after each signal of `_reaped`.
STOP_GRACE_S = 10.0
#: The exit status of a worker stopped by Ctrl-C (hda's, and a shell's 128 + SIGINT).
INTERRUPTED = 130


def run_local_pool(url: str, study: str, workers: int) -> list[int]:
    """Run `workers` local worker processes to the end; their exit statuses. A worker stopped
    by SIGINT (Ctrl-C reaching it alone) stops the others and this command too."""
    processes = start_workers(url, study, workers)
    with _reaped(processes):
        codes = [p.wait() for p in processes]
    if any(code in (INTERRUPTED, -signal.SIGINT) for code in codes):
        raise KeyboardInterrupt
    return codes


def train_front(
    out_dir: str | Path,
    top_n: int,
    recipe: TrainConfig,
    workers: int = 1,
    max_retries: int = MAX_RETRIES,
    storage: str | None = None,
    heartbeat: tuple[int, int] = (HEARTBEAT_S, GRACE_S),
) -> TrainedFront:
    """Train the best `top_n` candidates of ``DIR/front.json`` (see the module docstring) with
    `workers` local processes (0: none, only prepare the study for workers started elsewhere).

    `recipe` is every candidate's recipe (its `model` and `out` are replaced). `storage` is any
    storage `hardnet_analysis.train.storage` names (default ``DIR/optuna.db``); `heartbeat` is
    the interval and grace period in seconds. Returns the trained front (``front_trained.json``).
    A worker stopped by a configuration error raises it here as a UsageError.
    """
    root = Path(out_dir).resolve()
    front = load_front(root)
    candidates = _candidates(root, front, top_n)
    preflight(recipe, [str(root / str(c.definition)) for c, _ in candidates])
    settings = FrontSettings(front.id, str(root), recipe, max_retries, *heartbeat)
    study = create_front_study(storage or str(root), settings, candidates)
    print(f"hda: training study {study.name!r} in {study.url}", file=sys.stderr)
    codes = run_local_pool(study.url, study.name, workers) if workers else []
    trained = write_trained_front(study)
    if 2 in codes:
        raise UsageError(f"a worker stopped on a configuration error: {_last_error(trained)}")
    return trained


def _last_error(trained: TrainedFront) -> str:
    errors = [c.error for c in trained.candidates if c.error]
    return errors[-1] if errors else "see its message above"


def unfinished(trained: TrainedFront) -> HdaError | None:
    """An error (exit status 1) naming the candidates not done, or None when all are."""
    left = [c for c in trained.candidates if c.status != "done"]
    if not left:
        return None
    named = "; ".join(f"{c.candidate.id} {c.status}: {c.error or 'not trained yet'}" for c in left)
    return HdaError(
        f"{len(left)} of {len(trained.candidates)} candidates did not finish ({named}); run the "
        "command again to retry them"
    )
