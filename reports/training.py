"""Section 4, training runs: loss, top-1 and learning rate per epoch, every run overlaid (one
colour per run, training dashed and validation solid)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from hardnet_analysis.reports.page import Section, grid
from hardnet_analysis.reports.style import colors, figure_html, layout

#: Panel title, y-axis title and the (metrics column, line label, dash) drawn in it.
PANELS = (
    ("loss", "cross-entropy", (("train_loss", "train", "dash"), ("val_loss", "val", "solid"))),
    ("top-1", "%", (("train_top1", "train", "dash"), ("val_top1", "val", "solid"))),
    ("learning rate", "lr", (("lr", "", "solid"),)),
)


@dataclass(frozen=True)
class TrainingRun:
    """A run directory's name (as the legend shows it) and its per-epoch metrics rows."""

    name: str
    rows: Sequence[dict[str, Any]]


def panel(runs: Sequence[TrainingRun], title: str, unit: str, lines: Sequence[Any]) -> go.Figure:
    """One metric per epoch for every run."""
    color = colors(run.name for run in runs)
    fig = go.Figure()
    for run in runs:
        for column, label, dash in lines:
            rows = [r for r in run.rows if r.get(column) is not None]
            name = f"{run.name} {label}".strip()
            fig.add_trace(
                go.Scatter(
                    x=[r["epoch"] for r in rows], y=[r[column] for r in rows],
                    mode="lines+markers", name=run.name, legendgroup=run.name,
                    showlegend=dash == "solid",
                    line={"color": color[run.name], "dash": dash},
                    hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                )
            )  # fmt: skip
    fig.update_xaxes(title_text="epoch", dtick=1 if max(_epochs(runs), default=0) <= 12 else None)
    fig.update_yaxes(title_text=unit)
    dashed = "training dashed, validation solid" if len(lines) > 1 else ""
    return layout(fig, title, 440, dashed)


def _epochs(runs: Sequence[TrainingRun]) -> list[int]:
    return [int(r["epoch"]) for run in runs for r in run.rows]


def training_section(runs: Sequence[TrainingRun]) -> Section:
    """Section 4 for `runs`."""
    figures = [figure_html(panel(runs, title, unit, lines)) for title, unit, lines in PANELS]
    return Section(
        "training",
        "Training runs",
        "Per epoch, every run overlaid: training dashed, validation solid; top-1 in percent.",
        [grid(figures)],
    )
