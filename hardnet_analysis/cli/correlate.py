"""`hda correlate RUN.json ...`: does latency follow memory traffic or MACs?

Pearson and Spearman correlations (95% intervals) and least-squares lines of latency against
each predictor, per model and per layer and per device; the best predictor; latency models
(latency = a*MACs + b*bytes + c per device) with leave-one-model-out error. With
``--save-calibration FILE`` the macs + cio model (features the search computes) is saved as
``{"format": "hda-latency-model", "version": 1, ...}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.cli.common import add_format_arg, console, one_line, output_file, warn
from hardnet_analysis.errors import UsageError
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.present.profile import (
    correlation_tables,
    latency_model_table,
    predictor_table,
)
from hardnet_analysis.profiler.document import FORMAT, ProfileRun, load_run

if TYPE_CHECKING:
    from hardnet_analysis.metrics.calibration import LatencyModel
    from hardnet_analysis.metrics.correlate import Correlation
    from hardnet_analysis.metrics.predictor_score import PredictorScore

CALIBRATION_FEATURES = ("macs", "cio")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "correlate",
        help="correlate latency with modeled bytes, CIO, MACs and measured DRAM bytes",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN.json", help="profile runs")
    parser.add_argument(
        "--save-calibration",
        type=output_file,
        metavar="FILE",
        help="save the macs + cio latency model for the search (hda-latency-model JSON)",
    )
    parser.add_argument(
        "--device-model",
        metavar="DEVICE.json",
        help="also score the calibrated predictor (hda calibrate): predicted vs measured per "
        "model and per layer, MAPE, share within +-10%%, leave-one-model-out",
    )
    add_format_arg(parser)
    parser.set_defaults(func=run)


def load_runs(paths: Sequence[Path]) -> list[ProfileRun]:
    """The successful runs of `paths` (directories are searched for run files,
    `directory_runs`), each file once (`unique_files`); failed runs are kept out. A named file
    that is unreadable or not a run, or any run file of another version or with a missing key,
    is a usage error naming it."""
    files: list[Path] = []
    for path in paths:
        files.extend(directory_runs(path) if path.is_dir() else [path])
    runs = [run for file in unique_files(files) if isinstance(run := load_run(file), ProfileRun)]
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
        if isinstance(document, dict) and document.get("format") == FORMAT:
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


def _verdicts(found: list[Correlation]) -> list[dict[str, Any]]:
    from hardnet_analysis.metrics.correlate import best

    out = []
    for device in sorted({c.device for c in found}):
        for level in ("model", "layer"):
            top = best(found, level, device)
            if top is not None:
                out.append(
                    {"level": level, "device": device, "predictor": top.predictor, "r": top.pearson}
                )
    return out


def run(args: argparse.Namespace) -> int:
    # scipy.stats takes about a second to import: only this command pays for it.
    from hardnet_analysis.metrics.correlate import correlations, latency_models

    runs = load_runs(args.runs)
    warn_outliers(runs)
    found = correlations(runs)
    models = latency_models(runs)
    verdicts = _verdicts(found)
    # Every input is judged before the calibration is written: a refused command writes nothing.
    calibration = _calibration(models) if args.save_calibration else None
    predictor = _score(runs, args.device_model) if args.device_model else None
    if calibration is not None:
        calibration.save(args.save_calibration)
    document: dict[str, Any] = {
        "runs": len(runs),
        "correlations": [c.to_dict() for c in found],
        "best": verdicts,
        "latency_models": [m.to_json() for m in models],
    }
    if predictor is not None:
        warn_in_fit(predictor)
        document["predictor"] = predictor.to_dict()
    if args.format == "json":
        write_json(document)
    elif args.format == "csv":
        write_csv(document["correlations"])
    else:
        _show(document, models)
        if args.save_calibration:
            console().print(f"calibration saved to {args.save_calibration}")
        if "predictor" in document:
            console().print(predictor_table(document["predictor"]))
    return 0


def _calibration(models: list[LatencyModel]) -> LatencyModel:
    """The macs + cio latency model `--save-calibration` writes (one device's)."""
    chosen = [m for m in models if m.features == CALIBRATION_FEATURES]
    if not chosen:
        raise UsageError("too few runs to fit a macs + cio latency model (need >= 4 models)")
    if len(chosen) > 1:
        raise UsageError("runs from several devices; give the runs of one device")
    return chosen[0]


def _score(runs: list[ProfileRun], path: str) -> PredictorScore:
    from hardnet_analysis.metrics.predictor_score import score_file

    return score_file(runs, path)


def _show(document: dict[str, Any], models: list[LatencyModel]) -> None:
    """Per device: its table, the best predictor per level, its latency models."""
    out = console()
    for table, device in correlation_tables(document["correlations"]):
        out.print(table)
        best = [v for v in document["best"] if v["device"] == device]
        out.print(
            "best predictor: "
            + "; ".join(f"{v['level']}s {v['predictor']} (r = {v['r']:.3f})" for v in best)
        )
        out.print(latency_model_table([m for m in models if m.device == device]))
        out.print()


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
