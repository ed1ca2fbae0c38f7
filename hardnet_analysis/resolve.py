"""Resolve what the user names: a registered model or a definition file (``*.json``).

Definitions and modules pass through unchanged. Never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hardnet_analysis.definitions.registry import get_definition
from hardnet_analysis.definitions.serialize import load_definition


def resolve(target: Any, num_classes: int = 1000) -> Any:
    """A definition for a name or a ``.json`` path; anything else is returned as it is."""
    if isinstance(target, Path) or (isinstance(target, str) and target.endswith(".json")):
        return load_definition(target)
    if isinstance(target, str):
        return get_definition(target, num_classes)
    return target
