"""`hda correlate RUN.json ...`: does latency follow memory traffic or MACs?

Pearson and Spearman correlations (95% intervals) and least-squares lines of latency against
each predictor, per model and per layer and per device; the best predictor; latency models
(latency = a*MACs + b*bytes + c per device) with leave-one-model-out error. With
``--save-calibration FILE`` the macs + cio model (features the search computes) is saved as
``{"format": "hda-latency-model", "version": 1, ...}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hardnet_analysis.cli.common import add_format_arg, console, output_file
from hardnet_analysis.cli.common.runs import load_runs, warn_in_fit, warn_outliers
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.errors import UsageError
from hardnet_analysis.present.formats import write_csv, write_json
from hardnet_analysis.present.profile import (
    correlation_tables,
    latency_model_table,
    predictor_table,
)

if TYPE_CHECKING:
    from hardnet_analysis.documents.latency_model import LatencyModel
    from hardnet_analysis.metrics.correlate import Correlation
    from hardnet_analysis.metrics.predictor_score import PredictorScore

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.

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
        calibration.write(args.save_calibration)
    document: dict[str, Any] = {
        "runs": len(runs),
        "correlations": [c.to_dict() for c in found],
        "best": verdicts,
        "latency_models": [m.to_dict() for m in models],
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
