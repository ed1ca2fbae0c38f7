"""`hda definition MODEL --out FILE`: write a zoo model's JSON definition, to start from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hardnet_analysis.families.registry import get_definition
from hardnet_analysis.families.serialize import save_definition


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "definition",
        help="write the JSON definition of a registered model",
        description="Write the definition of a registered model (`hda models`) as JSON. Edit it "
        "and pass the file wherever a MODEL is accepted (`hda cio mine.json`).",
    )
    parser.add_argument("model", help="registered model name (see `hda models`)")
    parser.add_argument("--out", required=True, type=Path, help="file to write (atomically)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = save_definition(get_definition(args.model), args.out)
    print(f"wrote {args.model} to {path}")
    return 0
