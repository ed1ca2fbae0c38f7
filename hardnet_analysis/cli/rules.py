"""Options that mean something only with another option, or that another option overrides.

Each is checked after parsing and before any work (`check`): given without what it needs, or
together with what overrides it, an option would be ignored without a word, so it is a usage
error (exit status 2) naming both. Rules that need what a command finds out first (the task of
a resumed run, the device a profile falls back to, the kinds of a report's inputs) are checked
by the command itself, with the same helpers (`common.requires`, `common.conflicts`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from hardnet_analysis.cli.common import conflicts, requires


@dataclass(frozen=True)
class Needs:
    """Option `dest` of `command` applies only while `holds(args)`; `needed` says what that
    takes (``--out DIR``)."""

    command: str
    dest: str
    needed: str
    holds: Callable[[argparse.Namespace], bool]


@dataclass(frozen=True)
class Excludes:
    """Options `first` and `second` of `command` cannot be given together (`why`)."""

    command: str
    first: str
    second: str
    why: str


Rule = Needs | Excludes


def _out(args: argparse.Namespace) -> bool:
    return args.out is not None


def _train_top(args: argparse.Namespace) -> bool:
    return args.train_top is not None


def _segmentation(args: argparse.Namespace) -> bool:
    return bool(args.task == "segmentation")


def _table(args: argparse.Namespace) -> bool:
    return bool(args.format == "table")


#: `hda search`'s training flags: the recipe of `--train-top`, and nothing without it.
SEARCH_TRAINING = (
    "storage", "data", "task", "ignore_index", "schedule", "dataset", "epochs", "batch_size",
    "lr", "image_size", "device", "strict_device", "seed", "workers", "max_retries", "heartbeat",
)  # fmt: skip

#: What `hda search --write-space FILE` ignores: it writes the space and exits.
WRITE_SPACE_IGNORES = (
    "input", "batch", "dtype", "budget_macs", "budget_params", "budget_cio", "min_moc",
    "budget_latency", "objective", "capacity", "device_model", "calibration", "top", "emit",
    "out", "sample", "force", "format", "train_top",
)  # fmt: skip

RULES: tuple[Rule, ...] = (
    Needs("search", "force", "--out DIR (the front it would replace)", _out),
    *(Needs("search", dest, "--train-top N", _train_top) for dest in SEARCH_TRAINING),
    Needs("search", "ignore_index", "--task segmentation (a mask value)", _segmentation),
    Needs("search", "capacity", "--objective pareto (its axis)", lambda a: a.objective == "pareto"),
    *(
        Excludes("search", "write_space", dest, "--write-space writes the space and exits")
        for dest in WRITE_SPACE_IGNORES
    ),
    Excludes("cio", "per_layer", "by_block", "one row per block has no per-op rows"),
    Needs(
        "cio",
        "cache",
        "per-layer rows or the table (--by-block --format csv has no DRAM estimate)",
        lambda a: not (a.by_block and a.format == "csv"),
    ),
    Needs(
        "correlate",
        "device_model",
        "--format table or json (csv holds the correlations only)",
        lambda a: a.format != "csv",
    ),
    Needs("profile", "force", "--out DIR (the saved runs it would redo)", _out),
    Excludes("evaluate", "weights", "random_weights", "the model is scored with one or the other"),
    Needs("evaluate", "ignore_index", "--task segmentation (a mask value)", _segmentation),
    Needs(
        "calibrate",
        "context_input",
        "context networks (not --models none)",
        lambda a: a.models != "none",
    ),
    Excludes("predict", "top", "explain", "--explain shows every layer >= 2% of the time"),
    Needs("predict", "top", "--format table (json and csv hold every layer)", _table),
)


def check(args: argparse.Namespace) -> None:
    """Every rule of `args.command` (a UsageError naming both options at the first broken)."""
    for rule in RULES:
        if rule.command != args.command:
            continue
        if isinstance(rule, Needs):
            requires(args, rule.dest, rule.needed, rule.holds(args))
        else:
            conflicts(args, rule.first, rule.second, rule.why)
