"""`hda compare MODEL MODEL ...`: one row per model, like the HarDNet paper's ImageNet table."""

from __future__ import annotations

import argparse
from typing import Any

from hardnet_analysis.cli.common import (
    add_format_arg,
    add_input_args,
    add_kwargs_arg,
    analyze_model,
    console,
    input_label,
    input_shapes,
    note_real_run,
)
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.present.tables import compare_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("compare", help="params, MACs, CIO and MoC of several models")
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model names")
    add_input_args(parser)
    add_kwargs_arg(parser)
    add_format_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    analyses = [analyze_model(args, name) for name in args.models]
    for analysis in analyses:
        note_real_run(analysis)
    rows = [(name, a.totals) for name, a in zip(args.models, analyses, strict=True)]
    records = [
        {"model": name, "input_shape": list(a.input_shape), **a.totals.to_dict()}
        for name, a in zip(args.models, analyses, strict=True)
    ]
    if args.format == "json":
        write_json({"batch": analyses[0].input_shape[0], "models": records})
    elif args.format == "csv":
        write_csv(records)
    else:
        whole = input_shapes(args)
        label = input_label(args.input) if args.input else "each model's native input"
        console().print(compare_table(rows, str(whole) if whole else label))
    return 0
