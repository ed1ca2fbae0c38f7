"""`hda search-worker DIR`: train the candidates of a search front, as one worker of a pool."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hardnet_analysis.cli.common import positive_int


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search-worker",
        help="train a search front's candidates (one worker of a pool)",
        description="Claim and train the candidates of DIR/front.json with the settings of "
        "DIR/train_config.json (written by `hda search ... --train-top N`), writing "
        "DIR/runs/<id>/ and the re-ranked DIR/front_trained.json. Start it on as many hosts "
        "as share DIR; claims are atomic and stale ones are taken over.",
    )
    parser.add_argument("dir", metavar="DIR", help="the search's output directory")
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="local worker processes (default 1)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.train.pool import PoolSettings, load_front, run_local_pool, run_worker

    root = Path(args.dir)
    PoolSettings.load(root)  # one-line error before any process starts
    load_front(root)
    if args.workers > 1:
        failed = run_local_pool(root, args.workers)
        return 1 if failed else 0
    handled = run_worker(root)
    print(f"worker handled {handled} candidate(s); see {root / 'front_trained.json'}")
    return 0
