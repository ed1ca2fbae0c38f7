"""`hda train MODEL|DEF.json`: train with the HarDNet recipe on a folder, CIFAR or digits, or
with ``--task segmentation`` on a folder of images and label masks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hardnet_analysis.cli.common import (
    batch_size,
    non_negative_int,
    number,
    output_dir,
    positive_int,
    requires,
    seed,
)
from hardnet_analysis.cli.common.training import DEFAULTS, add_data_args
from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import check_output
from hardnet_analysis.train.config import (
    SCHEDULES,
    TrainConfig,
    resumed_config,
)

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model with the HarDNet recipe",
        description="Train any model hda builds (a registered name, a torchvision classifier or "
        f"a *.json definition) with the HarDNet recipe: SGD momentum {DEFAULTS['momentum']} "
        f"Nesterov, lr {DEFAULTS['lr']} with per-epoch cosine decay, weight decay "
        f"{DEFAULTS['weight_decay']}, batch {DEFAULTS['batch_size']}, {DEFAULTS['epochs']} "
        "epochs. Writes args.json, metrics.csv, "
        "metrics.jsonl, last.pt and best.pt to --out. Under `torchrun --nproc-per-node N` it "
        "trains data-parallel. --task segmentation trains per-pixel classes (FC-HarDNets) and "
        "logs mIoU and pixel accuracy; best.pt follows mIoU.",
    )
    parser.add_argument("model", help="model name or definition file (*.json)")
    add_data_args(parser)
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"])
    parser.add_argument(
        "--batch-size", type=batch_size, help=f"global batch (default {DEFAULTS['batch_size']})"
    )
    parser.add_argument("--lr", type=number, default=DEFAULTS["lr"], help="base learning rate")
    parser.add_argument("--wd", type=number, default=DEFAULTS["weight_decay"], help="weight decay")
    parser.add_argument("--warmup-epochs", type=non_negative_int, default=DEFAULTS["warmup_epochs"])
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default=DEFAULTS["schedule"],
        help="lr decay per epoch after warm-up: cosine (default) or poly, (1 - e/E)^0.9",
    )
    parser.add_argument("--label-smoothing", type=number, default=DEFAULTS["label_smoothing"])
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--memory-efficient", action="store_true", help="recompute features in backward"
    )
    parser.add_argument("--seed", type=seed, help=f"random seed (default {DEFAULTS['seed']})")
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic kernels (exact resume)"
    )
    parser.add_argument("--num-classes", type=positive_int, help="classifier width (default: data)")
    parser.add_argument("--weights", metavar="FILE", help="initial weights (a state dict)")
    parser.add_argument(
        "--out", type=output_dir, metavar="RUN_DIR", help="run directory (default runs/<model>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue RUN_DIR/last.pt with the run's own settings (flags given may add "
        "epochs or change --device, --workers, --convert; other differences are refused)",
    )
    parser.add_argument(
        "--convert", action="store_true", help="write converted.pt (hda_convert) at the end"
    )
    # A setting's flag defaults to None, so that the ones given on the command line are known:
    # the recipe fills in the rest, or with --resume the run's stored settings.
    parser.set_defaults(func=run, **dict.fromkeys(_FLAGS))


#: The parser's destinations that are training settings, and the setting of each whose name
#: differs (`--wd` sets weight_decay).
_FLAGS = (
    "data", "dataset", "task", "ignore_index", "image_size", "workers", "device", "epochs",
    "batch_size", "lr", "wd", "warmup_epochs", "schedule", "label_smoothing", "amp",
    "channels_last", "memory_efficient", "seed", "deterministic", "num_classes", "weights",
    "convert", "strict_device",
)  # fmt: skip
_SETTING = {"wd": "weight_decay"}


def default_out(model: str) -> str:
    return str(Path("runs") / (Path(model).stem if model.endswith(".json") else model))


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.train import train

    result = train(_config(args))
    if result.history and os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 only
        name = {"val_top1": "top-1", "val_miou": "mIoU"}[result.score]
        print(f"best val {name} {result.best:.2f}% in {result.run_dir}")
    return 0


def _config(args: argparse.Namespace) -> TrainConfig:
    """The run's settings: the recipe's defaults under the flags given, or with ``--resume``
    the run's own stored settings, which given flags may change only where they can
    (`resumed_config`)."""
    from hardnet_analysis.train.checkpoint import stored_config

    out = str(args.out or check_output(default_out(args.model), "directory"))
    given = {_SETTING.get(dest, dest): getattr(args, dest) for dest in _FLAGS}
    given = {k: v for k, v in given.items() if v is not None}  # None: not on the command line
    if not args.resume:
        config = TrainConfig(model=args.model, out=out, **given)
    else:
        stored = stored_config(Path(out) / "last.pt")
        if stored.get("model") != args.model:
            raise UsageError(
                f"{out!r} holds a run of {stored.get('model')!r}, not {args.model!r}; "
                "it was left untouched"
            )
        config = resumed_config(stored, given, out)
    # The task may be the resumed run's, so this is known only now.
    requires(
        args, "ignore_index", "--task segmentation (a mask value)", config.task == "segmentation"
    )
    return config
