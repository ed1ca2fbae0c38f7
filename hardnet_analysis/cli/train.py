"""`hda train MODEL|DEF.json`: train with the HarDNet recipe on a folder, CIFAR or digits."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hardnet_analysis.cli.common import non_negative_int, output_dir, positive_int
from hardnet_analysis.fileio import check_output
from hardnet_analysis.train.config import recipe_defaults

#: The recipe defaults, read from `TrainConfig` (whose module imports no torch, so `hda --help`
#: stays light).
DEFAULTS: dict[str, Any] = recipe_defaults()


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="image folder (train/<class>/*, val/<class>/*) or CIFAR-10/100 python batches; "
        "without it, the built-in digits dataset",
    )
    parser.add_argument(
        "--dataset",
        choices=("auto", "folder", "cifar", "digits"),
        default=DEFAULTS["dataset"],
        help="dataset kind (default auto: detected from --data)",
    )
    parser.add_argument(
        "--image-size",
        type=positive_int,
        metavar="N",
        help="square input side (default 224 for folders, 32 for CIFAR and digits)",
    )
    parser.add_argument("--workers", type=non_negative_int, metavar="N", help="loader processes")
    parser.add_argument(
        "--device", default=DEFAULTS["device"], help="cpu, cuda, cuda:N (default auto)"
    )


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
        "trains data-parallel.",
    )
    parser.add_argument("model", help="model name or definition file (*.json)")
    add_data_args(parser)
    parser.add_argument("--epochs", type=positive_int, default=DEFAULTS["epochs"])
    parser.add_argument(
        "--batch-size", type=positive_int, default=DEFAULTS["batch_size"], help="global batch"
    )
    parser.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="base learning rate")
    parser.add_argument("--wd", type=float, default=DEFAULTS["weight_decay"], help="weight decay")
    parser.add_argument("--warmup-epochs", type=int, default=DEFAULTS["warmup_epochs"])
    parser.add_argument("--label-smoothing", type=float, default=DEFAULTS["label_smoothing"])
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--memory-efficient", action="store_true", help="recompute features in backward"
    )
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument(
        "--deterministic", action="store_true", help="deterministic kernels (exact resume)"
    )
    parser.add_argument("--num-classes", type=positive_int, help="classifier width (default: data)")
    parser.add_argument("--weights", metavar="FILE", help="initial weights (a state dict)")
    parser.add_argument(
        "--out", type=output_dir, metavar="RUN_DIR", help="run directory (default runs/<model>)"
    )
    parser.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt")
    parser.add_argument(
        "--convert", action="store_true", help="write converted.pt (hda_convert) at the end"
    )
    parser.set_defaults(func=run)


def default_out(model: str) -> str:
    return str(Path("runs") / (Path(model).stem if model.endswith(".json") else model))


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.train import TrainConfig, train

    config = TrainConfig(
        model=args.model,
        data=args.data,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.wd,
        warmup_epochs=args.warmup_epochs,
        label_smoothing=args.label_smoothing,
        amp=args.amp,
        channels_last=args.channels_last,
        memory_efficient=args.memory_efficient,
        seed=args.seed,
        deterministic=args.deterministic,
        workers=args.workers,
        device=args.device,
        out=str(args.out or check_output(default_out(args.model), "directory")),
        resume=args.resume,
        image_size=args.image_size,
        num_classes=args.num_classes,
        weights=args.weights,
        convert=args.convert,
    )
    result = train(config)
    if result.history and os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 only
        print(f"best val top-1 {result.best_top1:.2f}% in {result.run_dir}")
    return 0
