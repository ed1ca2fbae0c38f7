"""Space files: a `SearchSpace` read from and written to ``.toml`` or ``.json``.

A file holds ``{"format": "hda-search-space", "version": 1, "template": ..., "m": [...],
"stages": [{"k": [...], "n_layers": [...], "m": [...], "widths": [...]}, ...]}`` (``m`` at the
top level for every stage, or per stage; ``widths``, the transition widths searched, in any
stage, the others keeping the template's); ``hda search --write-space FILE`` writes one to start
from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hardnet_analysis.errors import UsageError
from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.search.space import (
    DEFAULT_TEMPLATE,
    FORMAT,
    SPACE_SUFFIXES,
    VERSION,
    SearchSpace,
    StageSpace,
    load_template,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def space_from_dict(data: Any, where: str, template: str | None = None) -> SearchSpace:
    """The space a file document describes; `template` (the --template flag) overrides its own."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a table/object at the top level")
    if data.get("format", FORMAT) != FORMAT or data.get("version", VERSION) != VERSION:
        raise UsageError(f"{where}: not an {FORMAT} version {VERSION} file")
    unknown = sorted(set(data) - {"format", "version", "template", "m", "stages"})
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = template or data.get("template", DEFAULT_TEMPLATE)
    stages_data = data.get("stages")
    if not isinstance(stages_data, list):
        raise UsageError(f"{where}: 'stages' must be a list of tables with k and n_layers")
    stages = [_stage_from_dict(s, f"{where}: stage {i}") for i, s in enumerate(stages_data, 1)]
    m = data.get("m")
    if m is not None and not isinstance(m, list):
        raise UsageError(f"{where}: 'm' must be a list of numbers")
    return SearchSpace(
        load_template(name), tuple(stages), None if m is None else tuple(m), template_name=name
    )


def _stage_from_dict(data: Any, where: str) -> StageSpace:
    if not isinstance(data, dict) or not {"k", "n_layers"} <= set(data):
        raise UsageError(f"{where}: expected a table with lists k and n_layers (and optional m)")
    unknown = sorted(set(data) - {"k", "n_layers", "m", "widths"})
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("k", "n_layers", "m", "widths"):
        if key in data and not isinstance(data[key], list):
            raise UsageError(f"{where}: {key} must be a list")
    m, widths = data.get("m"), data.get("widths")
    return StageSpace(
        tuple(data["k"]),
        tuple(data["n_layers"]),
        None if m is None else tuple(m),
        None if widths is None else tuple(widths),
    )


def load_space(path: str | Path, template: str | None = None) -> SearchSpace:
    """Read a space file (``.toml`` or ``.json``)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except FileNotFoundError:
        raise UsageError(f"space file {str(file)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"space file {str(file)!r} cannot be read: {exc}") from None
    except RecursionError:
        raise UsageError(f"space file {str(file)!r} is nested too deeply to read") from None
    return space_from_dict(data, file.name, template)


def save_space(space: SearchSpace, path: str | Path) -> Path:
    """Write `space` atomically as TOML (``.toml``) or JSON (``.json``); another ending is a
    UsageError (the file would not hold what its name says)."""
    file = Path(path)
    if file.suffix not in SPACE_SUFFIXES:
        raise UsageError(f"space file {str(file)!r} must end in .toml or .json (what it holds)")
    if file.suffix == ".toml":
        import tomli_w

        return atomic_write_text(file, tomli_w.dumps(space.to_dict()))
    return atomic_write_text(file, json.dumps(space.to_dict(), indent=2) + "\n")
