"""Definitions: pure data describing networks (no torch). Importing this registers the zoo."""

from hardnet_analysis.definitions import condensenet, densenet, hardnet, resnet
from hardnet_analysis.definitions.hardnet import (
    HarDBlockDef,
    HarDNetConfig,
    HarDNetDef,
    HeadDef,
    StageDef,
    StemDef,
)
from hardnet_analysis.definitions.registry import (
    NetworkDef,
    get_definition,
    get_entry,
    list_models,
    register_model,
)

__all__ = [
    "HarDBlockDef",
    "HarDNetConfig",
    "HarDNetDef",
    "HeadDef",
    "NetworkDef",
    "StageDef",
    "StemDef",
    "condensenet",
    "densenet",
    "get_definition",
    "get_entry",
    "hardnet",
    "list_models",
    "register_model",
    "resnet",
]
