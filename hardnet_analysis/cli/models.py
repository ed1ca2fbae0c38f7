"""`hda models`: the registered models, with published and computed figures at each model's own
input (the ``input`` column: one side of a square, ``224``, or ``HxW`` when not square)."""

from __future__ import annotations

import argparse
from typing import Any

from hardnet_analysis.analysis import analyze
from hardnet_analysis.cli.common import add_format_arg, console, input_label
from hardnet_analysis.families import get_definition, get_entry, get_family, list_models
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.present.tables import models_table
from hardnet_analysis.resolve import input_shape_of


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("models", help="list the registered models")
    parser.add_argument("--family", help="only this family (e.g. hardnet)")
    add_format_arg(parser)
    parser.set_defaults(func=run)


def _input(hw: tuple[int, int]) -> int | str:
    """224 for a square input (as before non-square inputs existed), else ``"1024x2048"``."""
    return hw[0] if hw[0] == hw[1] else input_label(hw)


def _whole(count: float | None) -> int | None:
    """A published count as an integer (4.8e6 is written 4800000, as `params` is)."""
    return None if count is None else round(count)


def _record(name: str) -> dict[str, Any]:
    entry = get_entry(name)
    defn = get_definition(name)
    totals = analyze(defn).totals
    return {
        "model": name,
        "family": entry.family,
        "description": entry.description,
        "input": _input(input_shape_of(defn).hw),
        "params": totals.params,
        "macs": totals.macs,
        "cio": totals.cio,
        "published_params": _whole(entry.published.get("params")),
        "published_macs": _whole(entry.published.get("macs")),
        "published_top1": entry.published.get("top1"),
    }


def run(args: argparse.Namespace) -> int:
    if args.family is not None:
        get_family(args.family)  # an unknown family is an error naming the known ones
    records = [_record(name) for name in list_models(args.family)]
    if args.format == "json":
        write_json(records)
    elif args.format == "csv":
        write_csv(records)
    else:
        console().print(models_table(records))
    return 0
