"""The metrics a HarDNet search measures per candidate, declared once.

`METRICS` lists them in the order the front documents and CSV rows write them. Everything that
holds, combines, bounds, ranks or shows them derives from it: the search's part costs and
per-candidate arrays (``search.evaluate``), candidates and budgets (``search.sweep``), the
objectives (``search.objectives``), the front documents (`hardnet_analysis.documents.fronts`)
and the tables (``search.present``). The typed containers still name each metric as a field,
for the type checker; `check_fields` makes a container that disagrees with `METRICS` fail at
import.

A candidate is measured part by part (stem, stages, head); a metric `combine`s over the parts by
``"sum"`` (counts: params, MACs, CIO, activation bytes) or ``"min"`` (the smallest layer MoC).
A budget caps a summed metric (at most N) and floors a minimum (every layer at least X).
Example: HarDNet-68 at 224x224, batch 1, has params 17,565,348, MACs 4,246,114,304 and
CIO 11,468,940 elements.

Light on purpose (no numpy): the CLI reads the names when it builds its parser.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from hardnet_analysis.units import format_count


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its `name` (field and JSON key), `unit`, how it `combine`s over a candidate's
    parts, which way is better as an objective, and how tables show it.

    `integer` metrics are exact counts (int64 arrays, JSON integers); the others are ratios
    (float64, JSON numbers). `label` heads its table column; `shown` says whether the search
    table and the no-candidate message show it. `meaning` describes it as an objective.
    """

    name: str
    unit: str
    combine: Literal["sum", "min"]
    lower_is_better: bool
    integer: bool
    label: str
    meaning: str
    shown: bool = True

    @property
    def identity(self) -> float:
        """The value of no parts: 0 for a sum, inf for a minimum (a part without convolutions
        has no MoC, so it never sets the minimum)."""
        return 0 if self.combine == "sum" else math.inf

    @property
    def budget_is_floor(self) -> bool:
        """True when a budget on this metric is a lower bound (a minimum is floored)."""
        return self.combine == "min"

    @property
    def objective_text(self) -> str:
        """What ranking by it means, e.g. ``"memory traffic (CIO elements), lower first"``."""
        return f"{self.meaning}, {'lower' if self.lower_is_better else 'higher'} first"

    def text(self, value: float) -> str:
        """`value` as a table cell: counts as ``4.25G``, ratios with one decimal."""
        return format_count(value) if self.integer else f"{value:.1f}"


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("params", "parameters", "sum", False, True, "params", "parameters (capacity)"),
    MetricSpec("macs", "multiply-adds", "sum", False, True, "MACs", "MACs used (capacity)"),
    MetricSpec("cio", "elements", "sum", True, True, "CIO", "memory traffic (CIO elements)"),
    MetricSpec(
        "min_moc",
        "MACs per CIO element",
        "min",
        False,
        False,
        "min MoC",
        "smallest layer MoC (density)",
    ),
    MetricSpec(
        "act_bytes",
        "bytes",
        "sum",
        True,
        True,
        "act bytes",
        "activation bytes written",
        shown=False,
    ),
)

#: The metric names, in `METRICS` order.
METRIC_NAMES: tuple[str, ...] = tuple(spec.name for spec in METRICS)

#: The metrics shown in the search table and the no-candidate message, in `METRICS` order.
TABLE_METRICS: tuple[MetricSpec, ...] = tuple(spec for spec in METRICS if spec.shown)

_BY_NAME = {spec.name: spec for spec in METRICS}


def metric(name: str) -> MetricSpec:
    """The spec of metric `name`; KeyError names the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"unknown search metric {name!r}; known: {', '.join(METRIC_NAMES)}"
        ) from None


def check_fields(cls: type, *others: str) -> None:
    """Raise TypeError unless dataclass `cls` has a field per metric plus exactly `others`.

    Called at import by each typed container, so one that misses or adds a metric fails at once.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    expected = set(METRIC_NAMES) | set(others)
    if fields != expected:
        missing, extra = sorted(expected - fields), sorted(fields - expected)
        raise TypeError(f"{cls.__name__} disagrees with METRICS: missing {missing}, extra {extra}")
