"""Where a device model's predictions miss: measured against predicted time per layer kind.

For each profile run given, sums the measured time of its layer keys and the device model's
predicted time of their graph nodes, grouped by the ops a layer key covers (``conv``,
``max_pool``, ``chunk,concat,...``), largest measured first. A diagnosis aid for
``results/predict-sweep`` (no timing is done here).

Run: ``python benchmarks/predict_by_kind.py DEVICE.json RUN.json ... [--top 8]``.
"""

from __future__ import annotations

import argparse
import collections

from hardnet_analysis.documents.device_model import DeviceModel
from hardnet_analysis.documents.profile_run import ProfileRun, RunDocument
from hardnet_analysis.metrics.predictor_score import predict_run


def by_kind(run: ProfileRun, device: DeviceModel) -> dict[str, tuple[int, float, float]]:
    """Layer kind -> (layer keys, measured seconds, predicted seconds)."""
    predicted = predict_run(run, device).by_name()
    rows: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
    for layer in run.layers:
        row = rows[",".join(sorted(set(layer.ops))) or "(no op)"]
        row[0] += 1
        row[1] += layer.time_s
        row[2] += sum(predicted[n].time_s for n in layer.nodes if n in predicted)
    return {k: (int(v[0]), v[1], v[2]) for k, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("device")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    device = DeviceModel.read(args.device)
    for path in args.runs:
        run = RunDocument.read(path)
        if not isinstance(run, ProfileRun):
            continue
        kinds = by_kind(run, device)
        measured = sum(v[1] for v in kinds.values())
        predicted = sum(v[2] for v in kinds.values())
        print(f"{run.model} {run.input}: layers {measured * 1e3:.2f} ms measured, "
              f"{predicted * 1e3:.2f} ms predicted")  # fmt: skip
        for kind, (n, m, p) in sorted(kinds.items(), key=lambda kv: -kv[1][1])[: args.top]:
            print(f"  {kind[:40]:40s} {n:4d} keys  {m * 1e3:8.2f} ms  {p * 1e3:8.2f} ms")


if __name__ == "__main__":
    main()
