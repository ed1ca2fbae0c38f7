"""The device-model predictor against profile runs: predicted vs measured, per model and per
layer, with mean absolute percentage error (MAPE) and the share within +-10%.

Each run's model is analysed at the run's input, batch and dtype (its saved definition when it
has one, else its name) and predicted with the device model; a profiled layer key's prediction
is the sum over the graph nodes it covers. The device model is fitted on micro-benchmarks and on
the whole networks of its context fit (``DeviceModel.context``); `in_fit` names the scored
models that are among those networks, whose scores are then in sample. The leave-one-model-out
figures score a variant that also fits one whole-model scale factor: each model is predicted
with the median measured/predicted ratio of the *other* models' runs. E.g. runs measured 100
and 200 ms, predicted 90 and 220 ms: MAPE (10% + 10%) / 2 = 10%, within +-10%: both (100%).
The figures *at run speed* score each prediction times the run's speed against the
calibration's (`pace_ratio` of its paced timing where both have speed controls, else
`speed_ratio` of their load probes): a shared machine's speed drifts between a calibration and
a run (here by up to 21% at 2 threads), which no model of the network can know. Per op, the
controls beside the profiled forwards give each op its own speed.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hardnet_analysis.analysis import analyze
from hardnet_analysis.documents.device_model import DeviceModel, DeviceModels
from hardnet_analysis.documents.machine import (
    DRIFT,
    Controls,
    Pace,
    busy_warning,
    pace_ratio,
    speed_ratio,
)
from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.serialize import from_dict
from hardnet_analysis.metrics.correlate import by_device, model_points
from hardnet_analysis.metrics.predict import Prediction, predict


@dataclass(frozen=True)
class ModelScore:
    """One run: measured median and predicted seconds, and the leave-one-model-out scaled
    prediction (None with a single model)."""

    model: str
    input: str
    measured_s: float
    predicted_s: float
    lomo_predicted_s: float | None
    #: How much slower the machine ran during the run than during the calibration, by their
    #: speed controls or load probes (`_speed`; None where either lacks both).
    speed: float | None = None

    @property
    def error(self) -> float:
        """Signed relative error of the prediction (+0.05: 5% slow)."""
        return self.predicted_s / self.measured_s - 1

    @property
    def speed_error(self) -> float | None:
        """Signed relative error of the prediction at the run's speed (`speed` x predicted)."""
        return None if self.speed is None else self.speed * self.predicted_s / self.measured_s - 1


#: Ops scored one by one: those holding at least this share of their model's summed op time.
OP_SHARE = 0.01


@dataclass(frozen=True)
class OpPoint:
    """One op scored: its run (model and input, ``224x224``), graph node, kind, predicted
    seconds without the context's per-op cost, and the profiler's measured seconds."""

    model: str
    input: str
    node: str
    kind: str
    predicted_s: float
    measured_s: float


@dataclass(frozen=True)
class OpScore:
    """Predicted vs measured per op, where runs hold per-op times (``torch.profiler``): over the
    ops holding >= `OP_SHARE` of their model's op time, the count, MAPE and share within +-10%,
    the same for convolutions alone, per kind (count, MAPE), and the Spearman correlation of
    predicted against measured op times, per run, averaged over runs (1.0: the predictor ranks
    a model's slow ops exactly as measured)."""

    ops: int
    mape: float
    within_10pct: float
    conv_ops: int
    conv_mape: float
    spearman: float
    by_kind: dict[str, tuple[int, float]]
    #: Every op scored, for plots of predicted against measured per op.
    points: tuple[OpPoint, ...] = ()
    #: The MAPE with each op's prediction times its own speed where its run has controls
    #: beside the profiled forwards (`ProfiledLayer.node_paced`), else its run's speed
    #: (`ModelScore.speed`, from the whole-model timing just before the profiled forwards);
    #: None unless every scored op has one.
    speed_mape: float | None = None


@dataclass(frozen=True)
class PredictorScore:
    """Predicted vs measured over runs of one device: per model (MAPE, share within +-10%, and
    the same leave-one-model-out with a fitted scale), per layer, and the rows."""

    device: str
    runs: int
    mape: float
    within_10pct: float
    lomo_mape: float | None
    lomo_within_10pct: float | None
    layers: int
    layer_mape: float
    layer_within_10pct: float
    models: tuple[ModelScore, ...]
    #: Scored models that the device model's context fit was fitted on (in-sample scores).
    in_fit: tuple[str, ...] = ()
    #: Per-op figures, where the runs hold per-op times (None for runs timed by hooks).
    ops: OpScore | None = None
    #: Why the figures may mean less than they say (`mismatches`), one line each.
    warnings: tuple[str, ...] = ()
    #: MAPE and share within +-10% of the predictions at each run's speed (`ModelScore.speed`):
    #: what the predictor gets right once the machine's drift between calibration and run is
    #: taken out. None unless every run and the calibration hold load probes.
    speed_mape: float | None = None
    speed_within_10pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        rows = [{**asdict(m), "error": m.error, "speed_error": m.speed_error} for m in self.models]
        return {**{k: v for k, v in asdict(self).items() if k != "models"}, "models": rows}


def _target(run: ProfileRun) -> Any:
    if run.definition is None:
        return run.model
    return from_dict(dict(run.definition), f"definition in the run of {run.model}")


def predict_run(run: ProfileRun, device: DeviceModel) -> Prediction:
    """The device model's prediction for the model of `run` at its input, batch and dtype."""
    return predict(analyze(_target(run), run.input, run.batch, run.dtype), device)


def _shares(errors: Sequence[float]) -> tuple[float, float]:
    """(mean |error|, share with |error| <= 10%)."""
    absolute = [abs(e) for e in errors]
    return statistics.fmean(absolute), sum(e <= 0.1 for e in absolute) / len(absolute)


def _lomo(rows: list[tuple[ProfileRun, float]]) -> list[float | None]:
    """Each run's prediction scaled by the median measured/predicted of other models' runs."""
    out: list[float | None] = []
    for run, predicted in rows:
        others = [r.latency.median_s / p for r, p in rows if r.model != run.model]
        out.append(predicted * statistics.median(others) if others else None)
    return out


def score(runs: Sequence[ProfileRun], device: DeviceModel) -> PredictorScore:
    """Predicted vs measured for `runs` (one device) with `device`."""
    predictions = [predict_run(run, device) for run in runs]
    rows = [(run, p.latency_s) for run, p in zip(runs, predictions, strict=True)]
    lomo = _lomo(rows)
    models = tuple(
        ModelScore(run.model, run.size, run.latency.median_s, p, scaled, _speed(run, device))
        for (run, p), scaled in zip(rows, lomo, strict=True)
    )
    mape, within = _shares([m.error for m in models])
    at_speed = [m.speed_error for m in models]
    speed_mape, speed_within = (
        _shares([e for e in at_speed if e is not None])
        if all(e is not None for e in at_speed)
        else (None, None)
    )
    scaled = [m.lomo_predicted_s / m.measured_s - 1 for m in models if m.lomo_predicted_s]
    lomo_mape, lomo_within = _shares(scaled) if scaled else (None, None)
    layer_errors = []
    for run, prediction in zip(runs, predictions, strict=True):
        by_node = prediction.by_name()
        for layer in run.layers:
            nodes = [by_node[n] for n in layer.nodes if n in by_node]
            if nodes and layer.time_s > 0:
                layer_errors.append(sum(n.time_s for n in nodes) / layer.time_s - 1)
    layer_mape, layer_within = _shares(layer_errors) if layer_errors else (0.0, 0.0)
    label = f"{device.device} {device.machine.name} {device.threads} threads"
    speeds = [m.speed for m in models]
    gap = device.context.op_s if device.context else 0.0
    ops = op_score(runs, predictions, gap, speeds, device.controls)
    fitted = {m.model for m in device.context.models} if device.context else set()
    return PredictorScore(
        label,
        len(models),
        mape,
        within,
        lomo_mape,
        lomo_within,
        len(layer_errors),
        layer_mape,
        layer_within,
        models,
        tuple(sorted({run.model for run in runs} & fitted)),
        ops,
        tuple(mismatches(runs, device)),
        speed_mape,
        speed_within,
    )


def _speed(run: ProfileRun, device: DeviceModel) -> float | None:
    """How much slower the machine ran during the run's timing than during the calibration:
    `pace_ratio` of the run's paced timing against the calibration's controls where both have
    them, else `speed_ratio` of their load probes (None: neither)."""
    paced = pace_ratio(device.controls, run.latency.median_s, run.pace)
    return paced if paced is not None else speed_ratio(device.probes(), run.probes())


def mismatches(runs: Sequence[ProfileRun], device: DeviceModel) -> list[str]:
    """What sets the runs apart from the calibration, one line each: another device, thread
    count or clock (a 1-thread device model scored against 2-thread runs once gave 89% MAPE
    without a word), runs taken on a busy machine, or a machine that ran at another speed than
    during the calibration (`documents.machine`)."""
    out = []
    for what, seen, calibrated in (
        ("device", {r.device.used for r in runs}, device.device),
        ("clock", {r.settings.clock for r in runs}, device.clock),
        ("threads", {r.threads for r in runs}, device.threads),
    ):
        other = sorted(str(v) for v in seen if v != calibrated)
        if other and not (what == "threads" and device.threads == 0):
            out.append(
                f"runs at {what} {', '.join(other)}, the device model at {calibrated}: its "
                f"predictions are for {what} {calibrated}"
            )
    busy = [r for r in runs if any(busy_warning(p) for p in r.probes())]
    if busy:
        out.append(f"{len(busy)} of {len(runs)} runs were taken while the machine was busy")
    # against every quiet probe of the calibration, as the figures at run speed are
    found = (_speed(r, device) for r in runs)
    speeds = [s for s in found if s is not None]
    change = statistics.median(speeds) - 1 if speeds else 0.0
    if abs(change) > DRIFT:
        out.append(
            f"the runs were taken while the machine ran {abs(change):.0%} "
            f"{'slower' if change > 0 else 'faster'} than during the calibration"
        )
    return out


def op_score(
    runs: Sequence[ProfileRun],
    predictions: Sequence[Prediction],
    gap_s: float = 0.0,
    speeds: Sequence[float | None] | None = None,
    reference: Controls | None = None,
) -> OpScore | None:
    """`OpScore` of `predictions` against the per-op times of `runs` (None when no run has
    them), and the MAPE at run speed: each op's prediction times its own speed (`_op_speeds`:
    its paced figure against the calibration's controls, `reference`) where the run has
    controls beside its profiled forwards, else its run's speed (`speeds`, as
    `ModelScore.speed`). The profiler times an op's own span, without the Python between ops
    that the context fit adds to each op (`gap_s`, ``ContextFit.op_s``), so that is taken off
    each prediction first. E.g. a run whose ops measured 6, 3 and 1 ms (all >= 1%) predicted 5,
    3.3, 1 ms: errors -17%, +10%, 0%, MAPE 9.0%, Spearman 1.0; at a speed of 1.2 (the run
    ran 20% slower than the calibration), 6, 3.96 and 1.2 ms: MAPE 17.3%."""
    from scipy.stats import spearmanr

    errors: list[tuple[str, str, float]] = []  # (op, kind, relative error)
    at_speed: list[float | None] = []
    points: list[OpPoint] = []
    ranks: list[float] = []
    for run, prediction, speed in zip(runs, predictions, speeds or [None] * len(runs), strict=True):
        measured = {n: t for layer in run.layers for n, t in (layer.node_times or {}).items()}
        if not measured:
            continue
        floor = OP_SHARE * sum(measured.values())
        by_node = prediction.by_name()
        kept = [
            (by_node[n], by_node[n].time_s - (0.0 if by_node[n].kind == "view" else gap_s), t)
            for n, t in measured.items()
            if t >= floor and n in by_node and t > 0
        ]
        errors += [(p.op, p.kind, own / t - 1) for p, own, t in kept]
        own_speed = _op_speeds(run, measured, reference)
        for p, own, t in kept:
            s = own_speed.get(p.name, speed)
            at_speed.append(None if s is None else s * own / t - 1)
        points += [OpPoint(run.model, run.size, p.name, p.kind, own, t) for p, own, t in kept]
        if len(kept) >= 3:
            rho = spearmanr([own for _, own, _ in kept], [t for _, _, t in kept]).statistic
            ranks.append(float(rho))
    if not errors:
        return None
    mape, within = _shares([e for _, _, e in errors])
    convs = [e for op, _, e in errors if op == "conv"]
    kinds: dict[str, list[float]] = {}
    for _, kind, e in errors:
        kinds.setdefault(kind, []).append(e)
    return OpScore(
        len(errors),
        mape,
        within,
        len(convs),
        _shares(convs)[0] if convs else 0.0,
        statistics.fmean(ranks) if ranks else 0.0,
        {k: (len(v), _shares(v)[0]) for k, v in sorted(kinds.items())},
        tuple(points),
        _shares([e for e in at_speed if e is not None])[0] if None not in at_speed else None,
    )


def _op_speeds(
    run: ProfileRun, measured: Mapping[str, float], reference: Controls | None
) -> dict[str, float]:
    """Per node of `run` with a paced figure (`ProfiledLayer.node_paced`), how much slower it
    ran than at the speed of the `reference` controls (`pace_ratio` of its median seconds in
    `measured` and that figure, against the controls beside the profiled forwards); empty
    where the run or the reference lacks controls, they are not comparable, or the controls
    ran on fewer threads than the run (ONNX Runtime's one-thread controls beside its 2-thread
    runs: they see one core of two). On a 2-core AMD EPYC, ORT's per-op MAPE at 2 threads was
    16.2% by each op's own speed so, 14.1% by its run's and 13.0% raw; at one thread 10.8%,
    11.8% and 19.1%, and in eager PyTorch 11.8%, 12.8%, 17.9% (1 thread) and 15.8%, 19.4%,
    27.3% (2 threads)."""
    controls = run.ops.controls if run.ops else None
    if controls is None or reference is None or controls.threads != run.threads:
        return {}
    out = {}
    for layer in run.layers:
        for node, figure in (layer.node_paced or {}).items():
            if node in measured:
                ratio = pace_ratio(reference, measured[node], Pace(controls, figure))
                if ratio is not None:
                    out[node] = ratio
    return out


def score_file(runs: Sequence[ProfileRun], path: str | Path) -> PredictorScore:
    """`score` on `runs` of the model in device model file `path` for their thread count (or
    the nearest it holds, which `mismatches` then names). The runs must be there and come from
    one device, one thread count and the model's runtime (a UsageError otherwise: an ONNX
    Runtime model scored against eager runs would call ORT's fusions an error)."""
    if not runs:
        raise UsageError("--device-model compares predictions with profile runs; give some")
    counts = sorted({run.threads for run in runs})
    if len(counts) > 1:
        raise UsageError(
            f"--device-model scores runs of one thread count; these have {counts}: score each "
            "count's runs on their own"
        )
    if len(by_device(model_points(runs))) > 1:
        raise UsageError("--device-model scores the runs of one device; give those runs only")
    model = DeviceModels.read(path).closest(counts[0])
    other = sorted({run.runtime_name or "torch" for run in runs} - {model.runtime})
    if other:
        raise UsageError(
            f"the device model predicts runtime {model.runtime}, these runs are of "
            f"{', '.join(other)}: score it against runs of its runtime (hda profile --runtime "
            f"{model.runtime})"
        )
    return score(runs, model)
