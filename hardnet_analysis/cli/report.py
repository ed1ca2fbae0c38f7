"""`hda report INPUT ... --out report.html`: one offline HTML report of whatever is given.

Each INPUT is a model (a registered or torchvision name, ``*.json`` definition or
``module:callable``, analysed at ``--input`` without running it), a profile run file or a
directory of them, a search directory (``front.json``; its trained candidates' runs are
training runs too), a training run directory (``metrics.jsonl``) or a directory of those.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.cli.common import add_input_args, analyze_model, output_file, requires
from hardnet_analysis.errors import UsageError

if TYPE_CHECKING:
    from hardnet_analysis.reports import ReportInputs, SearchDir, TrainingRun

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.

RUN_FORMAT = "hda-profile-run"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an offline interactive HTML report of models, profile runs, a search or "
        "training runs",
        description=__doc__.split("\n\n", 1)[1].replace("``", "'"),
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="models, files, directories")
    parser.add_argument("--out", type=output_file, required=True, help="HTML file to write")
    parser.add_argument("--model", help="model of the per-layer time view (default: first run)")
    parser.add_argument(
        "--device-model",
        metavar="DEVICE.json",
        help="also show this device model's (hda calibrate) predictions against the runs",
    )
    add_input_args(parser)
    parser.set_defaults(func=run)


def _format(path: Path) -> str | None:
    """The ``format`` a JSON file declares (None for other files)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
        return None
    return document.get("format") if isinstance(document, dict) else None


def _training(path: Path, name: str) -> TrainingRun:
    from hardnet_analysis.reports import TrainingRun
    from hardnet_analysis.train.runlog import read_metrics

    return TrainingRun(name, read_metrics(path))


def _search(path: Path) -> SearchDir:
    from hardnet_analysis.documents.fronts import (
        FRONT_FILE,
        SAMPLE_FILE,
        TRAINED_FILE,
        SearchFront,
        SearchSample,
        TrainedFront,
    )
    from hardnet_analysis.reports import SearchDir

    sample, trained = path / SAMPLE_FILE, path / TRAINED_FILE
    return SearchDir(
        path,
        SearchFront.read(path / FRONT_FILE),
        SearchSample.read(sample) if sample.exists() else None,
        TrainedFront.read(trained) if trained.exists() else None,
    )


class _Collected:
    """The inputs sorted by kind as they are found."""

    def __init__(self) -> None:
        self.models: list[str] = []
        self.run_files: list[Path] = []
        self.searches: list[SearchDir] = []
        self.trainings: list[TrainingRun] = []

    def directory(self, path: Path) -> None:
        """A search, a training run, or a directory of run files or training runs."""
        from hardnet_analysis.cli.common.runs import directory_runs

        if (path / "front.json").exists():
            self.searches.append(_search(path))
            for run_dir in sorted((path / "runs").glob("*/metrics.jsonl")):
                self.trainings.append(_training(run_dir.parent, run_dir.parent.name))
        elif (path / "metrics.jsonl").exists():
            self.trainings.append(_training(path, path.name))
        else:
            runs = directory_runs(path)
            runs_dirs = sorted(path.glob("*/metrics.jsonl"))
            if not runs and not runs_dirs:
                raise UsageError(f"{str(path)!r} holds no profile runs, search or training runs")
            self.run_files += runs
            self.trainings += [_training(m.parent, m.parent.name) for m in runs_dirs]

    def add(self, text: str) -> None:
        path = Path(text)
        if path.is_dir():
            self.directory(path)
        elif path.is_file() and _format(path) == RUN_FORMAT:
            self.run_files.append(path)
        elif path.is_file() and _format(path) == "hda-search-front":
            self.directory(path.parent)
        else:
            self.models.append(text)  # a name or definition; resolve() judges it


def collect(args: argparse.Namespace) -> ReportInputs:
    """The analyses, runs, searches and training runs `args.inputs` name."""
    from hardnet_analysis.cli.common.runs import load_runs, warn_in_fit
    from hardnet_analysis.metrics.predictor_score import score_file
    from hardnet_analysis.reports import ReportInputs

    found = _Collected()
    for text in args.inputs:
        found.add(text)
    _check_options(args, found)
    analyses = [analyze_model(args, m) for m in found.models]
    runs = load_runs(found.run_files) if found.run_files else []
    prediction = score_file(runs, args.device_model) if args.device_model else None
    if prediction is not None:
        warn_in_fit(prediction)
    return ReportInputs(
        analyses,
        runs,
        found.searches,
        found.trainings,
        args.model,
        tuple(args.inputs),
        prediction,
    )


def _check_options(args: argparse.Namespace, found: _Collected) -> None:
    """Options that apply to one kind of input, refused when no such input was given."""
    runs = "profile runs among the INPUTs"
    requires(args, "model", f"{runs} (it picks the per-layer view's)", bool(found.run_files))
    requires(args, "device_model", f"{runs} (it is scored on them)", bool(found.run_files))
    for dest in ("input", "input_shape", "batch", "dtype"):
        requires(args, dest, "models among the INPUTs (it sizes them)", bool(found.models))


def run(args: argparse.Namespace) -> int:
    from hardnet_analysis.reports import write_report

    path = write_report(collect(args), args.out)
    print(f"report written to {path}")
    return 0
