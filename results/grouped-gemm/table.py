"""The tables of RESULTS.md from ``hda correlate --format json`` files: each argument is
``label;new.json;old.json``; per model the whole-model error (raw and at the run's speed) and
the per-op MAPE and Spearman over ops >= 1% of their model, new against old."""

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

Row = tuple[float, float, int, float, float]


def rows(path: str) -> tuple[dict[str, Any], dict[str, Row]]:
    predictor = json.loads(Path(path).read_text())["predictor"]
    points = predictor["ops"]["points"]
    out = {}
    for model in predictor["models"]:
        mine = [p for p in points if p["model"] == model["model"]]
        predicted = np.array([p["predicted_s"] for p in mine])
        measured = np.array([p["measured_s"] for p in mine])
        mape = float(np.mean(np.abs(predicted / measured - 1)))
        rho = float(spearmanr(predicted, measured)[0])
        out[model["model"]] = (model["error"], model["speed_error"], len(mine), mape, rho)
    return predictor, out


def table(label: str, new: str, old: str) -> None:
    totals_new, models_new = rows(new)
    totals_old, models_old = rows(old)
    print(f"\n**{label}**\n")
    print("| model | whole model, new (old) | at run speed, new (old) | ops >= 1% "
          "| per-op MAPE, new (old) | per-op Spearman, new (old) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, a in models_new.items():
        b = models_old[name]
        print(f"| {name} | {a[0]:+.1%} ({b[0]:+.1%}) | {a[1]:+.1%} ({b[1]:+.1%}) | {a[2]} "
              f"| {a[3]:.1%} ({b[3]:.1%}) | {a[4]:.2f} ({b[4]:.2f}) |")  # fmt: skip
    n, o = totals_new, totals_old
    ops_n, ops_o = n["ops"], o["ops"]
    print(f"| all | MAPE {n['mape']:.1%} ({o['mape']:.1%}) | {n['speed_mape']:.1%} "
          f"({o['speed_mape']:.1%}) | {ops_n['ops']} | {ops_n['mape']:.1%} "
          f"({ops_o['mape']:.1%}) | {ops_n['spearman']:.2f} "
          f"({ops_o['spearman']:.2f}) |")  # fmt: skip


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        table(*argument.split(";"))
