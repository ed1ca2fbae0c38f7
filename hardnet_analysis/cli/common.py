"""Arguments and output helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, NoReturn

from rich.console import Console

from hardnet_analysis.errors import UsageError
from hardnet_analysis.metrics.analysis import DTYPE_BYTES
from hardnet_analysis.units import parse_bytes, parse_duration, parse_input_size

FORMATS = ("table", "json", "csv")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def input_size(text: str) -> tuple[int, int]:
    """argparse type for `--input`: 224 or HxW."""
    try:
        return parse_input_size(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def byte_size(text: str) -> int:
    """argparse type for byte sizes: 50MB, 2MiB or a number of bytes."""
    try:
        return parse_bytes(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    """argparse type for durations in seconds: 12ms, 250us, 0.5s or 0.5."""
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """argparse type for counts that must be >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """--input, --batch, --dtype."""
    parser.add_argument(
        "--input",
        type=input_size,
        default=None,
        metavar="N|HxW",
        help="input resolution: 224 (square) or HxW such as 320x480 (default: the model's own, "
        "224 for ImageNet models, 32 for the registered CIFAR ones, 1024x2048 for fchardnet70, "
        "360x480 for fcdensenet103)",
    )
    parser.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    parser.add_argument(
        "--dtype",
        choices=list(DTYPE_BYTES),
        default="fp32",
        help="element type for activation bytes (default fp32)",
    )


def json_object(text: str) -> dict[str, Any]:
    """argparse type for `--kwargs`: a JSON object such as '{"num_classes": 10}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'{text!r} is not a JSON object ({{"key": value}})')
    return value


def add_kwargs_arg(parser: argparse.ArgumentParser) -> None:
    """--kwargs: keyword arguments for a model callable or torchvision builder."""
    parser.add_argument(
        "--kwargs",
        type=json_object,
        default=None,
        metavar="JSON",
        help="keyword arguments for a module:callable, file.py:callable or torchvision builder, "
        "as a JSON object, e.g. '{\"width\": 32}'",
    )


def add_format_arg(parser: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    parser.add_argument(
        "--format", choices=formats, default="table", help="output format (default table)"
    )


def console() -> Console:
    """Console for tables: the terminal's width, or ``COLUMNS`` where set; piped output without
    ``COLUMNS`` gets a wide page (tables fit themselves to the width, see `present.fit`)."""
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 160
    return out


def input_label(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"
