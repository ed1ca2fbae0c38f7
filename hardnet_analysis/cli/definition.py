"""`hda definition MODEL --out FILE`: write a zoo model's JSON definition, to start from."""

from __future__ import annotations

import argparse
from typing import Any

from hardnet_analysis.cli.common import output_file
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.serialize import save_definition
from hardnet_analysis.resolve import ModuleSpec, resolve


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "definition",
        help="write the JSON definition of a registered model",
        description="Write the definition of a registered model (`hda models`) as JSON. Edit it "
        "and pass the file wherever a MODEL is accepted (`hda cio mine.json`).",
    )
    parser.add_argument("model", help="registered model name (see `hda models`)")
    parser.add_argument("--out", required=True, type=output_file, help="file to write (atomically)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    defn = resolve(args.model)  # the one resolution path: names, files, torchvision, callables
    if isinstance(defn, ModuleSpec):
        raise UsageError(
            f"{args.model!r} is a torch module builder with no hda definition; `hda definition` "
            "writes registered models (`hda models`) and copies *.json definitions"
        )
    path = save_definition(defn, args.out)
    print(f"wrote {args.model} to {path}")
    return 0
