"""`hda search-worker [DIR] [--storage URL]`: train a search front's trials, as one worker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hardnet_analysis.cli.common import positive_int
from hardnet_analysis.errors import UsageError

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search-worker",
        help="train a search front's candidates (one worker of many)",
        description="Take waiting trials of a front's Optuna study (made by `hda search ... "
        "--train-top N`) and train them with the study's recipe, into DIR/runs/<front id>/<id>/; "
        "then write DIR/front_trained.json. Start it on as many hosts as reach the storage and "
        "share DIR; each trial is taken by exactly one worker, and a dead worker's trial is "
        "taken over once its heartbeat lapses. Exit status 0 when every candidate finished.",
    )
    parser.add_argument(
        "dir", metavar="DIR", nargs="?", help="the search's directory (storage DIR/optuna.db)"
    )
    parser.add_argument(
        "--storage", metavar="URL", help="the Optuna storage (sqlite:///..., postgresql://..., "
        "a journal file); default DIR/optuna.db",
    )  # fmt: skip
    parser.add_argument("--study", metavar="NAME", help="the study (default: DIR's front's)")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="local worker processes (default 1)"
    )
    parser.set_defaults(func=run)


def _study(args: argparse.Namespace) -> str | None:
    """The study named, or DIR's front's, or None (the storage's only hda study)."""
    from hardnet_analysis.documents.fronts import FRONT_FILE
    from hardnet_analysis.train.pool import load_front
    from hardnet_analysis.train.trials import study_name

    if args.study or not args.dir or not (Path(args.dir) / FRONT_FILE).is_file():
        return str(args.study) if args.study else None
    return study_name(load_front(Path(args.dir)).id)


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.cli.common.train_top import finished
    from hardnet_analysis.train.pool import run_local_pool
    from hardnet_analysis.train.trials import open_front_study, write_trained_front
    from hardnet_analysis.train.worker import open_and_run

    spec = args.storage or args.dir
    if spec is None:
        raise UsageError("give the search's DIR or --storage URL")
    if args.workers > 1:
        front = open_front_study(spec, _study(args))  # one-line errors before any process starts
        codes = run_local_pool(front.url, front.name, args.workers)
        if 2 in codes:
            return 2  # the worker said why
    else:
        front, taken = open_and_run(spec, _study(args))
        print(f"worker took {taken} trial(s) of study {front.name!r}", file=sys.stderr)
    return finished(write_trained_front(front))
