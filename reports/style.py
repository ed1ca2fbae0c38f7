"""What every figure of the report shares: colours, fonts, axis conventions and the figure's
HTML (plotly.js is added once, by `reports.page`)."""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go

#: Colours by name, in first-seen order: models, runs, op kinds (plotly's and D3's palettes).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
)  # fmt: skip
BOUND_COLORS = {"memory": "#d62728", "compute": "#1f77b4"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def colors(names: Iterable[str]) -> dict[str, str]:
    """One palette colour per distinct name, in first-seen order (wrapping after 16)."""
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(name, PALETTE[len(out) % len(PALETTE)])
    return out


def layout(fig: go.Figure, title: str, height: int, subtitle: str = "") -> go.Figure:
    """Title (with a smaller second line), white background, legend below the plot so it
    never narrows it, margins that leave room for the axis titles."""
    text = f"{title}<br><span style='font-size:12px;color:#555'>{subtitle}</span>"
    fig.update_layout(
        title={"text": text if subtitle else title, "x": 0.01, "xanchor": "left",
               "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 18}},
        height=height,
        template="plotly_white",
        font={"family": FONT, "size": 12},
        margin={"l": 70, "r": 44, "t": 66 + 16 * (subtitle.count("<br>") + 1) if subtitle else 60,
                "b": 40},
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0, "font": {"size": 11}},
        hoverlabel={"align": "left"},
        modebar={"orientation": "v"},  # in the right margin, clear of the title
    )  # fmt: skip
    return fig


def legend_inside(fig: go.Figure) -> go.Figure:
    """The legend in the plot's top right corner, on white: for figures whose x tick labels
    are long and would run into a legend below."""
    fig.update_layout(
        legend={"orientation": "v", "x": 0.995, "xanchor": "right", "y": 0.99, "yanchor": "top",
                "bgcolor": "rgba(255,255,255,0.85)", "bordercolor": "#ddd", "borderwidth": 1},
        margin={"b": 40},
    )  # fmt: skip
    return fig


def log_axis(title: str, unit: str) -> dict[str, object]:
    """A log axis titled with its unit, a tick per decade in SI prefixes (10M, 100M, 1G)."""
    return {
        "type": "log",
        "title": {"text": f"{title} ({unit})"},
        "exponentformat": "SI",
        "dtick": 1,
    }


def figure_html(fig: go.Figure, height: int | None = None) -> str:
    """A `<div>` drawing `fig` at the container's width (plotly.js must already be loaded)."""
    html: str = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        default_width="100%",
        default_height=f"{height or fig.layout.height or 450}px",
        config={"responsive": True, "displaylogo": False},
    )
    return f"<div class='figure'>{html}</div>"
