"""Section 2a, profile runs: latency against each traffic measure and against MACs, one panel
each, and the list of runs with what makes each distinct.

Models are coloured and labelled with their input size, their layers drawn faint in the same
colour. Measured DRAM bytes have their own panel (points that have them only), so measured and
modelled bytes never share an axis. The dashed line is the power-law fit (least squares of
log latency on log x, straight on these log axes); the r and n in the subtitle are Pearson's r
of latency against x as ``hda correlate`` prints it. Both come from
`hardnet_analysis.metrics.correlate`, per device, never pooled across devices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from hardnet_analysis.documents.profile_run import ProfileRun
from hardnet_analysis.metrics.correlate import (
    Correlation,
    Point,
    by_device,
    correlations,
    device_label,
    layer_points,
    model_points,
    power_fit,
)
from hardnet_analysis.present.fit import abbreviate
from hardnet_analysis.reports.page import Section, grid, table
from hardnet_analysis.reports.style import colors, figure_html, layout, log_axis

#: Predictor: (axis title, unit). Measured bytes name their source in the title.
AXES = {
    "model_bytes": ("modelled bytes, unfused", "B"),
    "model_fused_bytes": ("modelled bytes, fused", "B"),
    "cio": ("CIO", "elements"),
    "dram_bytes": ("measured DRAM bytes", "B"),
    "macs": ("MACs", "multiply-adds"),
}
SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "star")


def _setups(runs: Sequence[ProfileRun]) -> dict[int, str]:
    """Per run (by id), the setup fields that differ between the runs (``7 repeats``), or ""
    where every run has the same setup: what tells points of one model apart."""
    fields = [{**r.setup_fields, "device": device_label(r)} for r in runs]
    differ = [k for k in fields[0] if len({f[k] for f in fields}) > 1]
    return {id(r): " ".join(f[k] for k in differ) for r, f in zip(runs, fields, strict=True)}


def _scatter(points: Sequence[Point], x: str, model_level: bool) -> go.Scatter:
    have = [p for p in points if p.features.get(x, 0) > 0]
    sizes = [p.label.split(" @ ")[-1].split(":")[0] for p in have]
    return go.Scatter(
        x=[p.features[x] for p in have],
        y=[p.latency * 1e3 for p in have],
        mode="markers+text" if model_level else "markers",
        text=[_short_size(size) if model_level else "" for size in sizes],
        textposition="top center",
        textfont={"size": 9},
        customdata=[p.label for p in have],
        hovertemplate="%{customdata}<br>x = %{x:.3s}<br>%{y:.3f} ms<extra></extra>",
        marker={"size": 11 if model_level else 4, "opacity": 0.9 if model_level else 0.18},
    )


def _short_size(size: str) -> str:
    """``224`` for ``224x224``; other sizes as they are."""
    h, _, w = size.partition("x")
    return h if h == w else size


def _fit_trace(points: Sequence[Point], x: str, device: str, several: bool) -> go.Scatter | None:
    fit = power_fit(points, x, "model")
    if fit is None:
        return None
    values = [p.features[x] for p in points if p.features.get(x, 0) > 0]
    xs = np.geomspace(min(values), max(values), 20)
    where = f" on {device}" if several else ""
    return go.Scatter(
        x=xs, y=[fit.latency(v) * 1e3 for v in xs], mode="lines",
        line={"dash": "dash", "color": "#444", "width": 1.5},
        name=f"models fit{where}: latency ∝ x^{fit.exponent:.2f}", hoverinfo="skip",
    )  # fmt: skip


def _subtitle(found: Sequence[Correlation], x: str, devices: Sequence[str]) -> str:
    """``models r = 0.62, n = 12 · layers r = 0.34, n = 2408``, a line per device (named where
    there are several)."""
    lines = []
    for device in devices:
        parts = []
        for level in ("model", "layer"):
            key = (level, device, x)
            c = next((c for c in found if (c.level, c.device, c.predictor) == key), None)
            parts.append(f"{level}s " + ("n/a" if c is None else f"r = {c.pearson:.2f}, n = {c.n}"))
        where = f"{abbreviate(device, 44)}: " if len(devices) > 1 else ""
        lines.append(where + " · ".join(parts))
    return "<br>".join(lines)


def _add_runs(fig: go.Figure, runs: Sequence[ProfileRun], x: str) -> None:
    """Per run, its layers (faint) and its whole-model point: colour by model, one legend
    entry per model, symbol by setup where the runs' setups differ."""
    color = colors(r.model for r in runs)
    setups = _setups(runs)
    symbols = {s: SYMBOLS[i % len(SYMBOLS)] for i, s in enumerate(dict.fromkeys(setups.values()))}
    shown: set[str] = set()
    for run in runs:
        style = {"marker_color": color[run.model], "marker_symbol": symbols[setups[id(run)]]}
        for level, points in (("layer", layer_points([run])), ("model", model_points([run]))):
            trace = _scatter(points, x, level == "model")
            first = level == "model" and run.model not in shown
            trace.update(name=run.model, legendgroup=run.model, showlegend=first, **style)
            fig.add_trace(trace)
            if first:
                shown.add(run.model)
    for setup, symbol in symbols.items() if len(symbols) > 1 else ():
        key = {"color": "#777", "symbol": symbol, "size": 9}
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=setup, marker=key))


def panel(runs: Sequence[ProfileRun], x: str, found: Sequence[Correlation]) -> go.Figure:
    """Latency against predictor `x` (see the module docstring)."""
    fig = go.Figure()
    _add_runs(fig, runs, x)
    devices = list(by_device(model_points(runs)))
    for device, points in by_device(model_points(runs)).items():
        line = _fit_trace(points, x, device, len(devices) > 1)
        if line is not None:
            fig.add_trace(line)
    title, unit = AXES[x]
    if x == "dram_bytes":
        sources = {
            p.sources["dram_bytes"] for p in model_points(runs) if "dram_bytes" in p.features
        }
        title = f"{title} ({', '.join(sorted(sources))})"
    fig.update_xaxes(**log_axis(title, unit))
    fig.update_yaxes(**log_axis("latency", "ms"))
    return layout(fig, f"latency vs {title}", 540, _subtitle(found, x, devices))


def runs_table(runs: Sequence[ProfileRun]) -> str:
    """What each run is: model, input, setup, device (in the caption when all share it),
    latency median and quartiles, and a fall-back note where the device asked for was not used."""
    names = {r.device.name for r in runs}
    one = len(names) == 1
    headers = ("model", "input", "setup", *(() if one else ("device",)), "median ms", "p25-p75 ms")
    rows = []
    for r in runs:
        lat = r.latency
        spread = f"{lat.p25_s * 1e3:.2f}-{lat.p75_s * 1e3:.2f}"
        device = () if one else (r.device.name,)
        rows.append((r.model, r.size, r.setup, *device, f"{lat.median_s * 1e3:.2f}", spread))
    where = f" on {names.pop()}" if one else ""
    notes = "".join(
        f"<p class='note'>{r.model} @ {r.size}: asked for {r.device.requested}, "
        f"{r.device.fallback}</p>"
        for r in runs
        if r.device.fallback
    )
    return table(headers, rows, f"profile runs{where} (setup: what changes the numbers)") + notes


def latency_section(runs: Sequence[ProfileRun]) -> Section:
    """Section 2a for `runs` (see the module docstring)."""
    found = correlations(runs)
    points = model_points(runs)
    shown = [x for x in AXES if any(p.features.get(x, 0) > 0 for p in points)]
    return Section(
        "latency",
        "Latency against memory traffic and MACs",
        "One panel per predictor, log axes. Large markers are whole models (labelled with their "
        "input), faint ones their layers. The dashed line is a power-law fit of the models; r "
        "is Pearson's r as <code>hda correlate</code> prints it. Click a legend entry to hide "
        "a model.",
        [grid([figure_html(panel(runs, x, found)) for x in shown]), runs_table(runs)],
    )
