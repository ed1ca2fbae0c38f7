"""Section 3b, the device model's predictions against the profile runs (with ``--device-model``):
predicted against measured latency per run on log axes, the diagonal and the +-10% band drawn,
each run's error, sorted, and, where the runs hold per-op times (``torch.profiler``), predicted
against measured per op, coloured by kind. The figures are
`hardnet_analysis.metrics.predictor_score`'s."""

from __future__ import annotations

import plotly.graph_objects as go

from hardnet_analysis.documents.profile_run import run_stem
from hardnet_analysis.metrics.predictor_score import OpScore, PredictorScore
from hardnet_analysis.reports.page import Section, grid
from hardnet_analysis.reports.style import colors, figure_html, layout
from hardnet_analysis.units import format_percent


def _pct(fraction: float | None) -> str:
    return format_percent(fraction, missing="n/a")


def scatter(score: PredictorScore) -> go.Figure:
    """Predicted against measured milliseconds, one point per run, with y = x and +-10%."""
    color = colors(run_stem(m.model) for m in score.models)
    fig = go.Figure()
    shown: set[str] = set()
    for m in score.models:
        name = run_stem(m.model)
        fig.add_trace(
            go.Scatter(
                x=[m.measured_s * 1e3], y=[m.predicted_s * 1e3], mode="markers+text",
                name=name, legendgroup=name, showlegend=name not in shown,
                text=[m.input.split("x")[0]],
                textposition="top center", marker={"size": 10, "color": color[name]},
                hovertemplate=f"{name} @ {m.input}<br>measured %{{x:.3g}} ms<br>"
                f"predicted %{{y:.3g}} ms ({100 * m.error:+.1f}%)<extra></extra>",
            )
        )  # fmt: skip
        shown.add(name)
    _diagonal(fig, [m.measured_s * 1e3 for m in score.models])
    fig.update_xaxes(type="log", title_text="measured latency (ms)", dtick=1)
    fig.update_yaxes(type="log", title_text="predicted latency (ms)", dtick=1)
    subtitle = (
        f"MAPE {_pct(score.mape)}, {_pct(score.within_10pct)} within +-10%, n = {score.runs}; "
        f"leave-one-model-out scaled {_pct(score.lomo_mape)}"
        + ("" if score.speed_mape is None else f"; at run speed {_pct(score.speed_mape)}")
    )
    height = 520 + 22 * (len(shown) // 3)  # room for the legend below the plot
    return layout(fig, f"predicted vs measured on {score.device}", height, subtitle)


def _diagonal(fig: go.Figure, values: list[float]) -> None:
    """y = x and the +-10% band over the range of `values`."""
    lo, hi = min(values) / 1.5, max(values) * 1.5
    for factor, dash, label in ((1.0, "solid", "predicted = measured"), (1.1, "dot", "+-10%")):
        for f in {factor, 1 / factor}:
            fig.add_trace(
                go.Scatter(
                    x=[lo, hi], y=[lo * f, hi * f], mode="lines", name=label,
                    legendgroup=label, showlegend=f >= 1, hoverinfo="skip",
                    line={"color": "#777", "dash": dash, "width": 1},
                )
            )  # fmt: skip


def op_scatter(ops: OpScore) -> go.Figure:
    """Predicted against measured milliseconds per op (ops >= 1% of their model's op time),
    one colour per kind, each point named by its run and graph node."""
    kinds = sorted({p.kind for p in ops.points})
    color = colors(kinds)
    fig = go.Figure()
    for kind in kinds:
        points = [p for p in ops.points if p.kind == kind]
        fig.add_trace(
            go.Scatter(
                x=[p.measured_s * 1e3 for p in points], y=[p.predicted_s * 1e3 for p in points],
                mode="markers", name=kind, marker={"size": 6, "color": color[kind]},
                text=[f"{run_stem(p.model)} @ {p.input}: {p.node}" for p in points],
                hovertemplate="%{text}<br>measured %{x:.3g} ms<br>predicted %{y:.3g} ms"
                "<extra></extra>",
            )
        )  # fmt: skip
    _diagonal(fig, [p.measured_s * 1e3 for p in ops.points])
    fig.update_xaxes(type="log", title_text="measured op time (ms, torch.profiler)", dtick=1)
    fig.update_yaxes(type="log", title_text="predicted op time (ms)", dtick=1)
    subtitle = (
        f"{ops.ops} ops >= 1% of their model: MAPE {_pct(ops.mape)}, {_pct(ops.within_10pct)} "
        f"within +-10%; convs {_pct(ops.conv_mape)}; Spearman {ops.spearman:.2f}"
    )
    return layout(fig, "predicted vs measured per op", 560, subtitle)


def errors(score: PredictorScore) -> go.Figure:
    """Each run's error (predicted / measured - 1, percent), sorted, with the +-10% band."""
    rows = sorted(score.models, key=lambda m: m.error)
    labels = [f"{run_stem(m.model)} @ {m.input.split('x')[0]}" for m in rows]
    fig = go.Figure(
        go.Bar(
            x=[100 * m.error for m in rows], y=labels, orientation="h",
            marker={"color": ["#2a7" if abs(m.error) <= 0.1 else "#c44" for m in rows]},
            hovertemplate="%{y}: %{x:+.1f}%<extra></extra>", showlegend=False,
        )
    )  # fmt: skip
    for edge in (-10, 10):
        fig.add_vline(x=edge, line={"color": "#777", "dash": "dot", "width": 1})
    fig.update_xaxes(title_text="error (%)")
    height = max(360, 22 * len(rows) + 160)
    subtitle = (
        f"{score.layers} layers: MAPE {_pct(score.layer_mape)}, "
        f"{_pct(score.layer_within_10pct)} within +-10%"
    )
    if score.ops is not None:
        subtitle += (
            f"; {score.ops.ops} ops >= 1%: MAPE {_pct(score.ops.mape)}, convs "
            f"{_pct(score.ops.conv_mape)}, Spearman {score.ops.spearman:.2f}"
        )
    return layout(fig, "error per run", height, subtitle)


def prediction_section(score: PredictorScore) -> Section:
    """The section for the device model's `score` on the report's runs (with the per-op
    figure where the runs hold per-op times)."""
    figures = [figure_html(scatter(score)), figure_html(errors(score))]
    if score.ops is not None and score.ops.points:
        figures.append(figure_html(op_scatter(score.ops)))
    return Section(
        "prediction",
        "Predicted against measured latency",
        "The device model (hda calibrate) predicts each run's latency without running it; green "
        "runs are within +-10% of what was measured. Where the runs hold per-op times "
        "(torch.profiler), each op holding >= 1% of its model's time is drawn too, predicted "
        "without the per-op cost of the Python between ops, which the profiler leaves out. Its "
        "fit used micro-benchmarks and the whole networks of its context fit, which are listed "
        "in the device model.",
        [grid(figures)],
    )
