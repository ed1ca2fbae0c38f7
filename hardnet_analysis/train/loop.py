"""The training loop: `train(config)` runs (or resumes) one run directory.

Per epoch: train, evaluate, then write ``last.pt`` atomically, the metric logs, and ``best.pt``
when the task's score (validation top-1, or mIoU for segmentation) improved. A run killed at any
point loses at most the epoch in progress.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from hardnet_analysis.backends import backend_of, pick
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.serialize import to_dict
from hardnet_analysis.train import checkpoint
from hardnet_analysis.train.config import TrainConfig
from hardnet_analysis.train.data import DataSplit, collate_skipping
from hardnet_analysis.train.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    init_distributed,
    shutdown,
)
from hardnet_analysis.train.model import (
    Hooks,
    build_for_classes,
    check_convertible,
    convert,
    load_initial_weights,
    set_memory_efficient,
)
from hardnet_analysis.train.progress import Reporter, epoch_line
from hardnet_analysis.train.runlog import write_args, write_metrics
from hardnet_analysis.train.schedule import lr_factor, resume_note
from hardnet_analysis.train.steps import Step, evaluate_model, train_one_epoch
from hardnet_analysis.train.task import make_task


@dataclass
class TrainResult:
    """A finished run: its directory, one metrics dict per epoch, and the best value (%) of the
    task's score, the record key `score` (``val_top1``, or ``val_miou`` for segmentation)."""

    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = 0.0
    score: str = "val_top1"

    @property
    def best_top1(self) -> float:
        """The best validation top-1 (%) of a classification run."""
        if self.score != "val_top1":
            raise ValueError(f"a {self.score} run has no top-1; read .best")
        return self.best


class ShardSampler(Sampler[int]):
    """Every `world`-th index from `rank`: the ranks split a set exactly, without padding."""

    def __init__(self, size: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, size, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def make_loaders(
    data: DataSplit, config: TrainConfig, ctx: DistContext, device: torch.device
) -> tuple[DataLoader[Any], DataLoader[Any], DistributedSampler[Any]]:
    """Train and validation loaders; each rank takes ``batch_size / world`` of a global batch.

    The train sampler is a `DistributedSampler` even in one process, so the union of the ranks'
    i-th batches is the single-process i-th batch.
    """
    if config.batch_size % ctx.world_size:
        raise UsageError(
            f"--batch-size {config.batch_size} does not split over {ctx.world_size} ranks"
        )
    per_rank = config.batch_size // ctx.world_size
    sampler: DistributedSampler[Any] = DistributedSampler(
        data.train, ctx.world_size, ctx.rank, shuffle=True, seed=config.seed
    )
    workers = 0 if data.in_memory else config.workers
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    common: dict[str, Any] = {
        "num_workers": workers,
        "collate_fn": collate_skipping,
        "pin_memory": backend_of(device).pin_memory(),
        "persistent_workers": workers > 0,
    }
    train = DataLoader(
        data.train,
        per_rank,
        sampler=sampler,
        drop_last=len(sampler) >= per_rank,
        **common,
    )
    val_sampler = ShardSampler(len(data.val), ctx.rank, ctx.world_size)  # type: ignore[arg-type]
    val = DataLoader(data.val, per_rank, sampler=val_sampler, **common)
    return train, val, sampler


def _reduced(sums: dict[str, float], device: torch.device, ctx: DistContext) -> dict[str, float]:
    keys = sorted(sums)
    return dict(zip(keys, all_reduce_sum([sums[k] for k in keys], device, ctx), strict=True))


class Run:
    """One training run: set up from a config, then `fit` epoch by epoch."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.run_dir = Path(config.out)
        picked = pick(config.device, config.strict_device, int(os.environ.get("LOCAL_RANK", "0")))
        self.device, self.backend = picked.device, picked.backend
        self.fallback = picked.warning(config.device)
        if config.amp and not self.backend.supports_amp():
            raise UsageError(
                f"--amp needs a device with mixed precision here, not {self.backend.name}"
            )
        self.ctx = init_distributed(self.device)
        self._check_run_dir()
        seed_everything(config.seed, config.deterministic)
        self.task = make_task(config)
        self.data = self.task.load(config)
        self.num_classes = self._num_classes()
        self.model = self._build_model()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda e: lr_factor(e, config.epochs, config.warmup_epochs, config.schedule),
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp)
        self.train_loader, self.val_loader, self.sampler = make_loaders(
            self.data, config, self.ctx, self.device
        )
        self.history: list[dict[str, Any]] = []
        self.best = -1.0
        self.start_epoch = 0
        self.note = "started"
        if config.resume:
            self._restore(checkpoint.load(self.run_dir / "last.pt"))

    def _build_model(self) -> nn.Module:
        """The model for the data's classes, initial weights loaded, every hook the settings
        need checked and one forward pass checked, all before the first step."""
        config = self.config
        model, self.definition = build_for_classes(config.model, self.num_classes)
        if config.weights:
            load_initial_weights(model, config.weights, self.num_classes, self.data.num_classes)
        if config.convert:
            check_convertible(model, config.model)
        if config.memory_efficient:
            set_memory_efficient(model, config.model)
        self.task.check_output(model, config.model, self.num_classes, self.data)
        model.to(self.device)
        if config.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def _check_run_dir(self) -> None:
        last = self.run_dir / "last.pt"
        if not self.config.resume and last.exists():
            raise UsageError(
                f"{str(self.run_dir)!r} already holds a run (last.pt); pass --resume to continue "
                "it or choose another --out"
            )

    def _num_classes(self) -> int:
        wanted = self.config.num_classes
        if wanted is not None and wanted < self.data.num_classes:
            raise UsageError(
                f"--num-classes {wanted} is fewer than the {self.data.num_classes} classes "
                "in the data"
            )
        return wanted or self.data.num_classes

    def _restore(self, state: dict[str, Any]) -> None:
        stored_task = state["config"].get("task", "classification")
        for what, stored, now in (
            ("model", state.get("model_spec"), self.config.model),
            ("--task", stored_task, self.config.task),
        ):
            if stored != now:
                raise UsageError(
                    f"checkpoint {str(self.run_dir / 'last.pt')!r} was trained with {what} "
                    f"{stored!r}, not {now!r}; it was left untouched"
                )
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"checkpoint does not fit the model ({first})") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.best = float(state.get("best", state.get("best_top1", -1.0)))  # older: best_top1
        self.history = list(state["history"])
        self.rng = state["rng"]
        stored = int(state["config"]["epochs"])
        config = self.config
        self.note = resume_note(
            str(self.run_dir), stored, config.epochs, self.start_epoch, config.schedule
        )
        # The schedule is this run's (over --epochs); the restored lr was the stored schedule's.
        factor = lr_factor(self.start_epoch, config.epochs, config.warmup_epochs, config.schedule)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
            group["lr"] = base * factor

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "model_spec": self.config.model,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": checkpoint.rng_state(),
            "epoch": epoch,
            "best": self.best,
            "history": self.history,
            "config": self.config.to_dict(),
        }

    def fit(self, reporter: Reporter) -> TrainResult:
        config, ctx = self.config, self.ctx
        if ctx.is_main and self.start_epoch < config.epochs:  # a finished run stays untouched
            self.run_dir.mkdir(parents=True, exist_ok=True)
            extra = {"num_classes": self.num_classes, "dataset": self.data.name}
            extra["world_size"] = ctx.world_size
            write_args(self.run_dir, config.to_dict(), extra, self.start_epoch, self.note)
        net: nn.Module = self.model
        if ctx.enabled:
            ids = self.backend.ddp_device_ids(self.device)
            net = DistributedDataParallel(self.model, device_ids=ids)
        step = Step(
            net,
            self.optimizer,
            self.task.criterion(config),
            self.scaler,
            Hooks.of(self.model),
            self.device,
            config.amp,
            config.channels_last,
            self.task,
        )
        if config.resume:
            checkpoint.set_rng_state(self.rng)
        iterations = len(self.train_loader)
        for epoch in range(self.start_epoch, config.epochs):
            self._epoch(step, epoch, iterations, reporter)
        if config.convert and ctx.is_main:
            self._write_converted()
        barrier(ctx)
        shutdown(ctx)
        return TrainResult(self.run_dir, self.history, self.best, self.task.score)

    def _epoch(self, step: Step, epoch: int, iterations: int, reporter: Reporter) -> None:
        config, ctx = self.config, self.ctx
        self.sampler.set_epoch(epoch)
        self.backend.reset_peak_memory(self.device)
        lr = self.optimizer.param_groups[0]["lr"]
        reporter.start_epoch(epoch + 1, config.epochs, iterations)
        train = train_one_epoch(
            step, self.train_loader, epoch * iterations, config.epochs * iterations, reporter
        )
        seconds = train.pop("seconds")
        train = _reduced(train, self.device, ctx)
        if not train["images"]:
            raise UsageError(
                f"epoch {epoch + 1} had zero usable training images ({train['skipped']:.0f} "
                "skipped as undecodable)"
            )
        val = self._validate(step)
        self.scheduler.step()
        record = {
            "epoch": epoch + 1,
            **self.task.record(train, val),
            "lr": lr,
            "images_per_s": train["images"] / max(seconds, 1e-9),
            "epoch_seconds": seconds,
            "peak_memory_mb": self.backend.peak_memory_mb(self.device),
            "skipped": int(train["skipped"] + val["skipped"]),
        }
        self.history.append(record)
        score = record[self.task.score]
        improved = score > self.best
        self.best = max(self.best, score)
        if ctx.is_main:
            self._save(epoch + 1, record, improved)
        reporter.log(epoch_line(record, config.epochs, self.task.metrics_text(record)))

    def _validate(self, step: Step) -> dict[str, float]:
        """The task's validation means, the ranks' sums added first."""
        config = self.config
        sums = evaluate_model(
            step.model,
            self.val_loader,
            self.device,
            config.channels_last,
            config.amp,
            self.task,
            self.num_classes,
        )
        return self.task.summarize(_reduced(sums, self.device, self.ctx))

    def _save(self, epoch: int, record: dict[str, Any], improved: bool) -> None:
        checkpoint.save(self.run_dir / "last.pt", self._state(epoch))
        write_metrics(self.run_dir, self.history, self.task.fields)
        if improved:
            best = {
                "state_dict": self.model.state_dict(),
                "epoch": epoch,
                self.task.best_key: record[self.task.score],
            }
            checkpoint.save(self.run_dir / "best.pt", best)

    def _write_converted(self) -> None:
        converted = convert(self.model, self.config.model).cpu()
        # The converted module's own definition (a CondenseNet's says converted=True); the
        # training-time one would rebuild a model these weights do not fit.
        defn = getattr(converted, "definition", None)
        definition = to_dict(defn) if defn is not None else None
        document = {"state_dict": converted.state_dict(), "definition": definition}
        checkpoint.save(self.run_dir / "converted.pt", document)


def train(config: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Train (or with ``config.resume`` continue) the run in ``config.out``; see `Run`."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        run = Run(config)
        with reporter or Reporter(enabled=run.ctx.is_main) as active:
            if run.fallback:
                active.log(f"hda: warning: {run.fallback}")
            if config.resume:
                active.log(f"resuming {config.out}: {run.note}")
            return run.fit(active)
    finally:  # in-process callers (tests, pool workers) get their global setting back
        torch.use_deterministic_algorithms(deterministic)
