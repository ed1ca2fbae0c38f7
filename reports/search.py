"""Section 3, a search directory: the space (its sample, ``sample.json``) and the ranked
candidates (``front.json``, always all of them) as CIO against capacity, the template marked and
the budgets drawn; then, where the pool has trained the front (``front_trained.json``), top-1
against CIO."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from hardnet_analysis.fronts import (
    METRIC_LABELS,
    TASK_METRICS,
    SearchFront,
    SearchSample,
    TrainedFront,
)
from hardnet_analysis.reports.page import Section, grid
from hardnet_analysis.reports.style import figure_html, layout
from hardnet_analysis.units import format_count

MAX_SAMPLE = 5000  # points of the space drawn at most (every n-th of a larger sample)


@dataclass(frozen=True)
class SearchDir:
    """What a search directory holds: its front, and its sample and trained front if any."""

    path: Path
    front: SearchFront
    sample: SearchSample | None
    trained: TrainedFront | None


def _stages(values: Sequence[Any]) -> str:
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _hover(rows: Sequence[Any], capacity: str) -> dict[str, Any]:
    """customdata and a hovertemplate naming id, k, m, n_layers and the metrics."""
    data = [[r.id, _stages(r.k), _stages(r.m), _stages(r.n_layers),
             format_count(r.metrics["cio"]), format_count(r.metrics[capacity]),
             f"{r.metrics['min_moc']:.1f}"] for r in rows]  # fmt: skip
    template = (
        "id %{customdata[0]}<br>k %{customdata[1]}<br>m %{customdata[2]}"
        "<br>n_layers %{customdata[3]}<br>CIO %{customdata[4]}, "
        f"{capacity} %{{customdata[5]}}, min MoC %{{customdata[6]}}<extra></extra>"
    )
    return {"customdata": data, "hovertemplate": template}


def _points(rows: Sequence[Any], capacity: str, **style: Any) -> go.Scatter:
    return go.Scatter(
        x=[r.metrics[capacity] for r in rows],
        y=[r.metrics["cio"] for r in rows],
        **_hover(rows, capacity),
        **style,
    )


def _budgets(fig: go.Figure, budgets: dict[str, float], capacity: str) -> None:
    """Dashed lines at the capacity and CIO budgets the search had."""
    style = {"line_dash": "dash", "line_color": "#d62728"}
    if capacity in budgets:
        text = f"{capacity} budget"
        fig.add_vline(budgets[capacity], annotation_text=text, **style)
    if "cio" in budgets:
        fig.add_hline(budgets["cio"], annotation_text="CIO budget", **style)


def space_figure(found: SearchDir) -> go.Figure:
    """CIO against capacity: the sample (within budgets or not), the ranked candidates, the
    rank-1 front joined, the template as a star, the budget lines."""
    front = found.front
    capacity = str(front.objective_info.get("capacity", "macs"))
    fig = go.Figure()
    if found.sample is not None:
        rows = found.sample.candidates
        rows = rows[:: max(1, len(rows) // MAX_SAMPLE)]
        for ok, name, color in ((False, "sample, over budget", "#c7c7c7"),
                                (True, "sample, within budgets", "#9ecae1")):  # fmt: skip
            mine = [r for r in rows if r.feasible == ok]
            fig.add_trace(_points(mine, capacity, mode="markers", name=name,
                                  marker={"size": 5, "color": color, "opacity": 0.7}))  # fmt: skip
    ranked = list(front.candidates)
    first = sorted((r for r in ranked if r.rank == 1), key=lambda r: r.metrics[capacity])
    rest = [r for r in ranked if r.rank != 1]
    fig.add_trace(_points(rest, capacity, mode="markers", name="ranked, rank > 1",
                          marker={"size": 8, "color": "#ff7f0e"}))  # fmt: skip
    fig.add_trace(_points(first, capacity, mode="lines+markers", name="Pareto front (rank 1)",
                          marker={"size": 9, "color": "#d62728"}, line={"width": 1.5}))  # fmt: skip
    t = front.template_metrics
    star = {"symbol": "star", "size": 16, "color": "#222"}
    name = Path(front.template).stem if front.template.endswith(".json") else front.template
    fig.add_trace(
        go.Scatter(
            x=[t[capacity]], y=[t["cio"]], mode="markers+text", name="template", marker=star,
            text=[name], textposition="bottom center",
            hovertemplate=f"template {front.template}<extra></extra>",
        )
    )  # fmt: skip
    _budgets(fig, dict(front.budgets), capacity)
    fig.update_xaxes(title_text=f"{capacity} (capacity, higher is better)", exponentformat="SI")
    fig.update_yaxes(title_text="CIO (elements, lower is better)", exponentformat="SI")
    title = f"{name} search @ {front.input[0]}x{front.input[1]}: CIO vs {capacity}"
    sampled = f"{len(found.sample.candidates):,} sampled of " if found.sample else ""
    within = f"{front.feasible:,} within budgets" if front.budgets else "no budgets"
    subtitle = f"{sampled}{front.space_size:,} candidates, {within}"
    return layout(fig, title, 540, subtitle)


def trained_figure(trained: TrainedFront) -> go.Figure:
    """Validation score (top-1, or mIoU for segmentation) against CIO of the trained candidates,
    the Pareto front joined."""
    label = METRIC_LABELS[TASK_METRICS[trained.task][0]]
    done = [c for c in trained.candidates if c.score is not None]
    fig = go.Figure()
    for front, name, color in ((False, "trained", "#1f77b4"),
                               (True, f"Pareto ({label} up, CIO down)", "#d62728")):  # fmt: skip
        mine = sorted((c for c in done if (c.pareto_rank == 1) == front),
                      key=lambda c: c.candidate.metrics["cio"])  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=[c.candidate.metrics["cio"] for c in mine], y=[c.score for c in mine],
                mode="lines+markers+text" if front else "markers+text", name=name,
                marker={"size": 10, "color": color}, text=[c.candidate.id[:6] for c in mine],
                textposition="top center", textfont={"size": 9},
                **_hover([c.candidate for c in mine], "macs"),
            )
        )  # fmt: skip
    fig.update_xaxes(title_text="CIO (elements)", exponentformat="SI")
    fig.update_yaxes(title_text=f"validation {label} (%)")
    pending = len(trained.candidates) - len(done)
    title = f"trained front: {label} vs CIO"
    return layout(fig, title, 540, f"{len(done)} trained, {pending} not")


def search_section(searches: Sequence[SearchDir]) -> Section:
    """Section 3 for each search directory (see the module docstring)."""
    figures = []
    for found in searches:
        figures.append(figure_html(space_figure(found)))
        if found.trained is not None:
            figures.append(figure_html(trained_figure(found.trained)))
    return Section(
        "search",
        "Architecture search",
        "Each point is a HarDNet of the space; hover for its id (its definition is "
        "<code>candidates/ID.json</code> when emitted), k, m and n_layers per stage. The "
        "Pareto front trades CIO (down) against capacity (right); the ranked candidates are "
        "those <code>front.json</code> holds (<code>--top</code>, <code>--emit</code>), the "
        "light points a random sample of the whole space (<code>sample.json</code>).",
        [grid(figures)],
    )
