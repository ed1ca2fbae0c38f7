"""Section 3, a search directory: the space (its sample, ``sample.json``) and the whole Pareto
front (``front.json``'s ``front``) as CIO against capacity, a staircase with the emitted and
trained candidates marked, the template starred and the budgets drawn; what the front's members
chose per stage; with a device model, their predicted latency against CIO; then, where the pool
has trained the front (``front_trained.json``), top-1 against CIO. A ``front.json`` written
before the whole front was kept shows its ranked candidates, named as such."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hardnet_analysis.documents.fronts import (
    METRIC_LABELS,
    TASK_METRICS,
    FrontMember,
    SearchFront,
    SearchSample,
    TrainedFront,
)
from hardnet_analysis.reports.page import Section, grid
from hardnet_analysis.reports.style import figure_html, layout
from hardnet_analysis.units import format_count

MAX_SAMPLE = 5000  # points of the space drawn at most (every n-th of a larger sample)
#: Trace names the figures' tests look up.
FRONT = "whole front"
EMITTED = "emitted"
TRAINED = "trained"
RANKED = "ranked candidates (front.json rows)"
#: The per-stage choices drawn, top to bottom, with their row titles.
CHOICES = (("k", "k"), ("n_layers", "n_layers"), ("m", "m"))


@dataclass(frozen=True)
class SearchDir:
    """What a search directory holds: its front, and its sample and trained front if any."""

    path: Path
    front: SearchFront
    sample: SearchSample | None
    trained: TrainedFront | None


#: The most front members a figure draws: a 10^12-candidate space has a front of 177,824, which
#: drawn whole makes a 157 MB page that takes minutes to open.
DRAWN = 2000


def drawn(members: Sequence[FrontMember]) -> Sequence[FrontMember]:
    """At most `DRAWN` of the front's members (ordered by capacity), evenly spaced along that
    order, the first and last always among them: all of them when they are fewer."""
    if len(members) <= DRAWN:
        return members
    picked = np.unique(np.linspace(0, len(members) - 1, DRAWN).round().astype(np.int64))
    return [members[i] for i in picked]


def _drawn_note(members: Sequence[FrontMember]) -> str:
    """'' when every member is drawn, else how many are."""
    shown = len(drawn(members))
    return "" if shown == len(members) else f"; {shown:,} of them drawn, evenly by capacity"


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


def _capacity(front: SearchFront) -> str:
    """The capacity axis: the whole front's, else the Pareto ranking's, else MACs."""
    if front.front is not None:
        return front.front.capacity
    return str(front.objective_info.get("capacity", "macs"))


def _trained_ids(found: SearchDir) -> set[str]:
    """Ids of the candidates the pool finished training (none without a trained front)."""
    if found.trained is None:
        return set()
    return {c.candidate.id for c in found.trained.candidates if c.score is not None}


def _sample(fig: go.Figure, sample: SearchSample, capacity: str) -> None:
    """The space's sample as faint background points, within budgets or not."""
    rows = sample.candidates
    rows = rows[:: max(1, len(rows) // MAX_SAMPLE)]
    for ok, name, color in ((False, "sample, over budget", "#c7c7c7"),
                            (True, "sample, within budgets", "#9ecae1")):  # fmt: skip
        mine = [r for r in rows if r.feasible == ok]
        fig.add_trace(_points(mine, capacity, mode="markers", name=name,
                              marker={"size": 4, "color": color, "opacity": 0.45}))  # fmt: skip


def _template(fig: go.Figure, front: SearchFront, capacity: str) -> str:
    """The template as a labelled star; returns its short name."""
    t = front.template_metrics
    star = {"symbol": "star", "size": 16, "color": "#222"}
    name = Path(front.template).stem if front.template.endswith(".json") else front.template
    fig.add_trace(
        go.Scatter(
            x=[t[capacity]], y=[t["cio"]], mode="markers+text", name="template", marker=star,
            text=[name], textposition="top center",
            hovertemplate=f"template {front.template}<extra></extra>",
        )
    )  # fmt: skip
    return name


def space_figure(found: SearchDir) -> go.Figure:
    """CIO against capacity: the sample (within budgets or not) faint, the whole front as a
    staircase through its members, the emitted candidates ringed, the trained ones as
    diamonds, the template as a star, the budget lines. Without a whole front (an older
    ``front.json``), its ranked candidates instead, named as such."""
    front = found.front
    capacity = _capacity(front)
    fig = go.Figure()
    if found.sample is not None:
        _sample(fig, found.sample, capacity)
    emitted = [r for r in front.candidates if r.definition is not None]
    if front.front is not None:
        members = drawn(front.front.members)
        # "vh": up to the next member's CIO, then across to its capacity: the line bounds what
        # the front dominates (every point on it is matched or beaten by a member).
        fig.add_trace(_points(members, capacity, mode="lines+markers", line_shape="vh",
                              name=f"{FRONT} ({len(front.front.members):,})", line={"width": 1.5},
                              marker={"size": 6, "color": "#d62728"}))  # fmt: skip
        ringed = {"size": 13, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#222"}}
        fig.add_trace(_points(emitted, capacity, mode="markers", name=f"{EMITTED} "
                              f"({len(emitted)})", marker=ringed))  # fmt: skip
    else:
        fig.add_trace(_points(front.candidates, capacity, mode="markers", name=RANKED,
                              marker={"size": 8, "color": "#ff7f0e"}))  # fmt: skip
    done = _trained_ids(found)
    trained = [r for r in front.candidates if r.id in done]
    if trained:
        diamond = {"symbol": "diamond", "size": 9, "color": "#2ca02c",
                   "line": {"width": 1, "color": "#fff"}}  # fmt: skip
        fig.add_trace(_points(trained, capacity, mode="markers", name=f"{TRAINED} "
                              f"({len(trained)})", marker=diamond))  # fmt: skip
    name = _template(fig, front, capacity)
    _budgets(fig, dict(front.budgets), capacity)
    fig.update_xaxes(title_text=f"{capacity} (capacity, higher is better)", exponentformat="SI")
    fig.update_yaxes(title_text="CIO (elements, lower is better)", exponentformat="SI")
    title = f"{name} search @ {front.input[0]}x{front.input[1]}: CIO vs {capacity}"
    return layout(fig, title, 560, _subtitle(found, capacity))


def _subtitle(found: SearchDir, capacity: str) -> str:
    """Sampled, swept and within budgets; the whole front's size and span (or its absence)."""
    front = found.front
    sampled = f"{len(found.sample.candidates):,} sampled of " if found.sample else ""
    counted = "not counted" if front.feasible is None else f"{front.feasible:,}"
    within = f"{counted} within budgets" if front.budgets else "no budgets"
    if front.front is None or not front.front.members:
        kept = "front.json holds the ranked candidates only (search again for the whole front)"
    else:
        values = [m.metrics[capacity] for m in front.front.members]
        span = f"{format_count(min(values))}-{format_count(max(values))} {capacity}"
        kept = f"whole front {len(values):,} members, {span}{_drawn_note(front.front.members)}"
    return f"{sampled}{front.space_size:,} candidates, {within}<br>{kept}"


def _options(
    front: SearchFront, name: str, stages: int, members: Sequence[FrontMember] = ()
) -> list[tuple[float, float]]:
    """Per stage, the smallest and largest value of choice `name` the space offered (the space
    file's lists: m may be one list for all stages; the members' own values where the space
    names none)."""
    space = front.space
    out = []
    for stage in range(stages):
        spec = space["stages"][stage] if stage < len(space.get("stages", ())) else {}
        chosen = [getattr(m, name)[stage] for m in members]
        values = spec.get(name, space.get(name)) or chosen or [0.0]
        out.append((float(min(values)), float(max(values))))
    return out


def _shared_m(members: Sequence[FrontMember]) -> bool:
    """True when every member uses one m in all its stages (a global m list)."""
    return all(len(set(m.m)) == 1 for m in members)


def _position(value: float, lo: float, hi: float) -> float:
    """Where `value` sits in the stage's options: 0 the smallest, 1 the largest (0.5 for a
    stage of one option)."""
    return 0.5 if hi == lo else (value - lo) / (hi - lo)


def _cell(member: FrontMember, value: float, capacity: str) -> list[str]:
    """A heatmap cell's hover data: the member's id, the choice's value, capacity and CIO."""
    counts = (format_count(member.metrics[capacity]), format_count(member.metrics["cio"]))
    return [member.id, f"{value:g}", *counts]


def _choice_rows(
    front: SearchFront, members: Sequence[FrontMember], name: str
) -> tuple[list[str], list[list[float]], list[list[list[str]]]]:
    """One heatmap's y labels, z (each member's position in each stage's options) and hover
    data (id, value, capacity, CIO) for choice `name`; m on one row where it is shared."""
    stages = len(members[0].k)
    bounds = _options(front, name, stages, members)
    capacity = _capacity(front)
    shown = range(1) if name == "m" and _shared_m(members) else range(stages)
    labels = ["all" if len(shown) == 1 and stages > 1 else str(s + 1) for s in shown]
    z, data = [], []
    for stage in shown:
        values = [float(getattr(m, name)[stage]) for m in members]
        z.append([_position(v, *bounds[stage]) for v in values])
        data.append([_cell(m, v, capacity) for m, v in zip(members, values, strict=True)])
    return labels, z, data


def _searched(members: Sequence[FrontMember]) -> list[tuple[str, str]]:
    """The heatmaps to draw: k, n_layers, m, then the transition widths and the input size
    where the search chose them (``--widths``, ``--input 224,256``)."""
    more = [("widths", "widths")] * (members[0].widths is not None)
    return [*CHOICES, *more, *[("input", "input")] * (members[0].input is not None)]


def _input_rows(
    members: Sequence[FrontMember], capacity: str
) -> tuple[list[str], list[list[float]], list[list[list[str]]]]:
    """The input-size heatmap (one row): each member's size among those searched, by pixels
    (224x224 the smallest of 224, 256, 288: 0), hover ``224x224``."""
    pixels = [m.input[0] * m.input[1] if m.input else 0 for m in members]
    lo, hi = min(pixels), max(pixels)
    z = [[_position(p, lo, hi) for p in pixels]]
    data = [[_cell(m, 0.0, capacity) for m in members]]
    for cells, m in zip(data[0], members, strict=True):
        cells[1] = f"{m.input[0]}x{m.input[1]}" if m.input else ""
    return ["all"], z, data


def _colorbar(title: str, **more: Any) -> dict[str, Any]:
    """A slim colour bar titled along its right side (clear of its end labels)."""
    return {"title": {"text": title, "side": "right"}, "thickness": 12, "len": 0.7, **more}


def _room_for_colorbar(fig: go.Figure) -> go.Figure:
    """A right margin that holds the colour bar left of the vertical modebar."""
    fig.update_layout(margin={"r": 150})
    return fig


def _choice_hover(name: str, capacity: str) -> str:
    """A heatmap cell's hover: member, id, stage, the choice's value, capacity and CIO."""
    return (
        f"member %{{x}}: id %{{customdata[0]}}<br>stage %{{y}}: {name} %{{customdata[1]}}<br>"
        f"{capacity} %{{customdata[2]}}, CIO %{{customdata[3]}}<extra></extra>"
    )


def choices_figure(front: SearchFront) -> go.Figure | None:
    """What the whole front's members chose per stage, members left to right by capacity: one
    heatmap row per stage for k and n_layers (and m, on one row where it is shared), coloured
    by where the choice sits in the stage's options (smallest to largest). None without a
    whole front."""
    if front.front is None or not front.front.members:
        return None
    members = drawn(front.front.members)
    capacity = _capacity(front)
    choices = _searched(members)
    rows = [
        _input_rows(members, capacity) if name == "input" else _choice_rows(front, members, name)
        for name, _ in choices
    ]
    heights = [len(labels) + 1 for labels, _, _ in rows]
    fig = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=heights)  # fmt: skip
    x = list(range(len(members)))
    gap = 1 if len(members) <= 200 else 0  # past ~200 columns a gap would hide the cells
    for row, ((name, title), (labels, z, data)) in enumerate(zip(choices, rows, strict=True), 1):
        fig.add_trace(
            go.Heatmap(x=x, y=labels, z=z, customdata=data, coloraxis="coloraxis", xgap=gap,
                       ygap=1, hovertemplate=_choice_hover(name, capacity), name=name),
            row=row, col=1,
        )  # fmt: skip
        fig.update_yaxes(title_text=title, autorange="reversed", row=row, col=1)
    ticks = x[:: max(1, len(x) // 8)]
    fig.update_xaxes(tickvals=ticks, ticktext=[format_count(members[i].metrics[capacity])
                                               for i in ticks], row=len(rows), col=1)  # fmt: skip
    fig.update_xaxes(title_text=f"front members by {capacity} (capacity), ascending",
                     row=len(rows), col=1)  # fmt: skip
    ends = {"tickvals": [0, 1], "ticktext": ["smallest", "largest"]}
    colorbar = _colorbar("choice among the stage's options", **ends)
    fig.update_layout(
        coloraxis={"colorscale": "Viridis", "cmin": 0, "cmax": 1, "colorbar": colorbar}
    )
    subtitle = (
        f"{len(front.front.members):,} members{_drawn_note(front.front.members)}; each cell: "
        "the stage's choice within the space's options (hover for the value)"
    )
    fig = layout(fig, "what the front chose per stage", 200 + 26 * sum(heights), subtitle)
    return _room_for_colorbar(fig)


def latency_figure(front: SearchFront) -> go.Figure | None:
    """The whole front's predicted latency (``--device-model``) against CIO, coloured by
    capacity, the emitted members ringed; None without a front or predictions."""
    if front.front is None or not front.front.members:
        return None
    members = drawn(front.front.members)
    if any(m.latency_s is None for m in members):
        return None
    capacity = _capacity(front)
    emitted = {r.id for r in front.candidates if r.definition is not None}
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[m.metrics["cio"] for m in members],
            y=[(m.latency_s or 0.0) * 1e3 for m in members], mode="markers", name=FRONT,
            marker={"size": 8, "color": [m.metrics[capacity] for m in members],
                    "colorscale": "Cividis", "showscale": True,
                    "colorbar": _colorbar(f"{capacity} (capacity)", exponentformat="SI")},
            **_hover(members, capacity),
        )
    )  # fmt: skip
    ringed = [m for m in front.front.members if m.id in emitted]
    fig.add_trace(
        go.Scatter(
            x=[m.metrics["cio"] for m in ringed], y=[(m.latency_s or 0.0) * 1e3 for m in ringed],
            mode="markers", name=f"{EMITTED} ({len(ringed)})", hoverinfo="skip",
            marker={"size": 14, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "#222"}},
        )
    )  # fmt: skip
    fig.update_xaxes(title_text="CIO (elements)", exponentformat="SI")
    fig.update_yaxes(title_text="predicted latency (ms)")
    device = front.objective_info.get("device", "the device model")
    whole = front.front.members
    subtitle = (
        f"{len(whole):,} members{_drawn_note(whole)}, colour: {capacity}; predicted on {device}"
    )
    return _room_for_colorbar(layout(fig, "front: predicted latency vs CIO", 540, subtitle))


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
        drawn = [space_figure(found), choices_figure(found.front), latency_figure(found.front)]
        if found.trained is not None:
            drawn.append(trained_figure(found.trained))
        figures += [figure_html(fig) for fig in drawn if fig is not None]
    return Section(
        "search",
        "Architecture search",
        "Each point is a HarDNet of the space; hover for its id (its definition is "
        "<code>candidates/ID.json</code> when emitted), k, m and n_layers per stage. The "
        "whole Pareto front (every candidate within the budgets that none beats on both CIO and "
        "capacity) is the staircase: CIO falls downwards, capacity grows to the right. The "
        "ringed points are the emitted candidates (<code>--emit</code>), the diamonds those "
        "trained, the light points a random sample of the whole space "
        "(<code>sample.json</code>). The heatmap shows what each front member chose per stage; "
        "with <code>--device-model</code>, the front's predicted latency is drawn against CIO.",
        [grid(figures)],
    )
