"""Section 2b, where the time goes: the roofline of each device (attainable FLOP/s against
arithmetic intensity under the DRAM and compute ceilings the runs recorded: probed on a CPU, the
device table on a GPU) with every layer a point sized by its time and coloured by op kind; and
one run's time per layer in execution order, coloured by the roofline bound."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from hardnet_analysis.documents.profile_run import ProfiledLayer, ProfileRun
from hardnet_analysis.metrics.correlate import device_label
from hardnet_analysis.present.fit import abbreviate
from hardnet_analysis.reports.page import Section
from hardnet_analysis.reports.style import (
    BOUND_COLORS,
    colors,
    figure_html,
    layout,
    legend_inside,
    log_axis,
)

MAX_TICKS = 40  # layer names on the axis at most
TICK = 24  # characters of a layer name on the axis (abbreviated from the middle; hover has all)
#: Op kinds in the order that names a layer key covering several ops (conv + bn + relu: conv).
KINDS = ("conv", "linear", "matmul", "bn", "relu", "pool", "add", "cat")


def op_kind(layer: ProfiledLayer) -> str:
    """The op that names the layer: its first of `KINDS`, else its first op."""
    return next((k for k in KINDS if k in layer.ops), layer.ops[0] if layer.ops else "other")


def _ceilings(run: ProfileRun, lo: float, hi: float) -> list[go.Scatter]:
    """The bandwidth slope up to the ridge point and the flat compute peak beyond it."""
    spec = run.roofline
    peak = spec.peak_flops.get(run.dtype, spec.peak_flops["fp32"])
    ridge = peak / spec.bandwidth_Bps
    lo, hi = min(lo, ridge / 10), max(hi, ridge * 10)
    style = {"color": "#222", "width": 2}
    return [
        go.Scatter(x=[lo, ridge], y=[spec.bandwidth_Bps * lo, peak], mode="lines", line=style,
                   name=f"DRAM {spec.bandwidth_Bps / 1e9:.1f} GB/s", hoverinfo="name"),
        go.Scatter(x=[ridge, hi], y=[peak, peak], mode="lines", line={**style, "dash": "dot"},
                   name=f"peak {run.dtype} {peak / 1e9:.0f} GFLOP/s", hoverinfo="name"),
    ]  # fmt: skip


def roofline_figure(runs: Sequence[ProfileRun]) -> go.Figure:
    """Every layer with MACs of `runs` (one device) on that device's roofline."""
    rows = [(r, layer) for r in runs for layer in r.layers if layer.macs and layer.time_s > 0]
    rows = [(r, layer) for r, layer in rows if layer.roofline.intensity]
    longest = max((layer.time_s for _, layer in rows), default=1.0)
    kinds = colors(op_kind(layer) for _, layer in rows)
    fig = go.Figure()
    for kind, color in kinds.items():
        mine = [(r, layer) for r, layer in rows if op_kind(layer) == kind]
        fig.add_trace(
            go.Scatter(
                x=[layer.roofline.intensity for _, layer in mine],
                y=[2 * layer.macs / layer.time_s for _, layer in mine],
                mode="markers", name=kind,
                marker={"color": color, "opacity": 0.6, "line": {"width": 0},
                        "size": [4 + 22 * math.sqrt(layer.time_s / longest) for _, layer in mine]},
                customdata=[[f"{r.model} @ {r.size}: {layer.name}", layer.time_s * 1e3]
                            for r, layer in mine],
                hovertemplate="%{customdata[0]}<br>%{x:.3g} FLOP/B, %{y:.3s}FLOP/s"
                "<br>%{customdata[1]:.3f} ms<extra></extra>",
            )
        )  # fmt: skip
    xs = [layer.roofline.intensity or 1.0 for _, layer in rows] or [1.0]
    for line in _ceilings(runs[0], min(xs), max(xs)):
        fig.add_trace(line)
    fig.update_xaxes(**log_axis("arithmetic intensity", "FLOP per DRAM byte"))
    fig.update_yaxes(**log_axis("attained", "FLOP/s"))
    spec = runs[0].roofline  # the full source is in the run file
    subtitle = f"ceilings of {spec.name}: {abbreviate(spec.source.split(' (')[0], 60)}"
    return layout(fig, f"roofline on {device_label(runs[0])}", 560, subtitle)


def time_figure(run: ProfileRun) -> go.Figure:
    """`run`'s layer keys in execution order: median time, coloured by roofline bound."""
    fig = go.Figure()
    total = run.layer_sum_s or 1.0
    for bound, color in (*BOUND_COLORS.items(), ("no graph nodes", "#bbbbbb")):
        mine = [
            x for x in run.layers if (x.roofline.bound if x.nodes else "no graph nodes") == bound
        ]
        fig.add_trace(
            go.Bar(
                x=[x.name for x in mine], y=[x.time_s * 1e3 for x in mine],
                name=bound if not mine or bound.startswith("no") else f"{bound}-bound",
                marker_color=color,
                customdata=[[100 * x.time_s / total, ",".join(x.ops) or "-"] for x in mine],
                hovertemplate="%{x}: %{y:.3f} ms (%{customdata[0]:.1f}%)"
                "<br>ops %{customdata[1]}<extra></extra>",
            )
        )  # fmt: skip
    order = [x.name for x in run.layers]
    named = order[:: math.ceil(len(order) / MAX_TICKS)]  # a readable subset; hover names all
    fig.update_xaxes(
        categoryorder="array", categoryarray=order, tickangle=-60, tickfont={"size": 9},
        tickvals=named, ticktext=[abbreviate(name, TICK) for name in named],
        title_text="layer (execution order)",
    )  # fmt: skip
    fig.update_yaxes(title_text="median time (ms)")
    fig.update_layout(barmode="overlay", bargap=0.1)
    title = f"{run.model} @ {run.size}: time per layer"
    return legend_inside(layout(fig, title, 560, f"{run.setup}; colour = roofline bound"))


def roofline_section(runs: Sequence[ProfileRun], detail: ProfileRun) -> Section:
    """Section 2b: one roofline per device, then `detail`'s time per layer."""
    devices: dict[str, list[ProfileRun]] = {}
    for run in runs:
        devices.setdefault(f"{device_label(run)} {run.roofline.name}", []).append(run)
    figures = [figure_html(roofline_figure(group)) for group in devices.values()]
    return Section(
        "roofline",
        "Where the time goes",
        "Roofline: each layer with MACs at its arithmetic intensity (2 x MACs per byte moved, "
        "measured where counted, else modelled) and the FLOP/s it attained; marker area grows "
        "with its time. Left of the ridge a layer is memory-bound. A CPU's ceilings are a quick "
        "probe (one copy, one 1024x1024 matmul), so well-blocked convolutions can beat its "
        "compute line. Then one run's layers in execution order (<code>--model</code> picks "
        "which).",
        [*figures, figure_html(time_figure(detail))],
    )
