"""Profile runs as the commands that read them find them: run files named or searched in
folders, each file once, failed runs kept out, with the warnings every reader gives (outliers,
scored models that the device model was fitted on). Shared by `hda correlate` and `hda report`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hardnet_analysis.cli.common import one_line, warn
from hardnet_analysis.documents.profile_run import ProfileRun, RunDocument
from hardnet_analysis.errors import UsageError

if TYPE_CHECKING:
    from hardnet_analysis.metrics.predictor_score import PredictorScore

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.


def load_runs(paths: Sequence[Path]) -> list[ProfileRun]:
    """The successful runs of `paths` (directories are searched for run files,
    `directory_runs`), each file once (`unique_files`); failed runs are kept out. A named file
    that is unreadable or not a run, or any run file of another version or with a missing key,
    is a usage error naming it."""
    files: list[Path] = []
    for path in paths:
        files.extend(directory_runs(path) if path.is_dir() else [path])
    found = [RunDocument.read(file) for file in unique_files(files)]
    runs = [run for run in found if isinstance(run, ProfileRun)]
    if not runs:
        raise UsageError("no successful profile runs among the files given")
    return runs


def directory_runs(directory: Path) -> list[Path]:
    """The profile run files in `directory`: its *.json files that say they are runs (other
    JSON may share a results directory). A file that is not readable JSON is skipped with a
    warning on stderr, one line each (named on the command line it would be an error)."""
    found = []
    for file in sorted(directory.glob("*.json")):
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            warn(f"skipped {str(file)!r}, which is not readable JSON: {one_line(exc)}")
            continue
        if isinstance(document, dict) and document.get("format") == RunDocument.FORMAT:
            found.append(file)
    return found


def unique_files(files: Sequence[Path]) -> list[Path]:
    """`files` less any that name a file already listed (the same path twice, or a file and
    its directory): counted twice, a run would narrow every interval. Says so on stderr."""
    seen: dict[Path, Path] = {}
    for file in files:
        seen.setdefault(file.resolve(), file)
    repeated = len(files) - len(seen)
    if repeated:
        warn(f"{repeated} run file(s) given more than once; each is counted once")
    return list(seen.values())


def warn_outliers(runs: Sequence[ProfileRun]) -> None:
    """One warning line per run far off the others of its device (`outliers`)."""
    from hardnet_analysis.metrics.correlate import outliers

    for found in outliers(runs):
        run = found.run
        cold = (
            " (timed with --warmup 0: one-time costs counted)" if run.settings.warmup == 0 else ""
        )
        warn(
            f"{run.file_name} is an outlier: {found.factor:.2g}x the latency the other runs "
            f"of its device predict{cold}; correlations and fits include it"
        )


def warn_in_fit(found: PredictorScore) -> None:
    """A warning when some scored models were in the device model's context fit, and one per
    way the runs differ from the calibration (`PredictorScore.warnings`)."""
    for message in found.warnings:
        warn(message)
    if found.in_fit:
        warn(
            f"{', '.join(found.in_fit)}: in the device model's context fit, so their "
            "predictions are in sample"
        )
