"""The training recipe as data: HarDNet's published recipe is the default.

Recipe (``shared/notes/hardnet.md``): SGD, momentum 0.9, Nesterov, lr 0.05 decayed per epoch by a
cosine, weight decay 6e-5, batch 256, 150-250 epochs.

`TrainConfig`'s field defaults are the one declaration of the recipe's defaults: the CLI's flags
(``hda train``, ``hda search --train-top``) read them through `RECIPE` or `recipe_defaults`, and
so do the pool's. This module imports no torch, so building the CLI's parser stays light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from hardnet_analysis.errors import UsageError
from hardnet_analysis.shapes import InputShape

DATASETS = ("auto", "folder", "cifar", "digits")
#: What a run learns (`hardnet_analysis.train.task`): one label per image, or one per pixel.
TASKS = ("classification", "segmentation")
#: Learning-rate schedules (`hardnet_analysis.train.schedule`).
SCHEDULES = ("cosine", "poly")

#: A candidate whose training failed transiently is retried this many times before it counts as
#: failed (a later run of the command gives it as many again).
MAX_RETRIES = 2
#: Seconds between a training worker's heartbeats; a trial without one for `GRACE_S` seconds
#: belongs to a dead worker and is taken over (`hardnet_analysis.train.trials`).
HEARTBEAT_S = 30
GRACE_S = 120
#: A pool claim whose heartbeat is older than this (seconds) is stale and taken over.
CLAIM_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on; `args.json` holds it as a dict.

    `batch_size` is the global batch: under DDP each of N ranks takes ``batch_size / N``.
    `image_size` is one RGB image's `InputShape` at batch 1 (the loader batches), as
    ``--image-size`` parses it once: ``InputShape.of_image(16)``, or ``of_image((h, w))`` for
    a rectangle (segmentation only); None means the dataset's own (224 for folders, 32 for
    CIFAR and digits, the first training image's size for segmentation). ``args.json`` and
    checkpoints keep it as before, a side or [h, w] (`to_dict`, `from_dict`: `stored_size`,
    `image_input`). `ignore_index` is the mask value that segmentation leaves out of the loss
    and the metrics.
    `workers` None means ``min(4, cpu count)`` loader processes (0 for in-memory data).
    """

    model: str
    data: str | None = None
    dataset: str = "auto"
    epochs: int = 150
    batch_size: int = 256
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 6e-5
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    amp: bool = False
    channels_last: bool = False
    memory_efficient: bool = False
    seed: int = 0
    deterministic: bool = False
    workers: int | None = None
    device: str = "auto"
    strict_device: bool = False
    out: str = "runs/train"
    resume: bool = False
    image_size: InputShape | None = None
    num_classes: int | None = None
    weights: str | None = None
    convert: bool = False
    task: str = "classification"
    schedule: str = "cosine"
    ignore_index: int = 255

    def __post_init__(self) -> None:
        self._check_task()
        if self.dataset not in DATASETS:
            raise UsageError(f"--dataset {self.dataset!r} is not one of {', '.join(DATASETS)}")
        if self.dataset in ("folder", "cifar") and not self.data:
            raise UsageError(f"--dataset {self.dataset} needs --data DIR")
        if self.dataset == "digits" and self.data:  # the built-in set: --data would be ignored
            raise UsageError(
                "--data applies only with --dataset auto, folder or cifar (digits is built in)"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be >= 1")
        if self.warmup_epochs < 0 or self.warmup_epochs >= self.epochs:
            raise UsageError(
                f"--warmup-epochs must be in 0..{self.epochs - 1} (fewer than --epochs)"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError("--label-smoothing must be in [0, 1)")
        # `not x > 0` also refuses NaN, which would pass `x <= 0`.
        if not self.lr > 0 or self.lr == float("inf"):
            raise UsageError(f"--lr must be a positive number, not {self.lr:g}")
        if not self.weight_decay >= 0 or self.weight_decay == float("inf"):
            raise UsageError(f"--wd must be a number >= 0, not {self.weight_decay:g}")
        if not 0.0 <= self.momentum < 1.0:
            raise UsageError(f"momentum must be in [0, 1), not {self.momentum:g}")

    def _check_task(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"--task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"--schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if self.task == "classification":
            if (shape := self.image_size) is not None and shape.hw[0] != shape.hw[1]:
                raise UsageError("classification takes a square --image-size N")
            return
        if not self.data:
            raise UsageError("--task segmentation needs --data DIR (train/images, train/labels)")
        if self.dataset != "auto":
            raise UsageError("--task segmentation reads --data DIR itself; drop --dataset")
        if self.ignore_index < 0:
            raise UsageError(f"--ignore-index must be >= 0 (a mask value), not {self.ignore_index}")

    def to_dict(self) -> dict[str, Any]:
        """The settings by name as ``args.json``, checkpoints and Optuna keep them: the image
        size as a side or (h, w) (`stored_size`), as they always have."""
        return {**dataclasses.asdict(self), "image_size": stored_size(self.image_size)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """The config a dict (e.g. ``args.json``) describes; unknown keys are an error. Its
        ``image_size`` is a stored side or [h, w] (`image_input`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown training setting(s) {', '.join(unknown)}")
        return cls(**{**data, "image_size": image_input(data.get("image_size"))})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def stored_size(shape: InputShape | None) -> int | tuple[int, int] | None:
    """An image size as a training config file keeps it: the side of a square, else (h, w);
    ``stored_size(InputShape.of_image((32, 48)))`` is ``(32, 48)``, of ``of_image(16)`` 16."""
    if shape is None:
        return None
    height, width = shape.hw
    return height if height == width else (height, width)


def image_input(stored: object) -> InputShape | None:
    """The `InputShape` of a stored image size (`stored_size`: ``16``, or ``[32, 48]`` as JSON
    gives a pair back; None stays None): ``image_input([32, 48]).hw`` is (32, 48). Anything
    else is a UsageError naming it."""
    if stored is None or isinstance(stored, InputShape):
        return stored
    if _is_int(stored):
        return InputShape.of_image(stored)
    if isinstance(stored, Sequence) and len(stored) == 2 and all(_is_int(d) for d in stored):
        return InputShape.of_image((stored[0], stored[1]))
    raise UsageError(f"image_size {stored!r} is not a side N or a pair [height, width]")


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int in Python, never a side in these files.
    return isinstance(value, int) and not isinstance(value, bool)


#: Settings that a resumed run takes from the command line: they change how the rest of the run
#: goes (more epochs, another device or loader count, a converted copy at the end), not what the
#: run is. Any other setting given with another value than the run's is refused.
RESUME_ADJUSTABLE = ("epochs", "device", "strict_device", "workers", "convert")


def flag_name(setting: str) -> str:
    """The `hda train` flag of a `TrainConfig` field: ``--batch-size``, ``--wd``."""
    return "--wd" if setting == "weight_decay" else "--" + setting.replace("_", "-")


def resumed_config(stored: dict[str, Any], given: dict[str, Any], out: str) -> TrainConfig:
    """The config that continues a run: its `stored` settings (the checkpoint's), with the
    settings `given` on the command line applied where `RESUME_ADJUSTABLE` allows.

    A given setting equal to the stored one is accepted; any other difference is a UsageError
    naming every such flag with both values, so a resume never silently becomes another run
    (fewer epochs than stored is refused by `schedule.resume_note`).
    """
    config = TrainConfig.from_dict({**stored, "out": out, "resume": True})
    clashes = [
        f"{flag_name(k)} {_shown(v)} (the run's: {_shown(getattr(config, k))})"
        for k, v in given.items()
        if k not in RESUME_ADJUSTABLE and v != getattr(config, k)
    ]
    if clashes:
        raise UsageError(
            f"--resume continues {out!r} with its own settings, and {'; '.join(clashes)} "
            "differ; drop them, or start a new run in another --out"
        )
    return config.replace(**{k: v for k, v in given.items() if k in RESUME_ADJUSTABLE})


#: Settings a later run of a front's training may change: where and how fast its candidates
#: train, not what a finished candidate's result means.
FRONT_ADJUSTABLE = ("device", "strict_device", "workers", "convert")


def recipe_clashes(stored: TrainConfig, asked: TrainConfig) -> list[str]:
    """The settings in which `asked` differs from the `stored` recipe of a front's study,
    each as its flag with both values (``--epochs 8 (the study's: 4)``); the candidates'
    own `model` and `out`, and `FRONT_ADJUSTABLE`, left out."""
    skipped = {"model", "out", "resume", *FRONT_ADJUSTABLE}
    return [
        f"{flag_name(f.name)} {_shown(new)} (the study's: {_shown(old)})"
        for f in dataclasses.fields(TrainConfig)
        if f.name not in skipped
        and (new := getattr(asked, f.name)) != (old := getattr(stored, f.name))
    ]


def _shown(value: Any) -> str:
    """A setting as its flag takes it: ``16``, ``32x48`` for an image size."""
    if isinstance(value, InputShape):
        value = stored_size(value)
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return str(value)


#: The recipe's defaults as a config (its `model` is a placeholder): ``RECIPE.lr`` is 0.05.
RECIPE = TrainConfig(model="-")


def recipe_defaults() -> dict[str, Any]:
    """Every `TrainConfig` setting that has a default, by field name (``{"epochs": 150, ...}``)."""
    return {
        f.name: f.default
        for f in dataclasses.fields(TrainConfig)
        if f.default is not dataclasses.MISSING
    }
