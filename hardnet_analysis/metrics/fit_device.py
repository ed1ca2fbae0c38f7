"""Fitting the device model (``documents.device_model``) to micro-benchmark timings.

Per kind and per candidate cache capacity, two forms of ``t = overhead + combine(terms)`` are
fitted to minimise relative error: ``sum`` by non-negative least squares on rows scaled by
1 / t (exact and fast), ``max`` (a roofline with overhead) by least squares on the logarithms of
the coefficients, started from the sum fit. Each form is scored leave-one-out (refit without a
benchmark, predict it); a kind keeps the form with the lower leave-one-out mean |relative error|
and the device keeps the cache capacity whose kinds score best overall.

A benchmark's DRAM bytes are those of its loop in steady state (`steady_dram`): each call
reads its inputs and weights (one copy of a rotated pool) and writes its output into one of
the blocks its kept outputs rotate through; when the pool and those blocks together span
more than the capacity, an LRU cache cycling through more than itself hits nothing, so every
byte the op reads comes from DRAM and every byte it writes goes back there; otherwise none
does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import optimize

from hardnet_analysis.documents.context_fit import ContextFit, ContextModel, KindShare, OpSample
from hardnet_analysis.documents.device_model import (
    CacheChoice,
    DeviceModel,
    Form,
    KindModel,
    Sample,
    padded_work,
)
from hardnet_analysis.metrics.analysis import Analysis
from hardnet_analysis.metrics.conv_paths import ConvPaths
from hardnet_analysis.metrics.op_kinds import KINDS
from hardnet_analysis.metrics.predict import (
    LayerFeatures,
    LayerPrediction,
    as_run,
    layer_features,
)

Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Measurement:
    """One micro-benchmark as timed: its kind, label, the traced graph of the module it ran, the
    bytes its rotated pool of inputs and weights spans, its median seconds per call, and the
    bytes its calls' outputs rotate through (`output_span`: the outputs kept alive plus the
    one being written, each call's written to the block the oldest freed). `paced`: where a
    speed control was taken beside each sample (``profiler.pace``), the median of the
    samples' seconds per call over their controls' seconds (a pure number; None: not paced).
    A calibration fits ``paced`` x its median control (``profiler.calibrate.at_speed``)."""

    kind: str
    label: str
    analysis: Analysis
    pool_bytes: int
    time_s: float
    output_span: int
    paced: float | None = None

    @property
    def footprint(self) -> int:
        """Bytes the benchmark's loop cycles through: its pool and its outputs' blocks."""
        return self.pool_bytes + self.output_span


def steady_dram(f: LayerFeatures, footprint: int, capacity: int) -> LayerFeatures:
    """`f`, an op repeated in a loop that cycles through `footprint` bytes, with the DRAM bytes
    of one call in steady state at cache `capacity`: all its bytes when the loop spans more
    than the cache, none otherwise. A ReLU over 24 x 224 x 224 fp32 (4.8 MB in, 4.8 MB out)
    whose outputs rotate through three blocks spans 19.3 MB: all 9.6 MB from and to DRAM at
    8 MiB; 64 x 56 x 56 (0.8 MB each way, four blocks: 4 MB) none."""
    return replace(f, dram_bytes=f.bytes if footprint > capacity else 0)


def _rows(m: Measurement, capacity: int) -> list[LayerFeatures]:
    """The features of `m`'s nodes of its kind (all nodes when none is) at cache `capacity`,
    with the DRAM bytes of its loop in steady state (`steady_dram`)."""
    rows = layer_features(m.analysis, capacity, warm=True, flush_outputs=False)
    rows = [steady_dram(f, m.footprint, capacity) for f in rows]
    if m.kind.startswith("conv"):  # its conv as the kernel it ran (`ConvPaths.benchmark_kind`)
        rows = [as_run(m.analysis, f, m.kind) if f.kind.startswith("conv") else f for f in rows]
    return [f for f in rows if f.kind == m.kind] or rows


def _summed(rows: list[LayerFeatures], blocks: tuple[int, int]) -> tuple[int, float, float, float]:
    return (
        sum(f.macs for f in rows),
        float(sum(padded_work(f.work, f.channels, *blocks) for f in rows)),
        float(sum(f.dram_bytes for f in rows)),
        float(sum(f.bytes for f in rows)),
    )


def _design(x: Matrix) -> Matrix:
    """Columns: 1 (overhead), work, DRAM bytes, bytes."""
    return np.column_stack([np.ones(len(x)), x])


def _nnls_relative(x: Matrix, t: Matrix) -> Matrix:
    """Non-negative coefficients c minimising the sum of ((x @ c - t) / t)^2 (columns scaled to
    one so that a column of bytes and one of ones weigh alike in the solver)."""
    a = x / t[:, None]
    scale = np.abs(a).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = optimize.nnls(a / scale, np.ones(len(t)))
    return np.asarray(coef / scale, dtype=np.float64)


def _fit_sum(x: Matrix, t: Matrix) -> Matrix:
    return _nnls_relative(_design(x), t)


def _predict(coef: Matrix, x: Matrix, form: Form) -> Matrix:
    terms = x * coef[1:]
    body = terms.max(axis=1) if form == "max" else terms.sum(axis=1)
    return np.asarray(coef[0] + body, dtype=np.float64)


def _envelope(x: Matrix, t: Matrix) -> Matrix:
    """A roofline start: each term's coefficient the tightest bound min(t / x) over the
    benchmarks that use it (the ones it bounds sit on it), the overhead half the fastest."""
    with np.errstate(divide="ignore"):
        ratios = np.where(x > 0, t[:, None] / np.where(x > 0, x, 1.0), np.inf)
    bounds = ratios.min(axis=0)
    return np.concatenate([[t.min() / 2], np.where(np.isfinite(bounds), bounds, 0.0)])


def _max_jacobian(coef: Matrix, x: Matrix, t: Matrix) -> Matrix:
    """d (relative residual) / d log-coefficient of the max form at `coef`, one column per
    coefficient: the overhead's c0 / t, and each term's x c / t on the benchmarks it bounds
    (the max's argument), 0 elsewhere."""
    terms = x * coef[1:]
    bound = np.zeros_like(terms)
    bound[np.arange(len(t)), terms.argmax(axis=1)] = 1.0
    d = np.column_stack([np.full(len(t), coef[0]), terms * bound]) / t[:, None]
    return np.asarray(d, dtype=np.float64)


#: Share of the fastest benchmark's time below which a max-form term at its largest feature
#: value counts as 0.
NEGLIGIBLE = 1e-6


def _fit_max(x: Matrix, t: Matrix, start: Matrix | None = None) -> Matrix:
    """The max form: log-coefficients of the overhead and of every feature that is ever
    non-zero (the others stay 0), from two starts (the sum fit, zeros lifted to a small share,
    and the roofline envelope; the better fit is kept), or from `start` alone (a fit of nearly
    the same benchmarks: leave-one-out refits start from the full fit, 10x faster)."""
    active = np.concatenate([[True], x.max(axis=0) > 0])
    typical = np.concatenate([[t.min()], t.max() / np.maximum(x.max(axis=0), 1e-30)])

    def full(theta: Matrix) -> Matrix:
        coef = np.zeros(len(active))
        coef[active] = np.exp(theta)
        return coef

    def residual(theta: Matrix) -> Matrix:
        return _predict(full(theta), x, "max") / t - 1.0

    def jacobian(theta: Matrix) -> Matrix:
        return _max_jacobian(full(theta), x, t)[:, active]

    best = None
    starts = (_fit_sum(x, t), _envelope(x, t)) if start is None else (start,)
    for first in starts:
        lifted = np.where(first > 0, first, typical * 1e-2)
        found = optimize.least_squares(
            residual, np.log(lifted[active]), jac=jacobian, method="trf", max_nfev=300
        )
        if best is None or found.cost < best.cost:
            best = found
    assert best is not None
    coef = full(best.x)
    # A term that the fit pushed to 1e-28 s per unit binds no benchmark and means "never":
    # 0, as a term that was never non-zero, not a rate of 1e+285 per second in the tables.
    negligible = coef[1:] * x.max(axis=0) < NEGLIGIBLE * t.min()
    coef[1:][negligible] = 0.0
    return coef


FITS = {"sum": _fit_sum, "max": _fit_max}


def _errors(coef: Matrix, x: Matrix, t: Matrix, form: Form) -> Matrix:
    return np.asarray(np.abs(_predict(coef, x, form) - t) / t, dtype=np.float64)


#: Leverage above which a max-form benchmark's leave-one-out error comes from a refit: the
#: one-step estimate r / (1 - h) is exact for a linear fit and drifts as h nears 1.
LEVERAGE_REFIT = 0.2


def _leverage(coef: Matrix, x: Matrix, t: Matrix) -> Matrix:
    """Each benchmark's leverage h (the hat matrix's diagonal, J (J'J)^+ J') in the max-form
    fit `coef`, J the Jacobian in the log-coefficients of the terms it uses: between 0 and 1,
    summing to their number (the rank); 1 / n each for an overhead-only fit of n equal times."""
    jac = _max_jacobian(coef, x, t)[:, np.concatenate([[True], coef[1:] > 0])]
    return np.asarray(np.einsum("ij,jk,ik->i", jac, np.linalg.pinv(jac.T @ jac), jac))


def _loo(x: Matrix, t: Matrix, form: Form) -> Matrix:
    """Each benchmark's |relative error| when the others fit the form. The sum form refits
    (non-negative least squares: fast); the max form takes the one-step estimate
    |r / (1 - h)| from its full fit (residual r, leverage `_leverage`) and refits, from the
    full fit, only where h > `LEVERAGE_REFIT` (about 2 benchmarks of 40). On a full grid timed
    on a 2-core AMD EPYC, every kind's mean was within 0.0007 of the refits' and the same forms,
    blocks and capacity were chosen (but for a tie: views, 0.0135 either form), and the fit
    took 2.0 s instead of 16.1 s."""
    if len(t) < 3:
        return _errors(FITS[form](x, t), x, t, form)
    if form == "sum":
        out = np.empty(len(t))
        for i in range(len(t)):
            keep = np.arange(len(t)) != i
            out[i] = _errors(_fit_sum(x[keep], t[keep]), x[i : i + 1], t[i : i + 1], form)[0]
        return out
    full = _fit_max(x, t)
    residual = _predict(full, x, "max") / t - 1.0
    h = _leverage(full, x, t)
    out = np.abs(residual / (1.0 - np.minimum(h, LEVERAGE_REFIT)))
    for i in np.flatnonzero(h > LEVERAGE_REFIT).tolist():
        keep = np.arange(len(t)) != i
        out[i] = _errors(_fit_max(x[keep], t[keep], full), x[i : i + 1], t[i : i + 1], "max")[0]
    return out


@dataclass(frozen=True)
class KindFit:
    """A kind's chosen model and its per-benchmark leave-one-out errors."""

    model: KindModel
    loo: Matrix


def fit_kind(
    kind: str, x: Matrix, t: Matrix, blocks: tuple[int, int] = (1, 1), per_group: bool = False
) -> KindFit:
    """Both forms fitted and scored leave-one-out; the better one kept (ties: max). `x` holds
    the work with channels padded to `blocks` (input, output); with `per_group`, `x` and `t`
    are per group (t = groups x overhead + terms is t / groups = overhead + terms / groups,
    each term linear in its feature, with the same relative errors)."""
    loo = {form: _loo(x, t, form) for form in ("max", "sum")}
    form: Form = "max" if loo["max"].mean() <= loo["sum"].mean() else "sum"
    coef = FITS[form](x, t)
    overhead, flop, dram, cache = (float(c) for c in coef)
    model = KindModel(
        kind,
        form,
        overhead,
        flop,
        dram,
        cache,
        n=len(t),
        train_error=float(_errors(coef, x, t, form).mean()),
        loo_max=float(loo["max"].mean()),
        loo_sum=float(loo["sum"].mean()),
        channel_block=blocks[0],
        overhead_per_group=per_group,
        out_block=blocks[1],
    )
    return KindFit(model, loo[form])


@dataclass(frozen=True)
class DeviceFit:
    """The fit at the chosen capacity: kinds, samples with their predictions, the capacities
    tried, and every benchmark's leave-one-out error."""

    cache_bytes: int
    kinds: tuple[KindModel, ...]
    samples: tuple[Sample, ...]
    choices: tuple[CacheChoice, ...]
    loo: Matrix


#: Kinds of convs with groups, whose overhead is tried per op and per group
#: (`KindModel.overhead_per_group`).
GROUPED_KINDS = frozenset(
    kind for kind in KINDS if kind.startswith("conv") and ("dw" in kind or "grouped" in kind)
)


def _fit_at(
    measured: Sequence[Measurement], capacity: int, paths: ConvPaths
) -> tuple[list[KindFit], Matrix]:
    """Every kind fitted at cache `capacity`; a conv kind at the (input, output) channel
    blocks of those `paths` allow it (`ConvPaths.channel_blocks`), and a grouped one with its
    overhead per op or per group, whichever has the lowest leave-one-out error. Returns the
    fits and each benchmark's features (MACs, work, DRAM bytes, bytes, groups)."""
    rows = [_rows(m, capacity) for m in measured]
    times = np.array([m.time_s for m in measured])
    feats = np.zeros((len(measured), 5))
    fits = []
    for kind in dict.fromkeys(m.kind for m in measured):
        mine = [i for i, m in enumerate(measured) if m.kind == kind]
        groups = np.array([max(f.groups for f in rows[i]) for i in mine], dtype=np.float64)
        best: tuple[KindFit, Matrix] | None = None
        for blocks in paths.channel_blocks(kind):
            x = np.array([_summed(rows[i], blocks) for i in mine], dtype=np.float64)
            for per_group in (False, True) if kind in GROUPED_KINDS else (False,):
                unit = groups if per_group else np.ones(len(mine))
                fit = fit_kind(
                    kind, x[:, 1:] / unit[:, None], times[mine] / unit, blocks, per_group
                )
                if best is None or fit.loo.mean() < best[0].loo.mean():
                    best = (fit, np.column_stack([x, groups]))
        assert best is not None
        fits.append(best[0])
        feats[mine] = best[1]
    return fits, feats


def fit_device(
    measured: Sequence[Measurement], capacities: dict[int, str], paths: ConvPaths | None = None
) -> DeviceFit:
    """Fit every kind at each candidate capacity (bytes -> where it comes from) and keep the
    capacity with the lowest leave-one-out mean |relative error| over all benchmarks; the
    conv kinds' channel blocks are those `paths` allow (None: nothing probed)."""
    tried = {c: _fit_at(measured, c, paths or ConvPaths()) for c in capacities}
    score = {
        c: float(np.concatenate([f.loo for f in fits]).mean()) for c, (fits, _) in tried.items()
    }
    best = min(score, key=lambda c: score[c])
    fits, feats = tried[best]
    by_kind = {f.model.kind: f.model for f in fits}
    samples = []
    for m, row in zip(measured, feats, strict=True):
        model = by_kind[m.kind]
        seconds, _ = model.time(row[1], row[2], row[3], int(row[4]))
        samples.append(
            Sample(
                m.kind,
                m.label,
                int(row[0]),
                int(row[3]),
                int(row[2]),
                m.pool_bytes,
                m.time_s,
                seconds,
                m.output_span,
            )
        )
    choices = tuple(CacheChoice(c, capacities[c], score[c]) for c in capacities)
    loo = np.concatenate([f.loo for f in fits])
    return DeviceFit(best, tuple(by_kind.values()), tuple(samples), choices, loo)


#: Pseudo-ops of the ratio over all kinds that a kind's scale starts from: a kind seen in
#: 5 ops of a network's forward moves halfway from that ratio to its own.
KIND_PRIOR_OPS = 5.0


def kind_scales(models: Sequence[ContextModel]) -> dict[str, float]:
    """Each kind's profiled op time over its kind time, summed over `models`' forwards and
    drawn towards the ratio over all kinds `g` by `KIND_PRIOR_OPS` ops of the kind's mean kind
    time: ``(measured + 5 g mean) / (isolated + 5 mean)``. E.g. 20 depthwise convs of 2 ms
    kind time measured 3 ms, g = 1.1: mean 0.1 ms, (3 + 0.55) / (2 + 0.5) = 1.42."""
    sums: dict[str, list[float]] = {}
    for share in (k for m in models for k in m.kinds if k.kind != "view" and k.isolated_s > 0):
        total = sums.setdefault(share.kind, [0.0, 0.0, 0.0])
        total[0] += share.ops
        total[1] += share.isolated_s
        total[2] += share.measured_s
    isolated = sum(t[1] for t in sums.values())
    if not isolated:
        return {}
    overall = sum(t[2] for t in sums.values()) / isolated
    out = {}
    for kind, (ops, iso, measured) in sorted(sums.items()):
        prior = KIND_PRIOR_OPS * iso / ops
        out[kind] = (measured + overall * prior) / (iso + prior)
    return out


def kind_ranges(models: Sequence[ContextModel]) -> dict[str, tuple[float, float]]:
    """Per kind, the shortest and longest kind time of one op over `models`' profiled ops."""
    out: dict[str, tuple[float, float]] = {}
    for share in (k for m in models for k in m.kinds):
        low, high = out.get(share.kind, (share.shortest_s, share.longest_s))
        out[share.kind] = (min(low, share.shortest_s), max(high, share.longest_s))
    return dict(sorted(out.items()))


#: Below this a context scale says the ops ran 10x faster in a forward than alone in a loop:
#: not a machine, but a fit whose per-op cost took the time (NNLS gives 0 or 1e-17 there).
LEAST_CONTEXT_SCALE = 0.1


#: Kernel bandwidths tried for the per-op factors (`ContextFit.bandwidth`, in `op_point`
#: units: 0.4 halves a neighbour's weight at 1.5x the kind time and intensity apart); 0: the
#: kind scales alone. The one with the lowest leave-one-network-out per-op error is kept.
BANDWIDTHS = (0.0, 0.2, 0.3, 0.45, 0.7, 1.0)
#: Ops scored when choosing the bandwidth: those holding >= 1% of their network's op time
#: (as the predictor's per-op score counts them).
OP_SHARE = 0.01


def _unit_fit(models: Sequence[ContextModel], bandwidth: float) -> ContextFit:
    """The per-op factors of `models` (kind scales, ranges, neighbourhoods) at scale 1."""
    return ContextFit(
        1.0, 0.0, 0.0, 0.0, tuple(models), kind_scales(models), kind_ranges(models), bandwidth
    )


def _op_sum(unit: ContextFit, m: ContextModel) -> float:
    """`m`'s summed kind times with each profiled op at its factor under `unit` (the kind
    scales alone for a network timed without per-op samples)."""
    if not m.samples:
        return m.scaled_s(unit.kind_scale)
    return m.isolated_s + sum(
        (unit.factor(s.kind, s.isolated_s, s.work, s.bytes) - 1) * s.isolated_s for s in m.samples
    )


def _op_loo(models: Sequence[ContextModel], bandwidth: float) -> float | None:
    """Leave-one-network-out mean |relative error| of the per-op factors at `bandwidth` on the
    ops holding >= `OP_SHARE` of their network's profiled time (None: no per-op samples)."""
    errors = []
    for name in dict.fromkeys(m.model for m in models):
        unit = _unit_fit([o for o in models if o.model != name], bandwidth)
        for m in (m for m in models if m.model == name):
            floor = OP_SHARE * sum(s.measured_s for s in m.samples)
            errors += [
                abs(
                    unit.factor(s.kind, s.isolated_s, s.work, s.bytes) * s.isolated_s / s.measured_s
                    - 1
                )
                for s in m.samples
                if s.measured_s >= floor and s.measured_s > 0
            ]
    return float(np.mean(errors)) if errors else None


def _bandwidth(models: Sequence[ContextModel]) -> tuple[float, float | None]:
    """The bandwidth of `BANDWIDTHS` with the lowest `_op_loo` error, and that error (0 and
    None when the networks have no per-op samples, or are one network)."""
    if len({m.model for m in models}) < 2:
        return 0.0, None
    scored = [(error, h) for h in BANDWIDTHS if (error := _op_loo(models, h)) is not None]
    if not scored:
        return 0.0, None
    error, h = min(scored)
    return h, error


def _context_coef(
    models: Sequence[ContextModel], bandwidth: float
) -> tuple[ContextFit, float, float]:
    """(per-op factors at scale 1, scale, op_s): scale and op_s by non-negative least squares
    on relative error over the networks' factored sums (`_op_sum`)."""
    unit = _unit_fit(models, bandwidth)
    x = np.array([[_op_sum(unit, m), m.ops] for m in models], dtype=np.float64)
    t = np.array([m.measured_s for m in models])
    scale, op_s = (float(c) for c in _nnls_relative(x, t))
    if scale < LEAST_CONTEXT_SCALE:  # op_s took the time (a busy machine, one tiny network):
        # the kind time alone, scaled, is the fit a device model may hold (scale > 0)
        scale, op_s = float(_nnls_relative(x[:, :1], t)[0]), 0.0
    return unit, scale, op_s


def fit_context(models: Sequence[ContextModel]) -> ContextFit:
    """The context fit (``context_fit.ContextFit``) on whole networks timed in calibration:
    per-kind scales and per-op factors from their profiled ops (the bandwidth chosen leave
    one network out, `_bandwidth`), then measured = scale x factored kind times + op_s x ops,
    and each network's error when the others fit it (all its input sizes left out together;
    with one network, the in-sample error)."""
    bandwidth, op_error = _bandwidth(models)
    unit, scale, op_s = _context_coef(models, bandwidth)
    names = list(dict.fromkeys(m.model for m in models))
    errors = []
    for m in models:
        others = [o for o in models if o.model != m.model]
        u, s, o = _context_coef(others, bandwidth) if len(names) > 1 else (unit, scale, op_s)
        predicted = s * _op_sum(u, m) + o * m.ops
        errors.append(abs(predicted - m.measured_s) / m.measured_s)
    fitted = tuple(replace(m, predicted_s=scale * _op_sum(unit, m) + op_s * m.ops) for m in models)
    loo = np.array(errors)
    return ContextFit(
        scale,
        op_s,
        float(loo.mean()),
        float((loo <= 0.1).mean()),
        fitted,
        unit.kind_scale,
        unit.kind_range,
        bandwidth,
        op_error,
    )


def context_model(
    analysis: Analysis,
    measured_s: float,
    features: Sequence[LayerFeatures],
    layers: Sequence[LayerPrediction],
    isolated: DeviceModel,
    spans: Mapping[str, float],
) -> ContextModel:
    """One context network at one thread count, as `fit_context` takes it: its median forward
    `measured_s`, its ops (`features`, their kind times on `isolated` in `layers`) and, per
    kind, their kind times against the profiled `spans` (op name -> seconds) they joined."""
    samples = _samples(features, layers, isolated, spans)
    times: dict[str, list[tuple[float, float]]] = {}
    for sample in samples:
        times.setdefault(sample.kind, []).append((sample.isolated_s, sample.measured_s))
    kinds = tuple(
        KindShare(
            kind,
            len(pairs),
            sum(iso for iso, _ in pairs),
            sum(span for _, span in pairs),
            min(iso for iso, _ in pairs),
            max(iso for iso, _ in pairs),
        )
        for kind, pairs in sorted(times.items())
    )
    ops = sum(layer.kind != "view" for layer in layers)
    seconds = sum(layer.time_s for layer in layers)
    size = (analysis.input_shape[-2], analysis.input_shape[-1])
    return ContextModel(analysis.model, size, measured_s, seconds, ops, 0.0, kinds, samples)


def _samples(
    features: Sequence[LayerFeatures],
    layers: Sequence[LayerPrediction],
    isolated: DeviceModel,
    spans: Mapping[str, float],
) -> tuple[OpSample, ...]:
    """The ops (`features`, with their kind times on `isolated`, `layers`) that joined a
    profiled span, views left out, each with its kind time, its span, its work padded as its
    kind's fit pads it, and its bytes."""
    out = []
    for f, layer in zip(features, layers, strict=True):
        if f.kind == "view" or f.name not in spans:
            continue
        work = padded_work(f.work, f.channels, *isolated.kind(f.kind).blocks)
        out.append(OpSample(f.kind, layer.time_s, spans[f.name], work, float(f.bytes)))
    return tuple(out)
