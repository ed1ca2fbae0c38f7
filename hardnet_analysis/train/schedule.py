"""The learning-rate schedule and what ``--resume`` may do to it.

The schedule is a linear warm-up, then a per-epoch decay over the run's `epochs`: a cosine (the
HarDNet recipe) or the "poly" decay of segmentation recipes (FC-HarDNet's, power 0.9). A resumed
run continues the stored schedule; asking for more epochs than stored stretches the decay to the
new total from the epoch where it resumes (the learning rate rises to where an N-epoch run would
be, instead of training the extra epochs at the old schedule's end, 0); asking for fewer is an
error.
"""

from __future__ import annotations

import math

from hardnet_analysis.errors import UsageError

#: The exponent of the poly schedule (FC-HarDNet's and DeepLab's).
POLY_POWER = 0.9


def lr_factor(epoch: int, epochs: int, warmup: int, schedule: str = "cosine") -> float:
    """Multiplier of the base lr in `epoch` (0-based): linear warm-up, then a per-epoch decay.

    Without warm-up, epoch e of E gets ``0.5 * (1 + cos(pi * e / E))`` under ``cosine`` (1.0 at
    e=0, 0.5 at E/2) and ``(1 - e / E) ** 0.9`` under ``poly`` (1.0 at e=0, 0.536 at E/2).
    """
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    progress = (epoch - warmup) / (epochs - warmup)
    if schedule == "poly":
        return float((1.0 - progress) ** POLY_POWER)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def resume_note(run: str, stored: int, requested: int, done: int, schedule: str = "cosine") -> str:
    """What resuming `run` (stored for `stored` epochs, `done` finished) with ``--epochs
    requested`` does, for the run's history; fewer epochs than stored is a UsageError."""
    if requested < stored:
        raise UsageError(
            f"--epochs {requested} is fewer than the {stored} epochs {run!r} was started with "
            f"({done} done); resume with --epochs {stored} or more, or start a new --out"
        )
    if requested > stored:
        return f"{schedule} schedule extended from {stored} to {requested} epochs at epoch {done}"
    if done >= stored:
        return f"nothing to do: all {stored} epochs are done"
    return f"resumed after epoch {done} of {stored}"
