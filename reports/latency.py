"""The latency report: latency vs traffic and vs MACs, and one model's layers, as Plotly HTML.

The traffic axis uses measured DRAM bytes where every run of a device has them (labelled with
their source, e.g. ``ncu``) and the modeled unfused bytes otherwise (labelled ``model``): the two
are never mixed on one axis.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hardnet_analysis.fileio import atomic_write_text
from hardnet_analysis.metrics.correlate import Point, layer_points, model_points

BOUND_COLORS = {"memory": "#d62728", "compute": "#1f77b4"}


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


def _fit_line(points: Sequence[Point], feature: str, name: str) -> tuple[go.Scatter, float]:
    x = np.array([p.features[feature] for p in points])
    y = np.array([p.latency * 1e3 for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    r = float(np.corrcoef(x, y)[0, 1])
    xs = np.linspace(x.min(), x.max(), 50)
    line = go.Scatter(
        x=xs, y=slope * xs + intercept, mode="lines", name=f"{name} fit (r = {r:.3f})"
    )
    return line, r


def scatter_figure(runs: Sequence[dict[str, Any]]) -> go.Figure:
    """Latency against traffic (left) and MACs (right), models large and layers small."""
    models, layers = model_points(runs), layer_points(runs)
    feature, source = _traffic_key(models + layers)
    titles = []
    for x_feature in (feature, "macs"):
        # r of 2 points is always +-1: say so instead of printing it.
        r_text = (
            f"{_fit_line(models, x_feature, 'models')[1]:.3f}" if len(models) > 2 else "n/a, < 3"
        )
        titles.append(
            f"latency vs {x_feature} ({'' if x_feature == 'macs' else source + ', '}"
            f"models r = {r_text})"
        )
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.08)
    for col, x_feature in enumerate((feature, "macs"), start=1):
        for pts, name, size in ((layers, "layers", 5), (models, "models", 12)):
            if not pts:
                continue
            fig.add_trace(_scatter(pts, x_feature, name, size), row=1, col=col)
            if len(pts) > 2:
                fig.add_trace(_fit_line(pts, x_feature, name)[0], row=1, col=col)
        unit = "bytes" if x_feature != "macs" else "MACs"
        fig.update_xaxes(title_text=f"{x_feature} ({unit})", type="log", row=1, col=col)
        fig.update_yaxes(title_text="latency (ms)", type="log", row=1, col=col)
    fig.update_layout(height=520, title="Does latency follow memory traffic or MACs?")
    return fig


def layers_figure(run: dict[str, Any]) -> go.Figure:
    """One model's layers in execution order: time (bars coloured by roofline bound), modeled
    bytes and MoC on the rows below."""
    layers = [layer for layer in run["layers"] if layer["nodes"]]
    names = [layer["name"] for layer in layers]
    bound = [layer["roofline"]["bound"] for layer in layers]
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
            y=[layer["time_s"] * 1e3 for layer in layers],
            marker_color=[BOUND_COLORS[b] for b in bound],
            text=bound,
            hovertemplate="%{x}<br>%{y:.3f} ms<br>%{text}-bound<extra></extra>",
            name="time",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(x=names, y=[layer["model_bytes"] for layer in layers], name="bytes"), row=2, col=1
    )
    moc = [layer["macs"] / layer["cio"] if layer["cio"] else None for layer in layers]
    fig.add_trace(go.Scatter(x=names, y=moc, mode="markers", name="MoC"), row=3, col=1)
    size = "x".join(map(str, run["input"]))
    fig.update_layout(height=800, showlegend=False, title=f"{run['model']} @ {size}: per layer")
    fig.update_xaxes(showticklabels=False)
    return fig


def latency_report(runs: Sequence[dict[str, Any]], model: str | None = None) -> str:
    """The whole report as one HTML page with plotly.js inlined (no network needed)."""
    ok = [r for r in runs if r.get("status") == "ok"]
    detail = next((r for r in ok if model is None or r["model"] == model), ok[0])
    first = scatter_figure(ok).to_html(full_html=False, include_plotlyjs=True)
    second = layers_figure(detail).to_html(full_html=False, include_plotlyjs=False)
    listing = "".join(
        f"<li>{html.escape(r['model'])} @ {'x'.join(map(str, r['input']))}: "
        f"{r['latency']['median_s'] * 1e3:.2f} ms on {html.escape(r['device']['used'])}</li>"
        for r in ok
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>hda latency report</title>"
        "</head><body style='font-family:sans-serif'><h1>hda latency report</h1>"
        f"{first}{second}<h2>runs</h2><ul>{listing}</ul></body></html>"
    )


def write_report(
    runs: Sequence[dict[str, Any]], path: str | Path, model: str | None = None
) -> Path:
    """Write `latency_report` to `path` atomically."""
    return atomic_write_text(path, latency_report(runs, model))
