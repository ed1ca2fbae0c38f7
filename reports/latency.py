"""The latency report: latency vs traffic and vs MACs, and one model's layers, as Plotly HTML.

The traffic axis uses measured DRAM bytes where every run of a device has them (labelled with
their source, e.g. ``ncu``) and the modeled unfused bytes otherwise (labelled ``model``): the two
are never mixed on one axis. Pearson r and the fit lines are those of
`hardnet_analysis.metrics.correlate` (what ``hda correlate`` prints): computed per device,
never over runs of several devices pooled.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.metrics.correlate import (
    Correlation,
    Point,
    by_device,
    correlations,
    layer_points,
    model_points,
)
from hardnet_analysis.profiler.document import ProfileRun

BOUND_COLORS = {"memory": "#d62728", "compute": "#1f77b4"}
LEVELS = (("layer", "layers", 5), ("model", "models", 12))  # level, legend name, marker size


def _traffic_key(points: Sequence[Point]) -> tuple[str, str]:
    """(feature, source) for the traffic axis: measured DRAM bytes only if all points have
    them, otherwise the traffic model's unfused bytes."""
    if points and all("dram_bytes" in p.features for p in points):
        return "dram_bytes", points[0].sources["dram_bytes"]
    return "model_bytes", "model"


def _scatter(points: Sequence[Point], feature: str, name: str, size: int) -> go.Scatter:
    return go.Scatter(
        x=[p.features[feature] for p in points],
        y=[p.latency * 1e3 for p in points],
        mode="markers",
        name=name,
        text=[p.label for p in points],
        hovertemplate="%{text}<br>x=%{x:.3s}<br>%{y:.3f} ms<extra></extra>",
        marker={"size": size, "opacity": 0.85 if size > 6 else 0.35},
    )


def _fit_line(points: Sequence[Point], fit: Correlation, name: str) -> go.Scatter:
    """The least-squares line of `fit` over the x range of `points`, latency in ms."""
    x = np.array([p.features[fit.predictor] for p in points])
    xs = np.linspace(x.min(), x.max(), 50)
    ys = (fit.slope * xs + fit.intercept) * 1e3
    return go.Scatter(x=xs, y=ys, mode="lines", name=f"{name} fit (r = {fit.pearson:.3f})")


def _find(found: Sequence[Correlation], level: str, device: str, x: str) -> Correlation | None:
    return next((c for c in found if (c.level, c.device, c.predictor) == (level, device, x)), None)


def _title(x: str, source: str, found: Sequence[Correlation], devices: Sequence[str]) -> str:
    """``latency vs model_bytes (model, models r = 0.912)``; r per device where there are
    several, ``n/a`` where a device has fewer than 4 runs (r of so few points says little)."""
    rs = []
    for device in devices:
        fit = _find(found, "model", device, x)
        r = "n/a, < 4 runs" if fit is None else f"{fit.pearson:.3f}"
        rs.append(r if len(devices) == 1 else f"{r} on {device}")
    where = "" if x == "macs" else f"{source}, "
    return f"latency vs {x} ({where}models r = {'; '.join(rs) or 'n/a'})"


def scatter_figure(runs: Sequence[ProfileRun]) -> go.Figure:
    """Latency against traffic (left) and MACs (right), models large and layers small, one
    trace and fit line per device. The r and lines are `correlations`' (what ``hda correlate``
    prints): per device, never pooled across devices."""
    points = {"model": model_points(runs), "layer": layer_points(runs)}
    found = correlations(runs)
    feature, source = _traffic_key(points["model"] + points["layer"])
    devices = list(by_device(points["model"]))
    features = (feature, "macs")
    titles = [_title(x, source, found, devices) for x in features]
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.08)
    for col, x in enumerate(features, start=1):
        for level, label, size in LEVELS:
            for device, group in by_device(points[level]).items():
                name = label if len(devices) == 1 else f"{label}, {device}"
                fig.add_trace(_scatter(group, x, name, size), row=1, col=col)
                fit = _find(found, level, device, x)
                if fit is not None:
                    fig.add_trace(_fit_line(group, fit, name), row=1, col=col)
        unit = "bytes" if x != "macs" else "MACs"
        fig.update_xaxes(title_text=f"{x} ({unit})", type="log", row=1, col=col)
        fig.update_yaxes(title_text="latency (ms)", type="log", row=1, col=col)
    fig.update_layout(height=520, title="Does latency follow memory traffic or MACs?")
    return fig


def layers_figure(run: ProfileRun) -> go.Figure:
    """One model's layers in execution order: time (bars coloured by roofline bound), modeled
    bytes and MoC (MACs per CIO element) on the rows below."""
    layers = [layer for layer in run.layers if layer.nodes]
    names = [layer.name for layer in layers]
    bound = [layer.roofline.bound for layer in layers]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=("time (ms), colour = roofline bound", "bytes (model)", "MoC (MACs / CIO)"),
    )
    fig.add_trace(
        go.Bar(
            x=names,
            y=[layer.time_s * 1e3 for layer in layers],
            marker_color=[BOUND_COLORS[b] for b in bound],
            text=bound,
            hovertemplate="%{x}<br>%{y:.3f} ms<br>%{text}-bound<extra></extra>",
            name="time",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=names, y=[layer.model_bytes for layer in layers], name="bytes"), row=2, col=1
    )
    moc = [layer.macs / layer.cio if layer.cio else None for layer in layers]
    fig.add_trace(go.Scatter(x=names, y=moc, mode="markers", name="MoC"), row=3, col=1)
    title = f"{run.model} @ {run.size}: per layer"
    fig.update_layout(height=800, showlegend=False, title=title)
    fig.update_xaxes(showticklabels=False)
    return fig


def latency_report(runs: Sequence[ProfileRun], model: str | None = None) -> str:
    """The whole report as one HTML page with plotly.js inlined (no network needed); the
    per-layer view shows `model`'s first run (default: the first run)."""
    detail = next((r for r in runs if model is None or r.model == model), runs[0])
    first = scatter_figure(runs).to_html(full_html=False, include_plotlyjs=True)
    second = layers_figure(detail).to_html(full_html=False, include_plotlyjs=False)
    listing = "".join(
        f"<li>{html.escape(r.model)} @ {r.size}: "
        f"{r.latency.median_s * 1e3:.2f} ms on {html.escape(r.device.used)}</li>"
        for r in runs
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>hda latency report</title>"
        "</head><body style='font-family:sans-serif'><h1>hda latency report</h1>"
        f"{first}{second}<h2>runs</h2><ul>{listing}</ul></body></html>"
    )


def write_report(runs: Sequence[ProfileRun], path: str | Path, model: str | None = None) -> Path:
    """Write `latency_report` to `path` atomically."""
    return atomic_write_text(path, latency_report(runs, model))
