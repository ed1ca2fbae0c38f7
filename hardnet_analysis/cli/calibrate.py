"""`hda calibrate --out DEVICE.json`: time micro-benchmarks of the layer kinds and fit the
device model that `hda predict`, `hda correlate --device-model` and the search read."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hardnet_analysis.cli.common import (
    add_device_args,
    byte_size,
    console,
    output_file,
    positive_float,
    positive_int,
    progress_bar,
)
from hardnet_analysis.documents.device_model import RUNTIMES
from hardnet_analysis.present.formats import write_json

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="time micro-benchmarks of the layer kinds and fit a per-layer device model",
        description="Times dense 3x3/1x1, depthwise and grouped convs over a grid of channels "
        "and sizes, linear and attention products, BN, activations, norms, pooling, concat, "
        "copies and views, warm and cold; fits per kind overhead + max or sum of compute, "
        "DRAM and cache terms (chosen leave-one-out) and the cache capacity; then times a few "
        "whole networks and fits how much slower an op runs inside a forward (a scale and a "
        'per-op cost); writes {"format": "hda-device-model", "version": 1, ...}.',
    )
    add_device_args(parser)
    parser.add_argument(
        "--threads",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="CPU thread counts, one model each (default: 1 and torch's default, every core)",
    )
    parser.add_argument(
        "--thread-time",
        action="store_true",
        help="clock the 1-thread model by the thread's CPU time (for a busy shared CPU; "
        "needs 1 among --threads; other counts are timed by the wall clock)",
    )
    parser.add_argument(
        "--grid",
        choices=("full", "quick", "tiny"),
        default="full",
        help="benchmark grid: full (default, < 5 min on 2 cores), quick, tiny (tests)",
    )
    parser.add_argument("--repeat", type=positive_int, default=5, help="samples per benchmark")
    parser.add_argument(
        "--budget",
        type=positive_float,
        default=0.006,
        metavar="S",
        help="seconds per sample (0.006)",
    )
    parser.add_argument(
        "--cache-bytes", type=byte_size, metavar="SIZE", help="cache size instead of the probed"
    )
    parser.add_argument(
        "--models",
        metavar="A,B|none",
        help="whole networks for the context fit (default: the grid's, none of them a model "
        "the predictor sweep scores; none: no context fit)",
    )
    parser.add_argument(
        "--context-input",
        type=positive_int,
        nargs="+",
        metavar="N",
        help="input sides of the context networks (default: the grid's, 160 224 for full)",
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="torch",
        help="what runs the benchmarks and networks: eager PyTorch (default) or ONNX Runtime "
        "(its CPU provider; the model then predicts ORT's fused kernels; needs the onnx extra)",
    )
    parser.add_argument(
        "--out", required=True, type=output_file, metavar="DEVICE.json", help="where to write it"
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.present.predict import context_table, kinds_table
    from hardnet_analysis.profiler.calibrate import CalibrationSettings, calibrate

    settings = CalibrationSettings(
        device=args.device,
        strict_device=args.strict_device,
        threads=tuple(args.threads) if args.threads else None,
        thread_time=args.thread_time,
        grid=args.grid,
        repeat=args.repeat,
        budget_s=args.budget,
        cache_bytes=args.cache_bytes,
        models=_models(args.models),
        context_sizes=tuple(args.context_input) if args.context_input else None,
        runtime=args.runtime,
    )
    with progress_bar("calibrate", "timing", "benchmarks and networks timed") as step:
        models = calibrate(settings, lambda line: print(line, file=sys.stderr), step)
    models.write(args.out)
    if args.format == "json":
        write_json(models.to_dict())
        return 0
    out = console()
    for model in models.models:
        out.print(kinds_table(model))
        fit = model.fit
        out.print(
            f"{fit.n} benchmarks: fit error {100 * fit.train_error:.1f}%, leave-one-out "
            f"{100 * fit.loo_error:.1f}% ({100 * fit.loo_within_10pct:.0f}% within +-10%)"
        )
        if model.context is not None:
            out.print(context_table(model.context))
    counts = ", ".join(map(str, models.counts()))
    out.print(f"threads {counts}: {fit.seconds:.0f} s; written to {args.out}")
    return 0


def _models(text: str | None) -> tuple[str, ...] | None:
    """``--models``: None (the grid's), () for ``none``, else the names."""
    if text is None:
        return None
    return () if text == "none" else tuple(m for m in text.split(",") if m)
