"""Latency against its predictors: correlations with confidence intervals, fits, and a latency
model validated leave-one-model-out.

Inputs are profile runs (`ProfileRun`, from ``hda profile``). Points are whole models (median
latency against model totals) or layers (a layer key's median time against its nodes' summed
metrics; layer keys without graph nodes, pure hook overhead, are left out). Predictors:
``model_bytes`` and ``model_fused_bytes`` (the traffic model, source ``model``), ``cio``
(elements), ``macs``, and ``dram_bytes`` (measured read + write, source ``ncu``, ``nvprof``
or ``perf``) where present. Runs are grouped per device label (device, dtype, threads), never mixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from hardnet_analysis.documents.latency_model import LatencyModel
from hardnet_analysis.documents.profile_run import (
    DramBytes,
    ProfiledLayer,
    ProfiledTotals,
    ProfileRun,
)

PREDICTORS = ("model_bytes", "model_fused_bytes", "cio", "macs", "dram_bytes")


@dataclass(frozen=True)
class Point:
    """One latency observation (seconds) with its predictor values and their sources."""

    model: str
    label: str
    device: str
    latency: float
    features: dict[str, float]
    sources: dict[str, str] = field(default_factory=dict)


def device_label(run: ProfileRun) -> str:
    """``cpu Intel(R) Xeon(R) Processor fp32 2 threads``: what a latency is comparable within
    (``nhwc`` added for channels-last runs: the layout changes every kernel; the runtime first
    where it is not eager PyTorch, ``onnxruntime cpu ...``: it runs other kernels; ``default
    malloc`` last for runs timed with the allocator's page faults, ``--allocator default``)."""
    threads = f" {run.threads} threads" if run.device.used == "cpu" else ""
    layout = " nhwc" if run.channels_last else ""
    runtime = f"{run.runtime_name} " if run.runtime_name else ""
    malloc = " default malloc" if run.settings.allocator == "default" else ""
    return f"{runtime}{run.device.used} {run.device.name} {run.dtype}{layout}{threads}{malloc}"


def _features(
    values: ProfiledTotals | ProfiledLayer, dram: DramBytes | None
) -> tuple[dict[str, float], dict[str, str]]:
    names = (*PREDICTORS[:4], "params")
    feats = {k: float(getattr(values, k)) for k in names}
    sources = {k: "model" for k in feats}
    if dram is not None:
        feats["dram_bytes"], sources["dram_bytes"] = dram.total, dram.source
    return feats, sources


def model_points(runs: Iterable[ProfileRun]) -> list[Point]:
    """One point per run: median latency against the run's totals."""
    points = []
    for run in runs:
        feats, sources = _features(run.totals, run.dram)
        feats["act_bytes"] = float(run.totals.act_bytes)
        label = f"{run.model} @ {run.size}"
        points.append(
            Point(run.model, label, device_label(run), run.latency.median_s, feats, sources)
        )
    return points


def layer_points(runs: Iterable[ProfileRun]) -> list[Point]:
    """One point per layer key with graph nodes, of every run."""
    points = []
    for run in runs:
        for layer in run.layers:
            if not layer.nodes:
                continue
            feats, sources = _features(layer, layer.dram)
            label = f"{run.model} @ {run.size}: {layer.name}"
            points.append(Point(run.model, label, device_label(run), layer.time_s, feats, sources))
    return points


def spearman_ci(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Fisher-z interval for Spearman's rho with the Bonett-Wright standard error
    sqrt((1 + rho^2 / 2) / (n - 3)). rho = 0.9, n = 12: about (0.66, 0.97)."""
    if n <= 3 or abs(rho) >= 1:
        return (rho, rho)
    z = math.atanh(rho)
    se = math.sqrt((1 + rho**2 / 2) / (n - 3))
    q = float(stats.norm.ppf(0.5 + level / 2))
    return (math.tanh(z - q * se), math.tanh(z + q * se))


@dataclass(frozen=True)
class Correlation:
    """Latency against one predictor over n points: Pearson r and Spearman rho with 95%
    intervals, and the least-squares line latency = slope * x + intercept (seconds)."""

    level: str
    device: str
    predictor: str
    source: str
    n: int
    pearson: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    slope: float
    intercept: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def correlate(points: Sequence[Point], predictor: str, level: str) -> Correlation | None:
    """Correlation of latency with `predictor` over `points` (one device); None with fewer
    than 4 points carrying the predictor or a constant predictor."""
    have = [p for p in points if predictor in p.features]
    x = np.array([p.features[predictor] for p in have])
    y = np.array([p.latency for p in have])
    if len(have) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    pearson = stats.pearsonr(x, y)
    ci = pearson.confidence_interval(0.95)
    rho = float(stats.spearmanr(x, y).statistic)
    fit = stats.linregress(x, y)
    return Correlation(
        level,
        have[0].device,
        predictor,
        have[0].sources[predictor],
        len(have),
        float(pearson.statistic),
        (float(ci.low), float(ci.high)),
        rho,
        spearman_ci(rho, len(have)),
        float(fit.slope),
        float(fit.intercept),
    )


@dataclass(frozen=True)
class PowerFit:
    """latency = 10**intercept * x**exponent (seconds): the least-squares line of log10 latency
    on log10 `predictor` over the n points with both positive, so it is straight on log-log
    axes; `r_log` is Pearson r of the logs."""

    level: str
    device: str
    predictor: str
    n: int
    exponent: float
    intercept: float
    r_log: float

    def latency(self, x: float) -> float:
        """The fitted latency (s) at predictor value `x` (> 0)."""
        return float(10**self.intercept * x**self.exponent)


def power_fit(points: Sequence[Point], predictor: str, level: str) -> PowerFit | None:
    """`PowerFit` of latency on `predictor` over `points` (one device); None with fewer than 4
    positive points or a constant predictor, as `correlate`."""
    have = [p for p in points if p.features.get(predictor, 0) > 0 and p.latency > 0]
    x = np.log10([p.features[predictor] for p in have])
    y = np.log10([p.latency for p in have])
    if len(have) < 4 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    fit = stats.linregress(x, y)
    n = len(have)
    slope, intercept, r = float(fit.slope), float(fit.intercept), float(fit.rvalue)
    return PowerFit(level, have[0].device, predictor, n, slope, intercept, r)


def by_device(points: Iterable[Point]) -> dict[str, list[Point]]:
    """`points` grouped by device label, in first-seen order: latencies are compared only
    within a group."""
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(p.device, []).append(p)
    return groups


def correlations(runs: Sequence[ProfileRun]) -> list[Correlation]:
    """Every (level, device, predictor) correlation the runs support."""
    out = []
    for level, points in (("model", model_points(runs)), ("layer", layer_points(runs))):
        for group in by_device(points).values():
            for predictor in PREDICTORS:
                c = correlate(group, predictor, level)
                if c is not None:
                    out.append(c)
    return out


def best(found: Sequence[Correlation], level: str, device: str) -> Correlation | None:
    """The predictor with the highest Pearson r at `level` on `device`."""
    rows = [c for c in found if c.level == level and c.device == device]
    return max(rows, key=lambda c: c.pearson, default=None)


def _nnls(points: Sequence[Point], features: Sequence[str]) -> tuple[np.ndarray, float]:
    """Coefficients (>= 0) and intercept (>= 0) of latency on `features`; columns are scaled
    to a maximum of 1 for conditioning and the coefficients scaled back."""
    a = np.array([[p.features[f] for f in features] + [1.0] for p in points])
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    solution, _ = optimize.nnls(a / scale, np.array([p.latency for p in points]))
    solution = solution / scale
    return solution[:-1], float(solution[-1])


def _mean_rel_error(points: Sequence[Point], predict: Any) -> float:
    return float(np.mean([abs(predict(p) - p.latency) / p.latency for p in points]))


def fit_latency_model(points: Sequence[Point], features: Sequence[str]) -> LatencyModel | None:
    """Fit latency on `features` over whole-model `points` of one device (None with fewer
    points than features + 2)."""
    usable = [p for p in points if all(f in p.features for f in features)]
    if len(usable) < len(features) + 2:
        return None
    coef, intercept = _nnls(usable, features)

    def predictor(c: np.ndarray, b: float) -> Any:
        return lambda p: (
            b + float(sum(ci * p.features[f] for ci, f in zip(c, features, strict=True)))
        )

    train = _mean_rel_error(usable, predictor(coef, intercept))
    models = sorted({p.model for p in usable})
    errors: list[float] = []
    for left_out in models:
        rest = [p for p in usable if p.model != left_out]
        if len(rest) < len(features) + 1:
            continue
        c, b = _nnls(rest, features)
        errors.extend(
            abs(predictor(c, b)(p) - p.latency) / p.latency for p in usable if p.model == left_out
        )
    lomo = float(np.mean(errors)) if len(models) > 1 and errors else None
    return LatencyModel(
        device=usable[0].device,
        features=tuple(features),
        coef=tuple(float(c) for c in coef),
        intercept=intercept,
        n=len(usable),
        train_error=train,
        lomo_error=lomo,
    )


FEATURE_SETS = (("macs", "model_bytes"), ("macs", "cio"), ("macs",), ("cio",), ("model_bytes",))


def latency_models(runs: Sequence[ProfileRun]) -> list[LatencyModel]:
    """Every feature set of `FEATURE_SETS` (plus macs + dram_bytes where measured) fitted per
    device."""
    out = []
    for group in by_device(model_points(runs)).values():
        sets = list(FEATURE_SETS)
        if all("dram_bytes" in p.features for p in group):
            sets.append(("macs", "dram_bytes"))
        for features in sets:
            fitted = fit_latency_model(group, features)
            if fitted is not None:
                out.append(fitted)
    return out


#: A run whose latency is this many times above or below what the other runs of its device
#: predict is an outlier (a cold run timed with --warmup 0 on a CPU is about 2x).
OUTLIER_FACTOR = 2.0


@dataclass(frozen=True)
class Outlier:
    """A run `factor` times slower (> 1) or faster (< 1) than the power fit of latency on
    modeled bytes over the other runs of its device predicts."""

    run: ProfileRun
    factor: float

    @property
    def off(self) -> float:
        """How many times off, either way (>= 1)."""
        return max(self.factor, 1 / self.factor)


def outliers(runs: Sequence[ProfileRun]) -> list[Outlier]:
    """Per device, the runs off the others' log-log line of latency on ``model_bytes`` by
    `OUTLIER_FACTOR` or more: the worst first, each set aside before the next is sought, while
    4 runs or more remain (3 to fit, 1 to judge)."""
    groups: dict[str, list[ProfileRun]] = {}
    for run in runs:
        if run.latency.median_s > 0 and run.totals.model_bytes > 0:
            groups.setdefault(device_label(run), []).append(run)
    found: list[Outlier] = []
    for group in groups.values():
        while len(group) >= 4 and (worst := _worst(group)).off >= OUTLIER_FACTOR:
            found.append(worst)
            group = [r for r in group if r is not worst.run]
    return found


def _worst(group: Sequence[ProfileRun]) -> Outlier:
    """The run of `group` farthest off the line fitted to the others (leave one out)."""
    x = np.log10([r.totals.model_bytes for r in group])
    y = np.log10([r.latency.median_s for r in group])
    found = []
    for i, run in enumerate(group):
        rest = np.arange(len(group)) != i
        slope, intercept = 0.0, float(np.mean(y[rest]))
        if np.ptp(x[rest]) > 0:
            slope, intercept = (float(v) for v in np.polyfit(x[rest], y[rest], 1))
        found.append(Outlier(run, float(10 ** (y[i] - slope * x[i] - intercept))))
    return max(found, key=lambda o: o.off)
