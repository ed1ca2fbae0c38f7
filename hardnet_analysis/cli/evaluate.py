"""`hda evaluate MODEL --weights FILE --data DIR`: validation loss, top-1 and top-5 (mIoU and
pixel accuracy with ``--task segmentation``)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from hardnet_analysis.cli.common import add_format_arg, batch_size, console
from hardnet_analysis.cli.common.training import add_data_args
from hardnet_analysis.present.formats import write_csv, write_json

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="top-1/top-5 (or mIoU) of a model with given weights",
        description="Validation accuracy of MODEL (a name or *.json definition) with --weights "
        "(a run's last.pt or best.pt, converted.pt with its own definition, a plain or wrapped "
        "state dict, or an official HarDNet checkpoint), built for the data's class count. "
        "With --task segmentation: mIoU and pixel accuracy on val/images and val/labels.",
    )
    parser.add_argument("model", help="model name or definition file (*.json)")
    parser.add_argument("--weights", metavar="FILE", help="weights to load (strict)")
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help="score the untrained model (without it, --weights is required)",
    )
    add_data_args(parser)
    parser.add_argument("--batch-size", type=batch_size, default=256)
    add_format_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.train.evaluate import evaluate_weights

    result = evaluate_weights(
        args.model,
        args.weights,
        args.data,
        args.dataset,
        args.image_size,
        args.batch_size,
        args.device,
        args.workers,
        args.random_weights,
        args.task,
        args.ignore_index,
        args.strict_device,
    )
    if args.format == "json":
        write_json(result)
    elif args.format == "csv":
        write_csv([result])
    else:
        console().print(_table(result))
    return 0


#: The metric columns of each task's table: (result key, heading).
_METRICS = {
    "classification": (("top1", "top-1 %"), ("top5", "top-5 %")),
    "segmentation": (("miou", "mIoU %"), ("pixel_acc", "pixel acc %")),
}


def _table(result: dict[str, Any]) -> Table:
    table = Table(title=f"{result['model']} on {result['dataset']} (validation)")
    metrics = _METRICS[result["task"]]
    for column in ("images", "skipped", "loss", *(heading for _, heading in metrics)):
        table.add_column(column, justify="right")
    table.add_row(
        str(result["images"]),
        str(result["skipped"]),
        f"{result['loss']:.4f}",
        *(f"{result[key]:.2f}" for key, _ in metrics),
    )
    return table
