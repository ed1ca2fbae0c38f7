"""Section 1, models without running them: a comparison table, then per model its blocks and its
conv/linear layers (CIO, MACs, MoC, bytes) with layer names on the axis, blocks as bands and
the lowest-MoC layers called out. Every number comes from `hardnet_analysis.analyze`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hardnet_analysis.metrics.analysis import Analysis, LayerRecord
from hardnet_analysis.reports.page import Section, table
from hardnet_analysis.reports.style import figure_html, layout
from hardnet_analysis.units import format_bytes, format_count

#: (row title, unit) of the stacked panels, top to bottom.
ROWS = (("CIO", "elements"), ("MACs", "multiply-adds"), ("MoC", "MACs / CIO"), ("bytes", "B"))
CALLOUTS = 5  # lowest-MoC layers called out per model
BAND = "rgba(31, 119, 180, 0.07)"


def _moc(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def comparison_table(analyses: Sequence[Analysis]) -> str:
    """One row per model: input, params, MACs, CIO, MoC, min MoC, bytes unfused and fused."""
    headers = ("model", "input", "params", "MACs", "CIO", "MoC", "min MoC", "bytes", "fused bytes")
    rows = []
    for a in analyses:
        t = a.totals
        rows.append(
            (
                a.model,
                "x".join(map(str, a.input_shape)),
                format_count(t.params),
                format_count(t.macs),
                format_count(t.cio),
                _moc(t.moc),
                _moc(t.min_moc),
                format_bytes(t.bytes),
                format_bytes(t.fused_bytes),
            )
        )
    return table(headers, rows, f"{analyses[0].dtype}, bytes unfused and fused (conv-BN-ReLU)")


def _stacked(
    names: Sequence[str], columns: Sequence[Sequence[float | None]], blocks: Sequence[str]
) -> go.Figure:
    """One row per `ROWS` entry over the categories `names` (each in its block), x shared:
    bars, MoC as markers on a log axis (low MoC is the story, and it spans decades)."""
    fig = make_subplots(rows=len(ROWS), cols=1, shared_xaxes=True, vertical_spacing=0.025)
    for row, ((label, unit), values) in enumerate(zip(ROWS, columns, strict=True), start=1):
        if label == "MoC":
            trace: go.Scatter | go.Bar = go.Scatter(
                x=names, y=values, mode="markers", marker={"size": 6, "color": "#d62728"}
            )
        else:
            trace = go.Bar(x=names, y=values, marker_color="#1f77b4")
        hover = f"%{{x}} (%{{customdata}})<br>{label} %{{y:.3s}} {unit}<extra></extra>"
        trace.update(name=label, customdata=list(blocks), hovertemplate=hover)
        fig.add_trace(trace, row=row, col=1)
        axis = {"type": "log", "dtick": 1} if label == "MoC" else {}
        fig.update_yaxes(title_text=f"{label}<br>({unit})", row=row, col=1, exponentformat="SI",
                         **axis)  # fmt: skip
    fig.update_layout(showlegend=False, bargap=0.15)
    fig.update_xaxes(tickangle=-60, tickfont={"size": 9}, row=len(ROWS), col=1)
    return fig


def _bands(fig: go.Figure, blocks: Sequence[str]) -> None:
    """Shade every other block across all rows; name the blocks wide enough to hold a label
    above the top row (the others are named in the hover)."""
    spans: list[tuple[str, int, int]] = []  # block, first index, last index + 1
    for i, block in enumerate(blocks):
        if spans and spans[-1][0] == block:
            spans[-1] = (block, spans[-1][1], i + 1)
        else:
            spans.append((block, i, i + 1))
    for number, (block, start, stop) in enumerate(spans):
        if number % 2 == 1:
            fig.add_vrect(x0=start - 0.5, x1=stop - 0.5, fillcolor=BAND, line_width=0,
                          layer="below", row="all", col=1)  # fmt: skip
        if (stop - start) / len(blocks) >= len(block) / 100:  # ~100 label characters at 800 px
            fig.add_annotation(
                x=(start + stop - 1) / 2, y=1.0, xref="x", yref="paper", yanchor="bottom",
                text=block, showarrow=False, font={"size": 10, "color": "#555"},
            )  # fmt: skip


def _callouts(fig: go.Figure, layers: Sequence[LayerRecord]) -> list[LayerRecord]:
    """Arrows to the `CALLOUTS` lowest-MoC layers on the MoC row, staggered so that
    neighbours do not overprint; returns them."""
    lowest = sorted((r for r in layers if r.moc is not None), key=lambda r: r.moc or 0.0)
    for number, r in enumerate(lowest[:CALLOUTS]):
        fig.add_annotation(
            x=r.name, y=math.log10(r.moc or 1.0), xref="x3", yref="y3", text=f"{r.moc:.1f}",
            showarrow=True, arrowhead=2, ax=0, ay=-18 - 14 * (number % 3),
            font={"size": 10, "color": "#d62728"}, bgcolor="rgba(255,255,255,0.8)",
        )  # fmt: skip
    return lowest[:CALLOUTS]


def layers_figure(a: Analysis) -> tuple[go.Figure, list[LayerRecord]]:
    """The conv and linear layers of `a` in execution order, and the lowest-MoC ones."""
    layers = [r for r in a.layers if r.op in ("conv", "linear")]
    names = [r.name for r in layers]
    columns = ([r.cio for r in layers], [r.macs for r in layers], [r.moc for r in layers],
               [r.bytes for r in layers])  # fmt: skip
    blocks = [r.block for r in layers]
    fig = _stacked(names, columns, blocks)
    _bands(fig, blocks)
    lowest = _callouts(fig, layers)
    shape = "x".join(map(str, a.input_shape))
    subtitle = "conv and linear layers in execution order; shaded bands are blocks"
    return layout(fig, f"{a.model} @ {shape}: per layer", 720, subtitle), lowest


def blocks_figure(a: Analysis) -> go.Figure:
    """The blocks of `a` (stem, stages, transitions, head): CIO, MACs, MoC, bytes."""
    groups = [g for g in a.by_block() if g.name not in ("input", "output")]
    names = [g.name for g in groups]
    t = [g.totals for g in groups]
    columns = ([x.cio for x in t], [x.macs for x in t], [x.moc for x in t], [x.bytes for x in t])
    fig = _stacked(names, columns, names)
    shape = "x".join(map(str, a.input_shape))
    return layout(fig, f"{a.model} @ {shape}: per block", 560, "MoC is conv MACs over CIO")


def _lowest_note(a: Analysis, lowest: Sequence[LayerRecord]) -> str:
    items = ", ".join(f"{r.name} ({r.block}) {r.moc:.1f}" for r in lowest)
    return f"<p class='note'>{a.model}: lowest MoC (most memory-bound convs): {items}</p>"


def models_section(analyses: Sequence[Analysis]) -> Section:
    """Section 1 for the models analysed (see the module docstring)."""
    section = Section(
        "models",
        "Models (computed, nothing run)",
        "CIO is a conv's input plus output elements, MoC its MACs per CIO element; a low MoC "
        "marks a layer that moves much memory for little compute. Hover for exact values.",
        [comparison_table(analyses)],
    )
    for a in analyses:
        figure, lowest = layers_figure(a)
        section.blocks += [
            f"<h3>{a.model}</h3>",
            figure_html(blocks_figure(a)),
            figure_html(figure),
            _lowest_note(a, lowest),
        ]
    return section
