"""The terminal view of a search (rich). Rows come from `search.emit.candidate_row`; the
trained front is `hardnet_analysis.documents.fronts.TrainedFront`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box

from hardnet_analysis.documents.fronts import (
    METRIC_LABELS,
    TASK_METRICS,
    FrontCandidate,
    TrainedFront,
)
from hardnet_analysis.present.fit import Col, FitTable
from hardnet_analysis.search.sweep import SearchResult
from hardnet_analysis.search_metrics import TABLE_METRICS, metric
from hardnet_analysis.units import format_count


def _ints(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


def _ms(values: Sequence[float]) -> str:
    distinct = sorted(set(values))
    return f"{distinct[0]:g}" if len(distinct) == 1 else ",".join(f"{v:g}" for v in values)


#: Objectives whose value already has a column (no separate score column for them).
SHOWN = tuple(s.name for s in TABLE_METRICS)

#: The metrics the trained table and its CSV rows show (a selection of `METRICS`).
TRAINED_METRICS = tuple(metric(name) for name in ("params", "macs", "cio"))


def title(result: SearchResult) -> str:
    h, w = result.input_shape.hw
    return f"{result.space.template_name} search @ {h}x{w}, batch {result.input_shape.batch}"


def summary(result: SearchResult) -> str:
    """One line: space, budgets, what met them, the front, the ranking, the time and rate."""
    rate = result.size / result.seconds if result.seconds > 0 else float("inf")
    front = f", {result.front_size} on the Pareto front" if result.front_size is not None else ""
    counted = "not counted" if result.feasible is None else f"{result.feasible:,}"
    within = (
        f"{counted} within {result.budgets.describe()}" if result.budgets.given() else "no budgets"
    )
    return (
        f"{result.size:,} candidates, {within}"
        f"{front}; ranked by {result.ranking}; {result.seconds:.2f} s ({format_count(rate)}/s)"
    )


def front_line(result: SearchResult) -> str:
    """One line on the whole Pareto front, whatever the ranking: its size and capacity span,
    ``front: 111 candidates, 1.28G-4.5G MACs (every rank-1 candidate of CIO against MACs)``
    for ``hda search --budget-macs 4.5G``; '' when the sweep kept no front."""
    if result.front is None or not result.front.members:
        return ""
    label = metric(result.front.capacity).label
    lo, hi = (format_count(v) for v in result.front.span())
    span = lo if lo == hi else f"{lo}-{hi}"
    n = len(result.front.members)
    return (
        f"front: {n:,} candidate{'s' if n > 1 else ''}, {span} {label} "
        f"(every rank-1 candidate of CIO against {label})"
    )


def search_table(
    result: SearchResult, rows: Sequence[FrontCandidate], template: FrontCandidate
) -> FitTable:
    """Rank, id, m, k and n_layers per stage, params, MACs, CIO, min MoC, CIO saved against the
    template; the template's own row last. Narrow terminals abbreviate the per-stage lists and
    then leave out params, min MoC and the lists (the id names the definition file)."""
    has_score = result.ranking not in SHOWN and any(r.score is not None for r in rows)
    more = _more(rows)
    drops = {"params": 5, "min MoC": 4, "MACs": 0, "CIO": 0}
    columns = [
        Col("rank", drop=7),
        Col("id"),
        Col("m", drop=3, shorten=True),
        Col("k per stage", drop=1, shorten=True),
        Col("n per stage", drop=2, shorten=True),
        *([Col("widths", drop=2, shorten=True)] if "widths" in more else []),
        *([Col("input")] if "input" in more else []),
        *(Col(s.label, "right", drop=drops.get(s.label, 6)) for s in TABLE_METRICS),
        Col("CIO saved", "right"),  # against the template
        *([Col("score", "right")] if has_score else []),
    ]
    table = FitTable(title(result), columns, caption=summary(result), box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(*_cells(row, str(row.rank), has_score, more))
    table.add_section()
    table.add_row(*_cells(template, "template", has_score, more))
    return table


def _more(rows: Sequence[FrontCandidate]) -> tuple[str, ...]:
    """The searched choices beyond k, m and n_layers the rows hold: ``("widths", "input")``
    under ``--widths`` and ``--input 224,256``; empty for the default search."""
    return tuple(n for n in ("widths", "input") if any(getattr(r, n) for r in rows))


def _cells(
    row: FrontCandidate, rank: str, has_score: bool, more: tuple[str, ...] = ()
) -> list[str]:
    size = f"{row.input[0]}x{row.input[1]}" if row.input else "-"
    cells = [
        rank,
        row.id,
        _ms(row.m),
        _ints(row.k),
        _ints(row.n_layers),
        *([_ints(row.widths or ())] if "widths" in more else []),
        *([size] if "input" in more else []),
        *(s.text(row.metrics[s.name]) for s in TABLE_METRICS),
        f"{100 * row.cio_saved:+.1f}%",
    ]
    if has_score:
        cells.append("" if row.score is None else f"{row.score:.4g}")
    return cells


def trained_columns(task: str) -> tuple[str, ...]:
    """The CSV columns of a trained front: rank, id, status, the task's two metrics (top-1 and
    top-5, or mIoU and pixel accuracy), counts, error."""
    score, second, _ = TASK_METRICS[task]
    names = (s.name for s in TRAINED_METRICS)
    return ("pareto_rank", "id", "status", score, second, *names, "error")


def trained_rows(front: TrainedFront) -> list[dict[str, Any]]:
    """Flat rows of ``front_trained.json`` for CSV (`trained_columns`)."""
    columns = trained_columns(front.task)
    rows = (c.to_dict() for c in front.candidates)
    return [{key: row.get(key) for key in columns} for row in rows]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def trained_table(front: TrainedFront) -> FitTable:
    """The re-ranked front: Pareto rank of (score higher, CIO lower), then untrained ones; the
    score is top-1, or mIoU for a segmentation front."""
    score, second, _ = TASK_METRICS[front.task]
    columns = [
        Col("rank", "right"),
        Col("id"),
        Col("status"),
        Col(METRIC_LABELS[score], "right"),
        Col(METRIC_LABELS[second], "right", drop=1),
        *(Col(s.label, "right", drop=2 if s.name == "params" else 0) for s in TRAINED_METRICS),
    ]
    title = f"trained candidates (Pareto: {METRIC_LABELS[score]} up, CIO down)"
    table = FitTable(title, columns, box=box.SIMPLE)
    for c in front.candidates:
        row = c.to_dict()
        table.add_row(
            "-" if c.pareto_rank is None else str(c.pareto_rank),
            c.candidate.id,
            c.status,
            _pct(row[score]),
            _pct(row[second]),
            *(s.text(c.candidate.metrics[s.name]) for s in TRAINED_METRICS),
        )
    return table
