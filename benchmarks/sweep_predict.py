"""The predictor sweep: calibrate on micro-benchmarks alone, profile >= 20 models, score.

1. ``hda calibrate --threads 1 2 --thread-time`` (once, one file for both settings):
   micro-benchmarks, then the context fit on a few whole networks that are not among the
   models scored here (``profiler.calibrate.CONTEXT``), so every score is out of sample;
2. (once) ``hda search --objective latency`` for searched HarDNet candidates to add;

then for each setting (1 thread with ``--thread-time``, then 2 threads wall time):

3. ``hda profile`` of every model at each input size (ViT-B/16 only at 224, its fixed size);
4. ``hda correlate --device-model``: predicted vs measured per model, per layer and per op,
   MAPE, share within +-10%, and leave-one-model-out with a fitted scale;
5. ``hda profile`` of the named models again at the first size, scored against the first
   profile as if it were a prediction: the measurement's own reproducibility, the floor under
   any predictor's per-model and per-op error and the ceiling of its Spearman.

``--runtime onnxruntime`` sweeps ONNX Runtime instead: the calibration, the search and every
profile run there (wall clock at every thread count), and ``--eager DIR`` (an eager sweep's
``--out``) adds each model's ORT / eager latency to the table.

Writes everything under ``--out`` (default ``results/predict-sweep``) with ``RESULTS.md``
holding the commands run, the per-model table and the summary. Run when the machine is quiet:
``python benchmarks/sweep_predict.py``; a quick end-to-end check:
``python benchmarks/sweep_predict.py --models tests/data/tinyhardnet.json resnet18 --sizes 32
--grid tiny --candidates 0 --repeat 2 --out /tmp/sweep``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from hardnet_analysis.documents.machine import (
    Controls,
    LoadProbe,
    Pace,
    speed_ratio,
)

HDA = [sys.executable, "-m", "hardnet_analysis"]
MODELS = [
    "hardnet68",
    "hardnet85",
    "hardnet39ds",
    "hardnet68ds",
    "densenet121",
    "densenet169",
    "condensenet74_c4_g4_converted",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "regnet_y_400mf",
    "shufflenet_v2_x1_0",
    "vgg16",
    "convnext_tiny",
    "vit_b_16",
    # families and variants the first sweep lacked
    "efficientnet_b4",
    "regnet_x_1_6gf",
    "resnet152",
    "densenet161",
    "mnasnet1_3",
    "swin_t",
    "fchardnet70",
]
#: Models profiled at their own sizes only: ViT-B/16's fixed 224, FC-HarDNet at Cityscapes'
#: half resolution.
FIXED = {"vit_b_16": ("224",), "fchardnet70": ("512x1024",)}
SETTINGS = {"1thread": ["--threads", "1", "--thread-time"], "2threads": ["--threads", "2"]}
#: An op counts in the per-op figures when it holds this share of its model's op time (as
#: ``metrics.predictor_score.OP_SHARE``).
OP_SHARE = 0.01
#: Every setting's thread count, calibrated once into one device model.
CALIBRATE = ["--threads", "1", "2", "--thread-time"]


class Steps:
    """Runs hda commands, logging each (with its wall time) for RESULTS.md."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.log: list[str] = []

    def run(self, args: list[str], stdout: Path | None = None, ok: tuple[int, ...] = (0,)) -> None:
        shown = "hda " + " ".join(args) + (f" > {stdout}" if stdout else "")
        print(f"$ {shown}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        with open(stdout, "w") if stdout else open("/dev/null", "w") as sink:
            code = subprocess.run([*HDA, *args], stdout=sink if stdout else None, check=False)
        seconds = time.perf_counter() - start
        self.log.append(f"{shown}    # {seconds:.0f} s, exit {code.returncode}")
        if code.returncode not in ok:
            raise SystemExit(f"failed ({code.returncode}): {shown}")


def candidates(steps: Steps, device: Path, count: int) -> list[str]:
    """Definition files of the `count` fastest predicted HarDNets within 2 GMACs."""
    if count == 0:
        return []
    where = steps.out / "candidates"
    steps.run(
        [
            "search",
            "--objective",
            "latency",
            "--device-model",
            str(device),
            "--budget-macs",
            "2G",
            "--top",
            str(count),
            "--emit",
            str(count),
            "--out",
            str(where),
            "--format",
            "json",
        ],
        stdout=steps.out / "search.json",
    )
    return sorted(str(p) for p in (where / "candidates").rglob("*.json"))[:count]


def profile(
    steps: Steps,
    models: list[str],
    sizes: list[str],
    flags: list[str],
    runs: Path,
    args: argparse.Namespace,
) -> None:
    """Profile each model at its sizes (failed runs are recorded and skipped by correlate)."""
    timing = ["--repeat", str(args.repeat), "--warmup", str(args.warmup), "--counters", "none"]
    groups: dict[tuple[str, ...], list[str]] = {}
    for model in models:
        groups.setdefault(FIXED.get(model, tuple(sizes)), []).append(model)
    for group_sizes, group in groups.items():
        command = ["profile", *group, "--input", *group_sizes, *flags, *timing]
        steps.run([*command, "--out", str(runs)], ok=(0, 1))


def flags_of(name: str, runtime: str) -> list[str]:
    """`profile`'s flags for setting `name` in `runtime` (ORT: no thread clock, wall time)."""
    if runtime == "torch":
        return SETTINGS[name]
    return [f for f in SETTINGS[name] if f != "--thread-time"] + ["--runtime", runtime]


def setting(steps: Steps, name: str, models: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """(First time) search, then profile and score one thread setting."""
    flags = flags_of(name, args.runtime)
    device = steps.out / "device.json"
    if not args.found:
        args.found = candidates(steps, device, args.candidates) or ["-"]
    found = [c for c in args.found if c != "-"]
    runs = steps.out / f"runs-{name}"
    profile(steps, [*models, *found], args.sizes, flags, runs, args)
    score = steps.out / f"score-{name}.json"
    steps.run(
        ["correlate", str(runs), "--device-model", str(device), "--format", "json"], stdout=score
    )
    document: dict[str, Any] = json.loads(score.read_text())["predictor"]
    threads = int(flags[flags.index("--threads") + 1])
    (fitted,) = [m for m in json.loads(device.read_text())["models"] if m["threads"] == threads]
    document["calibration_s"] = fitted["fit"]["seconds"]
    document["cpu"] = fitted["machine"]["name"]
    document["context"] = fitted.get("context")
    again = steps.out / f"runs-{name}-again"
    profile(steps, models, args.sizes[:1], flags, again, args)
    document["reproducibility"] = reproducibility(_runs(runs), _runs(again))
    if args.eager:
        document["eager_ratio"] = eager_ratios(_runs(runs), _runs(args.eager / f"runs-{name}"))
    return document


def eager_ratios(
    runs: dict[tuple[str, str], dict[str, Any]], eager: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, float]:
    """Per ``model input`` in both, this sweep's median latency over the eager sweep's."""
    return {
        f"{model} {size}": run["latency"]["median_s"] / eager[(model, size)]["latency"]["median_s"]
        for (model, size), run in runs.items()
        if (model, size) in eager
    }


def _runs(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The successful profile runs in `folder` by (model, input)."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        run = json.loads(path.read_text())
        if run.get("status", "ok") == "ok" and run.get("latency"):
            out[(run["model"], str(run["input"]))] = run
    return out


def _node_ops(layer: dict[str, Any]) -> dict[str, str]:
    """Each node's op in a run's layer, where the layer says (one op per node, or one op)."""
    nodes, ops = layer["nodes"], layer["ops"]
    if len(nodes) == len(ops):
        return dict(zip(nodes, ops, strict=True))
    return dict.fromkeys(nodes, ops[0]) if len(set(ops)) == 1 else {}


def _node_times(run: dict[str, Any], key: str = "node_times") -> dict[str, float]:
    """Per node, a run's median op seconds (or, `key` ``node_paced``, its paced figures)."""
    return {n: t for layer in run["layers"] for n, t in (layer.get(key) or {}).items()}


def reproducibility(
    first: dict[tuple[str, str], dict[str, Any]], again: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    """The second profile of each run scored against the first as a prediction would be: model
    MAPE (median latency), and over the ops holding >= `OP_SHARE` of the first run's op time
    the per-op MAPE, the convs' MAPE and the mean per-run Spearman of the op ranking. E.g.
    ops of 6, 3 and 1 ms measured again at 6.3, 2.9 and 1.0 ms: MAPE 2.8%, Spearman 1.0.
    ``speed_mape``: the model MAPE with each second time divided by the two runs' speed ratio
    (their paced timings' where both have speed controls, else their load probes'): how much of
    the drift between two measurements the controls or probes explain; ``op_paced_mape``: the
    per-op MAPE of the second run's paced figures against the first's, over the same ops, for
    run pairs whose profiled forwards both had controls beside them."""
    models, speeds, ops, convs, ranks, paced = [], [], [], [], [], []
    for key, a in first.items():
        b = again.get(key)
        if b is None:
            continue
        ratio = b["latency"]["median_s"] / a["latency"]["median_s"]
        models.append(abs(ratio - 1))
        speed = _pace_speed(a, b) or speed_ratio(_probes(a), _probes(b))
        speeds += [] if speed is None else [abs(ratio / speed - 1)]
        ops_of = {n: op for layer in a["layers"] for n, op in _node_ops(layer).items()}
        times_a, times_b = _node_times(a), _node_times(b)
        floor = OP_SHARE * sum(times_a.values())
        kept = [(n, t, times_b[n]) for n, t in times_a.items() if t >= floor and n in times_b]
        errors = [(n, abs(tb / ta - 1)) for n, ta, tb in kept if ta > 0]
        ops += [e for _, e in errors]
        paced_a, paced_b = _node_times(a, "node_paced"), _node_times(b, "node_paced")
        paced += [
            abs(paced_b[n] / paced_a[n] - 1) for n, *_ in kept if n in paced_a and n in paced_b
        ]
        convs += [e for n, e in errors if ops_of.get(n) == "conv"]
        if len(kept) >= 3:
            ranks.append(float(spearmanr([t for _, t, _ in kept], [t for *_, t in kept]).statistic))
    return {
        "runs": len(models),
        "model_mape": _mean(models),
        "speed_mape": _mean(speeds) if len(speeds) == len(models) else None,
        "ops": len(ops),
        "op_mape": _mean(ops),
        "op_paced_mape": _mean(paced),
        "conv_mape": _mean(convs),
        "spearman": _mean(ranks),
    }


def _pace_speed(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """How much slower run `b` ran than run `a` by their speed controls: each run's median
    over its paced figure is the control time it ran at (None where either lacks controls or
    they were taken at another thread count or clock)."""
    pace_a, pace_b = _pace(a), _pace(b)
    if pace_a is None or pace_b is None or not pace_a.controls.comparable(pace_b.controls):
        return None
    control_a, control_b = (
        r["latency"]["median_s"] / p.paced for r, p in ((a, pace_a), (b, pace_b))
    )
    return float(control_b / control_a)


def _pace(run: dict[str, Any]) -> Pace | None:
    """A run file's paced timing as a record (None in files without one)."""
    if not run.get("pace"):
        return None
    c = run["pace"]["controls"]
    controls = Controls(c["threads"], c["thread_time"], tuple(c["seconds"]), c.get("warm", False))
    return Pace(controls, run["pace"]["paced"])


def _probes(run: dict[str, Any]) -> list[LoadProbe]:
    """A run file's load probes (before and after its timing) as records."""
    return [LoadProbe(**run[k]) for k in ("load_probe", "end_probe") if run.get(k)]


def _size_key(size: str) -> str:
    """A score's input (``224x224``) as the runs' keys spell it (``[224, 224]``)."""
    return str([int(side) for side in size.split("x")])


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _context_line(context: dict[str, Any] | None) -> str:
    if context is None:
        return "- no context fit"
    names = ", ".join(dict.fromkeys(m["model"] for m in context["models"]))
    return (
        f"- context fit on {names} (none of them scored): {context['scale']:.3f} x kind time + "
        f"{1e6 * context['op_s']:.1f} us per op; leave-one-network-out "
        f"{_pct(context['loo_error'])}, within +-10% {_pct(context['loo_within_10pct'])}; "
        f"per-op factors bandwidth {context.get('bandwidth', 0.0):g}, leave-one-network-out "
        f"{_pct(context.get('op_loo_error'))} on the context ops"
    )


def _ops_lines(ops: dict[str, Any] | None) -> list[str]:
    """Per-op figures (ops >= 1% of their model's op time, timed by torch.profiler)."""
    if not ops:
        return ["- per op: no per-op times in the runs"]
    kinds = ", ".join(
        f"{kind} {_pct(mape)} ({n})" for kind, (n, mape) in sorted(ops["by_kind"].items())
    )
    return [
        f"- per op ({ops['ops']} ops >= 1% of their model): MAPE {_pct(ops['mape'])}, within "
        f"+-10% {_pct(ops['within_10pct'])}; convs ({ops['conv_ops']}) "
        f"{_pct(ops['conv_mape'])}; Spearman of the ranking {ops['spearman']:.2f}; at each "
        f"run's speed (each op's own, by the controls beside the profiled forwards, where they "
        f"were taken): MAPE {_pct(ops.get('speed_mape'))}",
        f"- per op by kind (MAPE, count): {kinds}",
    ]


def _again_line(again: dict[str, Any] | None) -> str:
    if not again or not again["runs"]:
        return "- the measurement against itself: no second profile"
    rho = "-" if again["spearman"] is None else f"{again['spearman']:.2f}"
    return (
        f"- the measurement against itself (a second profile of {again['runs']} runs at the "
        f"first size, scored against the first): models MAPE {_pct(again['model_mape'])} "
        f"({_pct(again.get('speed_mape'))} at each run's speed by its controls or probes); "
        f"per op ({again['ops']} ops) MAPE {_pct(again['op_mape'])} "
        f"({_pct(again.get('op_paced_mape'))} paced), convs {_pct(again['conv_mape'])}, "
        f"Spearman {rho}"
    )


def results_md(scores: dict[str, dict[str, Any]], log: list[str]) -> str:
    """RESULTS.md: the commands, then per setting the summary and the per-model table."""
    lines = ["# Predictor sweep: micro-benchmark calibration against measured latency", ""]
    lines += ["Commands (run by `benchmarks/sweep_predict.py`):", "", "```sh", *log, "```", ""]
    for name, s in scores.items():
        lines += [f"## {name} ({s['device']}, {s.get('cpu', '')})", ""]
        lines += [
            f"- calibration (every thread count at once): {s['calibration_s']:.0f} s; "
            f"{s['runs']} runs",
            *[f"- warning: {w}" for w in s.get("warnings", [])],
            _context_line(s.get("context")),
            f"- models: MAPE {_pct(s['mape'])}, within +-10% {_pct(s['within_10pct'])}",
            f"- leave-one-model-out with one fitted scale: MAPE {_pct(s['lomo_mape'])}, "
            f"within +-10% {_pct(s['lomo_within_10pct'])}",
            f"- at each run's speed (prediction x the run's speed over the calibration's, by their "
            f"speed controls, else their load probes): "
            f"MAPE {_pct(s.get('speed_mape'))}, within +-10% {_pct(s.get('speed_within_10pct'))}",
            f"- layers ({s['layers']}): MAPE {_pct(s['layer_mape'])}, within +-10% "
            f"{_pct(s['layer_within_10pct'])}",
            *_ops_lines(s.get("ops")),
            _again_line(s.get("reproducibility")),
            "",
            "| model | input | measured ms | predicted ms | error | LOMO ms | at run speed "
            "| / eager |",
            "|---|---|---|---|---|---|---|---|",
        ]
        ratios = s.get("eager_ratio") or {}
        for m in s["models"]:
            lomo = "-" if m["lomo_predicted_s"] is None else f"{1e3 * m['lomo_predicted_s']:.2f}"
            speed = "-" if m.get("speed_error") is None else f"{100 * m['speed_error']:+.1f}%"
            ratio = ratios.get(f"{m['model']} {_size_key(m['input'])}")
            lines.append(
                f"| {Path(m['model']).stem} | {m['input']} | {1e3 * m['measured_s']:.2f} | "
                f"{1e3 * m['predicted_s']:.2f} | {100 * m['error']:+.1f}% | {lomo} | {speed} | "
                f"{'-' if ratio is None else f'{ratio:.2f}'} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("results/predict-sweep"))
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--sizes", nargs="+", default=["224", "320"])
    parser.add_argument("--grid", default="full", choices=("full", "quick", "tiny"))
    parser.add_argument("--candidates", type=int, default=3, help="searched HarDNets to add")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--runtime", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--eager", type=Path, help="an eager sweep's --out, for ORT / eager")
    args = parser.parse_args()
    args.found = []
    args.out.mkdir(parents=True, exist_ok=True)
    steps = Steps(args.out)
    device = args.out / "device.json"
    calibrate = (
        CALIBRATE if args.runtime == "torch" else [*CALIBRATE[:3], "--runtime", "onnxruntime"]
    )
    steps.run(["calibrate", *calibrate, "--grid", args.grid, "--out", str(device)])
    scores = {name: setting(steps, name, list(args.models), args) for name in args.settings}
    (args.out / "scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    (args.out / "RESULTS.md").write_text(results_md(scores, steps.log))
    print((args.out / "RESULTS.md").read_text())


if __name__ == "__main__":
    main()
