"""`hda predict MODEL ... --device-model DEVICE.json`: per-layer predicted latency on a
calibrated device, without running the model."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from hardnet_analysis.cli.common import (
    add_format_arg,
    add_kwargs_arg,
    analyze_model,
    batch_size,
    console,
    input_size,
    non_negative_int,
    positive_int,
)
from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.predict import Prediction, predict
from hardnet_analysis.present.formats import write_csv, write_json

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predicted latency per layer on a calibrated device (hda calibrate)",
        description="Predicts each layer's time from its kind, FLOPs, cache-aware DRAM bytes and "
        "bytes with the device model, and the model's latency as their sum. JSON: one object "
        '{"model", "input", "batch", "latency_s", "layers": [...]} per model and input (a list '
        "when there are several).",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="anything `hda cio` takes")
    parser.add_argument(
        "--input", type=input_size, nargs="+", default=[None], metavar="N|HxW", help="sizes"
    )
    parser.add_argument("--batch", type=batch_size, default=1)
    parser.add_argument(
        "--device-model", required=True, metavar="DEVICE.json", help="from hda calibrate"
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads to predict for, one the device model holds (default: torch's count "
        "here when the device model holds it, else the only count it holds)",
    )
    parser.add_argument(
        "--top", type=non_negative_int, default=15, help="table rows per model (0: all)"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="what makes it slow: per block, the layers holding >= 2%% of the time, with their "
        "share, bound, MoC and how far outside the calibrated range they lie",
    )
    add_kwargs_arg(parser)
    add_format_arg(parser)
    parser.set_defaults(func=run)


def predictions(
    args: argparse.Namespace,
) -> tuple[DeviceModel, list[tuple[Analysis, Prediction]]]:
    """The device model (read once) and one (analysis, prediction) per (model, input)."""
    device = DeviceModel.read(args.device_model, args.threads)
    found = []
    for name in args.models:
        for size in args.input:
            analysis = analyze_model(args, name, size, device.dtype)
            found.append((analysis, predict(analysis, device)))
    return device, found


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.present.predict import prediction_table

    device, found = predictions(args)
    if args.explain:
        return _explain(args, device, found)
    predicted = [p for _, p in found]
    if args.format == "json":
        documents = [p.to_dict() for p in predicted]
        write_json(documents[0] if len(documents) == 1 else documents)
    elif args.format == "csv":
        write_csv(
            {"model": p.model, "input": "x".join(map(str, p.input)), "batch": p.batch, **row}
            for p in predicted
            for row in p.to_dict()["layers"]
        )
    else:
        out = console()
        for p in predicted:
            out.print(prediction_table(p, args.top or None))
    return 0


def _explain(
    args: argparse.Namespace, device: DeviceModel, found: list[tuple[Analysis, Prediction]]
) -> int:
    """`--explain`: the explanation of each prediction (`hardnet_analysis.metrics.explain`)."""
    from hardnet_analysis.metrics.explain import explain
    from hardnet_analysis.present.predict import explanation_table

    explained = [explain(a, p, device) for a, p in found]
    if args.format == "json":
        documents = [e.to_dict() for e in explained]
        write_json(documents[0] if len(documents) == 1 else documents)
    elif args.format == "csv":
        write_csv(
            {
                "model": e.model,
                "input": "x".join(map(str, e.input)),
                **{k: v for k, v in asdict(layer).items() if k != "reach"},
                "calibration": layer.reach.label(),
            }
            for e in explained
            for block in e.blocks
            for layer in block.layers
        )
    else:
        for e in explained:
            console().print(explanation_table(e))
    return 0
