"""The terminal view of a search (rich). Rows come from `search.emit.candidate_row`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table

from hardnet_analysis.search_metrics import TABLE_METRICS, metric
from hardnet_analysis.units import format_count
from search.sweep import SearchResult


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
    h, w = result.input_shape[2:]
    return f"{result.space.template_name} search @ {h}x{w}, batch {result.input_shape[0]}"


def summary(result: SearchResult) -> str:
    """One line: space, budgets, what met them, the front, the ranking, the time and rate."""
    rate = result.size / result.seconds if result.seconds > 0 else float("inf")
    front = f", {result.front_size} on the Pareto front" if result.front_size is not None else ""
    within = (
        f"{result.feasible:,} within {result.budgets.describe()}"
        if result.budgets.given()
        else "no budgets"
    )
    return (
        f"{result.size:,} candidates, {within}"
        f"{front}; ranked by {result.ranking}; {result.seconds:.2f} s ({format_count(rate)}/s)"
    )


def search_table(
    result: SearchResult, rows: Sequence[dict[str, Any]], template: dict[str, Any]
) -> Table:
    """Rank, id, m, k and n_layers per stage, params, MACs, CIO, min MoC, CIO saved against the
    template; the template's own row last."""
    table = Table(title=title(result), caption=summary(result), box=box.SIMPLE_HEAD)
    for column in ("rank", "id", "m", "k per stage", "n per stage"):
        table.add_column(column, overflow="fold")
    has_score = result.ranking not in SHOWN and any("score" in r for r in rows)
    # saved: against the template
    numbers = [*(s.label for s in TABLE_METRICS), "CIO saved"]
    for column in numbers + (["score"] if has_score else []):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*_cells(row, str(row["rank"]), has_score))
    table.add_section()
    table.add_row(*_cells(template, "template", has_score))
    return table


def _cells(row: dict[str, Any], rank: str, has_score: bool) -> list[str]:
    cells = [
        rank,
        row["id"],
        _ms(row["m"]),
        _ints(row["k"]),
        _ints(row["n_layers"]),
        *(s.text(row[s.name]) for s in TABLE_METRICS),
        f"{100 * row['cio_saved']:+.1f}%",
    ]
    if has_score:
        cells.append(f"{row['score']:.4g}" if "score" in row else "")
    return cells


TRAINED_COLUMNS = (
    "pareto_rank", "id", "status", "top1", "top5", *(s.name for s in TRAINED_METRICS), "error"
)  # fmt: skip


def trained_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows of ``front_trained.json`` for CSV: rank, id, status, accuracy, counts, error."""
    return [{key: c.get(key) for key in TRAINED_COLUMNS} for c in document["candidates"]]


def trained_table(document: dict[str, Any]) -> Table:
    """The re-ranked front: Pareto rank of (top-1 higher, CIO lower), then untrained ones."""
    table = Table(title="trained candidates (Pareto: top-1 up, CIO down)", box=box.SIMPLE)
    for column in ("rank", "id", "status", "top-1", "top-5", *(s.label for s in TRAINED_METRICS)):
        table.add_column(column, justify="left" if column in ("id", "status") else "right")
    for c in document["candidates"]:

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}%"

        table.add_row(
            "-" if c.get("pareto_rank") is None else str(c["pareto_rank"]),
            c["id"],
            c["status"],
            pct(c.get("top1")),
            pct(c.get("top5")),
            *(s.text(c[s.name]) for s in TRAINED_METRICS),
        )
    return table
