"""`hda search ... --train-top N`: the flags and the run of training the front it found.

The training itself is `hardnet_analysis.train.pool.train_front` (an Optuna study); this module
reads the flags (the recipe's defaults come from `TrainConfig`), prints where the study is, and
turns the outcome into the exit status: 0 when every candidate finished, 1 when some did not
(named on one line), 2 for a configuration error before any training.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hardnet_analysis.cli.common import (
    add_device_args,
    batch_size,
    non_negative_int,
    number,
    positive_int,
    seed,
)
from hardnet_analysis.cli.common.training import add_task_args, image_size
from hardnet_analysis.errors import UsageError
from hardnet_analysis.train.config import (
    DATASETS,
    HEARTBEAT_S,
    MAX_RETRIES,
    RECIPE,
    SCHEDULES,
    TrainConfig,
)

if TYPE_CHECKING:
    from hardnet_analysis.documents.fronts import TrainedFront

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def register_training(parser: argparse.ArgumentParser) -> None:
    """--train-top, where the trials live, and the recipe flags `hda train` also takes."""
    group = parser.add_argument_group(
        "training the front (needs --out; resumable: run the same command again)"
    )
    group.add_argument(
        "--train-top",
        type=positive_int,
        metavar="N",
        help="train the best N candidates and re-rank by accuracy against CIO",
    )
    group.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage of the trials: sqlite:///FILE, postgresql://..., a journal FILE "
        "(default: DIR/optuna.db)",
    )
    group.add_argument("--data", metavar="DIR", help="training data (default: built-in digits)")
    add_task_args(group)
    group.add_argument(
        "--schedule", choices=SCHEDULES, default=RECIPE.schedule, help="lr decay: cosine or poly"
    )
    kinds = f"{', '.join(DATASETS[:-1])} or {DATASETS[-1]}"
    group.add_argument("--dataset", default=RECIPE.dataset, help=kinds)
    group.add_argument(
        "--epochs", type=positive_int, default=RECIPE.epochs, help=f"default {RECIPE.epochs}"
    )
    group.add_argument(
        "--batch-size", type=batch_size, default=RECIPE.batch_size, help="global batch"
    )
    group.add_argument(
        "--lr", type=number, default=RECIPE.lr, help=f"base learning rate (default {RECIPE.lr})"
    )
    group.add_argument(
        "--image-size", type=image_size, metavar="N|HxW", help="input size (HxW: segmentation)"
    )
    add_device_args(group, RECIPE.device)
    group.add_argument("--seed", type=seed, default=RECIPE.seed)
    group.add_argument(
        "--workers",
        type=non_negative_int,
        default=1,
        help="local worker processes (0: none); more hosts join with `hda search-worker`",
    )
    group.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=MAX_RETRIES,
        help="retries of a transient failure",
    )
    group.add_argument(
        "--heartbeat",
        type=positive_int,
        default=HEARTBEAT_S,
        metavar="S",
        help=f"seconds between a worker's heartbeats (default {HEARTBEAT_S}); a trial "
        "silent for 4 of them is taken over",
    )


def check_training_args(args: argparse.Namespace) -> None:
    if args.train_top is None:
        return
    if not args.out:
        raise UsageError("--train-top needs --out DIR (where candidates and runs are kept)")
    args.emit = max(args.emit, args.train_top)  # only emitted candidates have definition files


def recipe(args: argparse.Namespace) -> TrainConfig:
    """Every candidate's recipe from the flags (its settings checked here, before the sweep)."""
    return TrainConfig(
        model="-",
        data=args.data,
        dataset=args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        image_size=args.image_size,
        device=args.device,
        strict_device=args.strict_device,
        seed=args.seed,
        task=args.task,
        schedule=args.schedule,
        ignore_index=args.ignore_index,
    )


def check_training(args: argparse.Namespace, front_id: str, asked: TrainConfig) -> None:
    """Before the sweep: the recipe's data loads, and where the storage already holds this
    front's study with candidates trained (or training), it was with the same recipe: with
    another, the command would find them done and report their old results as its own. That
    is refused, naming each setting that differs; a study with nothing trained yet takes the
    new recipe (a run that failed on a bad setting is retried with a fixed one)."""
    from hardnet_analysis.train.config import recipe_clashes
    from hardnet_analysis.train.task import make_task
    from hardnet_analysis.train.trials import trained_settings

    make_task(asked).load(asked)
    found = trained_settings(args.storage or str(args.out), front_id)
    if found is None or not found[1]:
        return
    clashes = recipe_clashes(found[0].recipe, asked)
    if clashes:
        raise UsageError(
            f"front {front_id} in {str(args.out)!r} has {found[1]} candidate(s) trained with "
            f"other settings: {'; '.join(clashes)}; give the same training flags, or another "
            "--out"
        )


def train(args: argparse.Namespace, asked: TrainConfig) -> TrainedFront:
    """Train the emitted candidates (`hardnet_analysis.train.pool.train_front`)."""
    from hardnet_analysis.train.pool import train_front

    beat = (args.heartbeat, 4 * args.heartbeat)
    return train_front(
        args.out, args.train_top, asked, args.workers, args.max_retries, args.storage, beat
    )


def finished(trained: TrainedFront) -> int:
    """Print where the study is; 0 if every candidate finished, else 1 with one error line."""
    from hardnet_analysis.train.pool import unfinished

    print(
        f"hda: study {trained.study!r} in {trained.storage} (optuna-dashboard {trained.storage})",
        file=sys.stderr,
    )
    error = unfinished(trained)
    if error is None:
        return 0
    print(f"hda search: error: {error}", file=sys.stderr)
    return error.exit_code
