"""The search's three documents, each a frozen dataclass with one writer and one reader.

``DIR/front.json`` is a `SearchFront`: what ``hda search --out DIR`` found, under the front's
own id (12 hex digits of the SHA-256 of what decides the front: the space, the template's
definition, the input, dtype, budgets and objective), with the command that found it and its
space (as a space file holds it). Its candidates come best first, each
candidate (`FrontCandidate`) with its id, Pareto or objective rank, per-stage k/m/n_layers, its
metrics (one per `hardnet_analysis.search_metrics.METRICS` entry, counts at the search's input
and batch), `cio_saved` (a fraction of the template's CIO: 0.1 means 10% less) and its definition
file relative to DIR::

    {"format": "hda-search-front", "version": 2, "id": "3f2a...", "command": "hda search ...",
     "space": {"format": "hda-search-space", ...}, "template": "hardnet68", "input": [224, 224],
     "batch": 1, "dtype": "fp32", "budgets": {"macs": 4500000000}, "objective": "pareto (CIO vs
     macs)", "objective_info": {...}, "space_size": 3037500, "feasible": ..., "front_size": ...,
     "template_metrics": {"params": ..., ...}, "candidates": [{"id": "...", "rank": 1, "k": [...],
     "m": [...], "n_layers": [...], "params": ..., "macs": ..., "cio": ..., "min_moc": ...,
     "act_bytes": ..., "cio_saved": ..., "definition": "candidates/<front id>/<id>.json"}, ...],
     "front": {"capacity": "macs", "members": [{"id": "...", "index": 123, "k": [...], "m": [...],
     "n_layers": [...], "params": ..., "macs": ..., ..., "latency_s": 0.0123}, ...]}}

Beside the ranked candidates (``--top``, ``--emit``), ``front`` is the whole Pareto front
(`WholeFront`): every candidate within the budgets that no other beats on both CIO (lower) and
capacity (higher), by capacity ascending, each with its id, index in the space, choices and
metrics, and its predicted latency in seconds where the search had a device model; 111 members
for ``hda search --budget-macs 4.5G``. It is optional within version 2: files written before it
read with ``front`` None (and an older hda reads newer files, ignoring it).

``DIR/front_trained.json`` is a `TrainedFront`, the summary of the front's Optuna study
(`hardnet_analysis.train.trials`): the study's name and storage (password hidden), then every
trained candidate (`TrainedCandidate`: the front's row plus status, validation top-1/top-5 in
percent, or mIoU and pixel accuracy for a segmentation front, its last error, run directory and
number of attempts) re-ranked by Pareto rank of the score (top-1 or mIoU, higher is better)
against CIO (lower is better), then the untrained ones.

``DIR/sample.json`` is a `SearchSample`, a seeded sample of the whole space for plots. All three
are `hardnet_analysis.documents.base.Document`s, on this floor because the search writes them
and the trainer and the report read them: ``write`` is each one's only writer and ``read`` its
only reader. A file of another format or version, or with a missing or mistyped key, is a
one-line `UsageError`, e.g. ``front file 'out/front.json': candidates[2]: missing field 'cio';
accepted: ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from hardnet_analysis.documents.base import Document
from hardnet_analysis.documents.records import FLATTENED, encode, keyed, omitted_if_none
from hardnet_analysis.search_metrics import METRIC_NAMES, METRICS

FRONT_FILE = "front.json"
TRAINED_FILE = "front_trained.json"
SAMPLE_FILE = "sample.json"
#: What writes each file, for messages.
_SEARCH = "`hda search --out DIR`"
_POOL = "the front's training (`hda search --train-top`, `hda search-worker`)"

#: Metric values by name: int counts, float ratios.
MetricValues = dict[str, float]

#: Each metric's JSON type, as `METRICS` says: counts are integers, ratios numbers.
_METRIC_KINDS: dict[str, type] = {spec.name: int if spec.integer else float for spec in METRICS}


@dataclass(frozen=True)
class FrontCandidate:
    """One row of the front (see the module docstring): its metrics sit in the row by name;
    `score` is the objective's value (None under Pareto ranking); `definition` is None for rows
    shown but not written."""

    id: str
    rank: int
    k: tuple[int, ...]
    m: tuple[float, ...]
    n_layers: tuple[int, ...]
    metrics: MetricValues = field(metadata=keyed(_METRIC_KINDS, flat=True))
    cio_saved: float
    score: float | None = omitted_if_none()
    definition: str | None = omitted_if_none()
    #: Transition widths per stage, where the search chose them (``--widths``).
    widths: tuple[int, ...] | None = omitted_if_none()
    #: The input (height, width) measured at, where the search tried several (``--input
    #: 224,256``).
    input: tuple[int, int] | None = omitted_if_none()

    def __post_init__(self) -> None:
        if set(self.metrics) != set(METRIC_NAMES):
            raise ValueError(f"metrics must be exactly {METRIC_NAMES}, not {tuple(self.metrics)}")

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON object."""
        row: dict[str, Any] = encode(self)
        return row


#: A front's capacity axis (``hda search --capacity``): higher is better, against CIO.
Capacity = Literal["macs", "params"]


@dataclass(frozen=True)
class FrontMember:
    """One candidate of the whole front (`WholeFront`): its id (as a `FrontCandidate`'s),
    index in the search space, per-stage k/m/n_layers, metrics (by name, in the member's object)
    and its predicted latency in seconds where the search had ``--device-model`` (else None,
    and no ``latency_s`` key)."""

    id: str
    index: int
    k: tuple[int, ...]
    m: tuple[float, ...]
    n_layers: tuple[int, ...]
    metrics: MetricValues = field(metadata=keyed(_METRIC_KINDS, flat=True))
    latency_s: float | None = omitted_if_none()
    widths: tuple[int, ...] | None = omitted_if_none()
    input: tuple[int, int] | None = omitted_if_none()


@dataclass(frozen=True)
class WholeFront:
    """``front.json``'s ``front``: every candidate within the budgets that no other dominates
    in (CIO lower, `capacity` higher), equal points all included, by capacity ascending (then
    CIO, then index). Its size is the summary's "111 on the Pareto front" under Pareto
    ranking, and is kept under any other ``--objective`` too."""

    capacity: Capacity
    members: tuple[FrontMember, ...]


@dataclass(frozen=True)
class SearchFront(Document):
    """``front.json`` (see the module docstring): the search's settings and summary, the
    template's own metrics, the candidates best first and the whole front."""

    FORMAT: ClassVar[str] = "hda-search-front"
    VERSION: ClassVar[int] = 2
    FILE: ClassVar[str] = "front file"
    WHAT: ClassVar[str] = "hda search front"
    WRITER: ClassVar[str] = _SEARCH

    id: str
    command: str
    space: dict[str, Any]
    template: str
    input: tuple[int, int]
    batch: int
    dtype: str
    budgets: MetricValues = field(metadata=keyed(_METRIC_KINDS, complete=False))
    objective: str
    objective_info: dict[str, Any]
    space_size: int
    feasible: int | None
    front_size: int | None
    template_metrics: MetricValues = field(metadata=keyed(_METRIC_KINDS))
    candidates: tuple[FrontCandidate, ...]
    #: The whole front (None in files written before it was kept).
    front: WholeFront | None = omitted_if_none()  # noqa: RUF009 (a field spec, made once)
    #: Every input size searched, where there were several (`input` the first).
    inputs: tuple[tuple[int, int], ...] | None = omitted_if_none()


@dataclass(frozen=True)
class SampledCandidate:
    """A candidate drawn at random from the whole space: its id, index in the space, per-stage
    k/m/n_layers, metrics (as in `FrontCandidate`) and whether it meets the budgets."""

    id: str
    index: int
    k: tuple[int, ...]
    m: tuple[float, ...]
    n_layers: tuple[int, ...]
    metrics: MetricValues = field(metadata=keyed(_METRIC_KINDS, flat=True))
    feasible: bool
    widths: tuple[int, ...] | None = omitted_if_none()
    input: tuple[int, int] | None = omitted_if_none()


@dataclass(frozen=True)
class SearchSample(Document):
    """``DIR/sample.json``: a seeded uniform sample of the space ``hda search --out DIR``
    swept (every candidate where the space is smaller than the sample), for plots of the space
    beside its front: ``{"format": "hda-search-sample", "version": 1, "space_size", "seed",
    "candidates": [{"id", "index", "k", "m", "n_layers", <metrics>, "feasible"}, ...]}``."""

    FORMAT: ClassVar[str] = "hda-search-sample"
    VERSION: ClassVar[int] = 1
    FILE: ClassVar[str] = "sample file"
    WHAT: ClassVar[str] = "hda search sample"
    WRITER: ClassVar[str] = _SEARCH

    space_size: int
    seed: int
    candidates: tuple[SampledCandidate, ...]


#: The training status of a candidate: finished, out of retries, or still to train.
Status = Literal["done", "failed", "pending"]
STATUSES: tuple[Status, ...] = get_args(Status)


#: A trained candidate's metrics by training task (``hda train --task``): the score (the study's
#: first objective, ranked against CIO: best validation top-1 or mIoU), a second validation
#: metric of the final epoch, and the score of the final epoch; all in percent.
TASK_METRICS = {
    "classification": ("top1", "top5", "final_top1"),
    "segmentation": ("miou", "pixel_acc", "final_miou"),
}
#: Column headings of those metrics.
METRIC_LABELS = {"top1": "top-1", "top5": "top-5", "miou": "mIoU", "pixel_acc": "pixel acc"}


@dataclass(frozen=True)
class TrainedCandidate:
    """A front candidate after training (its row plus these keys): `status` (one of
    `STATUSES`), the best and final validation top-1 and the final top-5 (percent; None until
    trained, and for a segmentation front), the last failure's one-line error (None once
    done), its run directory (relative to DIR), its trials so far (`attempts`), its Pareto rank
    among the trained (None for the others), and a segmentation front's best and final mIoU and
    final pixel accuracy (`TASK_METRICS`; None for a classification front)."""

    candidate: FrontCandidate = field(metadata=FLATTENED)
    status: Status
    top1: float | None
    top5: float | None
    final_top1: float | None
    error: str | None
    run: str
    attempts: int
    pareto_rank: int | None = None
    miou: float | None = None
    pixel_acc: float | None = None
    final_miou: float | None = None

    @property
    def score(self) -> float | None:
        """The value ranked against CIO: top-1, or mIoU for segmentation (None until done)."""
        return self.top1 if self.top1 is not None else self.miou

    def to_dict(self) -> dict[str, Any]:
        """The row's JSON object."""
        row: dict[str, Any] = encode(self)
        return row


@dataclass(frozen=True)
class TrainedFront(Document):
    """``front_trained.json`` (see the module docstring): the Optuna study's name and storage,
    then trained candidates first, by (Pareto rank, -top-1, CIO), then the others in front
    order. ``optuna.load_study(study_name=study, storage=URL)`` gives the same values."""

    FORMAT: ClassVar[str] = "hda-search-front-trained"
    VERSION: ClassVar[int] = 2
    FILE: ClassVar[str] = "trained front file"
    WHAT: ClassVar[str] = "hda trained search front"
    WRITER: ClassVar[str] = _POOL

    study: str
    storage: str
    candidates: tuple[TrainedCandidate, ...]
    task: str = "classification"

    @property
    def objectives(self) -> dict[str, str]:
        """What the Pareto rank ranks: the task's score (top-1 or mIoU) maximised, CIO minimised
        (the study's directions)."""
        return {TASK_METRICS[self.task][0]: "max", "cio": "min"}

    def to_dict(self) -> dict[str, Any]:
        """The file's JSON object: the header, the objectives, then every field by name."""
        return {**self.header(), "objectives": dict(self.objectives), **encode(self)}
