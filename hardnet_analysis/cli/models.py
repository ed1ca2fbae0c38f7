"""`hda models`: the registered models, with published and computed figures at 224x224."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from hardnet_analysis.analysis import analyze
from hardnet_analysis.cli.common import add_format_arg, console
from hardnet_analysis.families import get_definition, get_entry, list_models
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.units import format_count


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="list the registered models")
    parser.add_argument("--family", help="only this family (e.g. hardnet)")
    add_format_arg(parser)
    parser.set_defaults(func=run)


def _record(name: str) -> dict[str, Any]:
    entry = get_entry(name)
    defn = get_definition(name)
    totals = analyze(defn).totals
    return {
        "model": name,
        "family": entry.family,
        "description": entry.description,
        "input": defn.input_size,
        "params": totals.params,
        "macs": totals.macs,
        "cio": totals.cio,
        "published_params": entry.published.get("params"),
        "published_macs": entry.published.get("macs"),
        "published_top1": entry.published.get("top1"),
    }


def run(args: argparse.Namespace) -> int:
    records = [_record(name) for name in list_models(args.family)]
    if args.format == "json":
        write_json(records)
    elif args.format == "csv":
        write_csv(records)
    else:
        table = Table(title="registered models (computed at each model's input, batch 1)")
        for column in (
            "model",
            "family",
            "input",
            "params",
            "MACs",
            "CIO",
            "published params / MACs / top-1",
        ):
            table.add_column(
                column, justify="right" if column in ("input", "params", "MACs", "CIO") else "left"
            )
        for r in records:
            published = " / ".join(
                "-"
                if r[k] is None
                else (f"{r[k]:g}%" if k == "published_top1" else format_count(r[k]))
                for k in ("published_params", "published_macs", "published_top1")
            )
            table.add_row(
                r["model"],
                r["family"],
                str(r["input"]),
                format_count(r["params"]),
                format_count(r["macs"]),
                format_count(r["cio"]),
                published,
            )
        console().print(table)
    return 0
