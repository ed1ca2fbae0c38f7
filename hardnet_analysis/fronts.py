"""The search's two documents, each a frozen dataclass with one writer and one reader.

``DIR/front.json`` is a `SearchFront`: what ``hda search --out DIR`` found, best first, each
candidate (`FrontCandidate`) with its id, Pareto or objective rank, per-stage k/m/n_layers, its
metrics (one per `hardnet_analysis.search_metrics.METRICS` entry, counts at the search's input
and batch), `cio_saved` (a fraction of the template's CIO: 0.1 means 10% less) and its definition
file relative to DIR::

    {"format": "hda-search-front", "version": 1, "template": "hardnet68", "input": [224, 224],
     "batch": 1, "dtype": "fp32", "budgets": {"macs": 4500000000}, "objective": "pareto (CIO vs
     macs)", "objective_info": {...}, "space_size": 3037500, "feasible": ..., "front_size": ...,
     "template_metrics": {"params": ..., ...}, "candidates": [{"id": "...", "rank": 1, "k": [...],
     "m": [...], "n_layers": [...], "params": ..., "macs": ..., "cio": ..., "min_moc": ...,
     "act_bytes": ..., "cio_saved": ..., "definition": "candidates/<id>.json"}, ...]}

``DIR/front_trained.json`` is a `TrainedFront`, written by the training pool: every trained
candidate (`TrainedCandidate`: the front's row plus status, validation top-1/top-5 in percent,
its last error and run directory) re-ranked by Pareto rank of top-1 (higher is better) against
CIO (lower is better), then the untrained ones.

Both live here, below the CLI, because the trainer's pool reads and writes them. A file of
another format or version, or with a missing or mistyped key, is a one-line `UsageError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hardnet_analysis.fileio import atomic_write_json
from hardnet_analysis.jsondoc import Node, open_document
from hardnet_analysis.search_metrics import METRIC_NAMES, metric

FRONT_FILE = "front.json"
TRAINED_FILE = "front_trained.json"

#: Metric values by name: int counts, float ratios.
MetricValues = dict[str, float]


def _read_metrics(node: Node, names: tuple[str, ...] | list[str]) -> MetricValues:
    """The metrics `names` of `node`, each typed as its spec says."""
    values: MetricValues = {}
    for name in names:
        try:
            spec = metric(name)
        except KeyError:
            raise node.error(f"has {name!r}, which is not a search metric") from None
        values[name] = node.integer(name) if spec.integer else node.number(name)
    return values


@dataclass(frozen=True)
class FrontCandidate:
    """One row of the front (see the module docstring); `score` is the objective's value (None
    under Pareto ranking); `definition` is None for rows shown but not written."""

    id: str
    rank: int
    k: tuple[int, ...]
    m: tuple[float, ...]
    n_layers: tuple[int, ...]
    metrics: MetricValues
    cio_saved: float
    score: float | None = None
    definition: str | None = None

    def __post_init__(self) -> None:
        if set(self.metrics) != set(METRIC_NAMES):
            raise ValueError(f"metrics must be exactly {METRIC_NAMES}, not {tuple(self.metrics)}")

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id,
            "rank": self.rank,
            "k": list(self.k),
            "m": list(self.m),
            "n_layers": list(self.n_layers),
            **{name: self.metrics[name] for name in METRIC_NAMES},
            "cio_saved": self.cio_saved,
        }
        if self.score is not None:
            row["score"] = self.score
        if self.definition is not None:
            row["definition"] = self.definition
        return row

    @classmethod
    def read(cls, node: Node) -> FrontCandidate:
        return cls(
            id=node.text("id"),
            rank=node.integer("rank"),
            k=node.integers("k"),
            m=node.numbers("m"),
            n_layers=node.integers("n_layers"),
            metrics=_read_metrics(node, METRIC_NAMES),
            cio_saved=node.number("cio_saved"),
            score=node.optional_number("score"),
            definition=node.optional_text("definition"),
        )


@dataclass(frozen=True)
class SearchFront:
    """``front.json`` (see the module docstring): the search's settings and summary, the
    template's own metrics and the candidates best first."""

    format: ClassVar[str] = "hda-search-front"
    version: ClassVar[int] = 1

    template: str
    input: tuple[int, int]
    batch: int
    dtype: str
    budgets: MetricValues
    objective: str
    objective_info: dict[str, Any]
    space_size: int
    feasible: int
    front_size: int | None
    template_metrics: MetricValues
    candidates: tuple[FrontCandidate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "template": self.template,
            "input": list(self.input),
            "batch": self.batch,
            "dtype": self.dtype,
            "budgets": self.budgets,
            "objective": self.objective,
            "objective_info": self.objective_info,
            "space_size": self.space_size,
            "feasible": self.feasible,
            "front_size": self.front_size,
            "template_metrics": {name: self.template_metrics[name] for name in METRIC_NAMES},
            "candidates": [c.to_dict() for c in self.candidates],
        }

    def write(self, path: str | Path) -> Path:
        """Write the document to `path` atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> SearchFront:
        node = open_document(path, "front file", cls.format, cls.version)
        hw = node.integers("input")
        if len(hw) != 2:
            raise node.error(f"'input' must be [height, width], not {list(hw)}")
        budgets = node.child("budgets")
        return cls(
            template=node.text("template"),
            input=(hw[0], hw[1]),
            batch=node.integer("batch"),
            dtype=node.text("dtype"),
            budgets=_read_metrics(budgets, list(budgets.data)),
            objective=node.text("objective"),
            objective_info=node.mapping("objective_info"),
            space_size=node.integer("space_size"),
            feasible=node.integer("feasible"),
            front_size=node.optional_integer("front_size"),
            template_metrics=_read_metrics(node.child("template_metrics"), METRIC_NAMES),
            candidates=tuple(FrontCandidate.read(c) for c in node.children("candidates")),
        )


#: The training statuses of a candidate: finished, out of retries, or still to train.
STATUSES = ("done", "failed", "pending")


@dataclass(frozen=True)
class TrainedCandidate:
    """A front candidate after training: `status` (one of `STATUSES`), the best and final
    validation top-1 and the final top-5 (percent; None until trained), the last failure's
    one-line error, its run directory (relative to DIR) and its Pareto rank among the trained
    (None for the others)."""

    candidate: FrontCandidate
    status: str
    top1: float | None
    top5: float | None
    final_top1: float | None
    error: str | None
    run: str
    pareto_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.candidate.to_dict(),
            "status": self.status,
            "top1": self.top1,
            "top5": self.top5,
            "final_top1": self.final_top1,
            "error": self.error,
            "run": self.run,
            "pareto_rank": self.pareto_rank,
        }

    @classmethod
    def read(cls, node: Node) -> TrainedCandidate:
        status = node.text("status")
        if status not in STATUSES:
            raise node.error(f"'status' must be one of {', '.join(STATUSES)}, not {status!r}")
        return cls(
            candidate=FrontCandidate.read(node),
            status=status,
            top1=node.optional_number("top1"),
            top5=node.optional_number("top5"),
            final_top1=node.optional_number("final_top1"),
            error=node.optional_text("error"),
            run=node.text("run"),
            pareto_rank=node.optional_integer("pareto_rank"),
        )


@dataclass(frozen=True)
class TrainedFront:
    """``front_trained.json`` (see the module docstring): trained candidates first, by
    (Pareto rank, -top-1, CIO), then the others in front order."""

    format: ClassVar[str] = "hda-search-front-trained"
    version: ClassVar[int] = 1
    #: What the Pareto rank ranks: top-1 maximised, CIO minimised.
    objectives: ClassVar[dict[str, str]] = {"top1": "max", "cio": "min"}

    candidates: tuple[TrainedCandidate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "objectives": dict(self.objectives),
            "candidates": [c.to_dict() for c in self.candidates],
        }

    def write(self, path: str | Path) -> Path:
        """Write the document to `path` atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> TrainedFront:
        node = open_document(path, "trained front file", cls.format, cls.version)
        return cls(tuple(TrainedCandidate.read(c) for c in node.children("candidates")))
