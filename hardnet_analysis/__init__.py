"""hda: HarDNet analysis. Memory traffic (CIO), MACs, parameters and MoC of conv networks.

``analyze`` and ``list_models`` never import torch; ``create_model`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hardnet_analysis.analysis import analyze
from hardnet_analysis.families import list_models
from hardnet_analysis.families.registry import NetworkDef
from hardnet_analysis.metrics.analysis import Analysis

if TYPE_CHECKING:
    from torch import nn

__version__ = "0.1.0"


def create_model(
    name_or_definition: str | NetworkDef,
    num_classes: int | None = None,
    weights: str | Path | None = None,
) -> nn.Module:
    """Build the torch model of a registered name or a definition (see `models.create_model`)."""
    # Imported here: `create_model` needs torch, `analyze` and `list_models` must not load it.
    from hardnet_analysis.models import create_model as _create_model

    return _create_model(name_or_definition, num_classes, weights)


__all__ = ["Analysis", "analyze", "create_model", "list_models"]
