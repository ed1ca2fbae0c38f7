"""`hda report RUN.json ... --out report.html`: the interactive latency report (offline HTML)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hardnet_analysis.cli.correlate import load_runs
from hardnet_analysis.errors import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an interactive Plotly report (latency vs DRAM traffic and vs MACs)",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="profile runs")
    parser.add_argument("--out", type=Path, required=True, help="HTML file to write")
    parser.add_argument("--model", help="model of the per-layer view (default: the first run)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reports import write_report

    runs = load_runs(args.runs)
    if args.model and args.model not in {r.model for r in runs}:
        raise UsageError(f"--model {args.model!r} has no run among the files given")
    path = write_report(runs, args.out, args.model)
    print(f"report written to {path}")
    return 0
