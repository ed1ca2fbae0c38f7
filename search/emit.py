"""Candidates as definition files, with stable ids, and the front document that lists them.

A candidate's id is the first 12 hex digits of the SHA-256 of its definition's canonical JSON
(sorted keys, no spaces, the ``name`` field left out), so it depends on the network alone: the
same command on the same space gives the same ids, and the same network found by two searches
gets the same id. Its definition is named ``{template}-{id}``.

``DIR/front.json`` is a `hardnet_analysis.documents.fronts.SearchFront` (the trainer reads it), its
candidates ordered best first, with the whole Pareto front beside them (`whole_front`: each
member with its id, index, choices and metrics), under the front's own id (`front_id`: what
decides the front, known before the sweep). The directory belongs to that front: a search with
another id is refused there unless forced (`check_directory`), and the definitions go to
``candidates/<front id>/``, so two fronts never mix theirs. Each file is written atomically, the
definitions before the front.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

from hardnet_analysis.documents.fronts import (
    FRONT_FILE,
    SAMPLE_FILE,
    Capacity,
    FrontCandidate,
    FrontMember,
    SampledCandidate,
    SearchFront,
    SearchSample,
    WholeFront,
)
from hardnet_analysis.errors import UsageError
from hardnet_analysis.families.parts import Searchable
from hardnet_analysis.families.serialize import save_definition, to_dict
from hardnet_analysis.search.objectives import LATENCY
from hardnet_analysis.search.space import SearchSpace
from hardnet_analysis.search.sweep import SAMPLE_SEED, Budgets, Candidate, SearchResult
from hardnet_analysis.shapes import InputShape


def _digest(body: Any) -> str:
    """12 hex digits of the SHA-256 of `body`'s canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def definition_id(defn: Searchable) -> str:
    """12 hex digits identifying the network `defn` describes, whatever its name."""
    return _digest({k: v for k, v in to_dict(defn).items() if k != "name"})


@dataclass(frozen=True)
class FrontKey:
    """What decides a front, and so its id: the space (with the template's definition, whatever
    file it came from), the input shape, dtype, budgets and the ranking with its settings
    (`objective_info`, without the latency bound: `recorded_info` adds it). `input_shape` is
    one NCHW image, ``InputShape.of_image(224)``: any other input is refused here, before the
    sweep (an `InputShapeError`: the search's cost model reads one image)."""

    space: SearchSpace
    input_shape: InputShape
    dtype: str
    budgets: Budgets
    ranking: str
    objective_info: dict[str, Any]
    #: Every input searched where there are several (`input_shape` the first).
    input_shapes: tuple[InputShape, ...] = ()

    def __post_init__(self) -> None:
        for each in (self.input_shape, *self.input_shapes):
            _ = each.image  # refused now if not one NCHW image, not after the sweep

    @property
    def recorded_info(self) -> dict[str, Any]:
        """``front.json``'s ``objective_info``: the ranking's settings, then the latency bound
        where there is one (`Budgets.info`)."""
        return {**self.objective_info, **self.budgets.info()}

    @property
    def id(self) -> str:
        inputs = {"inputs": [list(s.image) for s in self.input_shapes]} if self.input_shapes else {}
        return _digest(
            {
                "space": self.space.to_dict(),
                "template": to_dict(self.space.template),
                "input": list(self.input_shape.image),  # the NCHW list ids were made of
                "dtype": self.dtype,
                "budgets": self.budgets.on_metrics(),
                "ranking": self.ranking,
                "objective_info": self.recorded_info,
            }
            | inputs  # only where searched: one size keeps the ids it had
        )


def check_directory(out_dir: str | Path, front_id: str, force: bool) -> None:
    """A UsageError if `out_dir` holds another front than `front_id` (or a front file this hda
    cannot read), unless `force`: a second search must not replace a front that workers may be
    training."""
    path = Path(out_dir) / FRONT_FILE
    if force or not path.exists():
        return
    try:
        held = SearchFront.read(path)
    except UsageError as exc:
        raise UsageError(f"{exc} (pass --force to replace it)") from None
    if held.id != front_id:
        raise UsageError(
            f"{str(out_dir)!r} holds front {held.id} (`{held.command}`), not this search's front "
            f"{front_id}; choose another --out, or pass --force to replace it there"
        )


def candidate_definition(space: SearchSpace, candidate: Candidate) -> tuple[str, Searchable]:
    """The candidate's id and its definition, named ``{template}-{id}``."""
    defn = space.definition(candidate.choices)
    cid = definition_id(defn)
    return cid, space.definition(candidate.choices, name=f"{space.template.name}-{cid}")


def candidate_row(
    space: SearchSpace, candidate: Candidate, template: Candidate, definition: str | None = None
) -> FrontCandidate:
    """The front's row for `candidate`: id, rank, per-stage k/m/n_layers, metrics, CIO saved
    against the template (a fraction: 0.1 means 10% less CIO) and, when written, the definition
    path."""
    cid, _ = candidate_definition(space, candidate)
    return FrontCandidate(
        id=cid,
        rank=candidate.rank,
        k=tuple(c.k for c in candidate.choices),
        m=tuple(c.m for c in candidate.choices),
        n_layers=tuple(c.n_layers for c in candidate.choices),
        metrics=candidate.values(),
        cio_saved=(template.cio - candidate.cio) / template.cio,
        score=candidate.score,
        definition=definition,
        widths=_widths(candidate),
        input=candidate.input,
    )


def _widths(candidate: Candidate) -> tuple[int, ...] | None:
    """The candidate's transition widths where the space searched them (else None)."""
    widths = tuple(c.width for c in candidate.choices)
    return None if None in widths else cast(tuple[int, ...], widths)


def whole_front(result: SearchResult) -> WholeFront | None:
    """The sweep's whole Pareto front as ``front.json`` holds it (None if it kept none), each
    member with its id, index, choices, metrics and predicted latency where the sweep had one."""
    if result.front is None:
        return None
    members = []
    for candidate in result.front.members:
        assert candidate.index is not None  # front members are indexes of the space
        choices = candidate.choices
        members.append(
            FrontMember(
                id=candidate_definition(result.space, candidate)[0],
                index=candidate.index,
                k=tuple(c.k for c in choices),
                m=tuple(c.m for c in choices),
                n_layers=tuple(c.n_layers for c in choices),
                metrics=candidate.values(),
                latency_s=candidate.features.get(LATENCY),
                widths=_widths(candidate),
                input=candidate.input,
            )
        )
    capacity = result.front.capacity
    if capacity not in get_args(Capacity):
        raise ValueError(f"a front's capacity is one of {get_args(Capacity)}, not {capacity!r}")
    return WholeFront(cast(Capacity, capacity), tuple(members))


def front_key(result: SearchResult, objective_info: dict[str, Any] | None = None) -> FrontKey:
    """What decided the front `result` holds (its id)."""
    return FrontKey(
        result.space,
        result.input_shape,
        result.dtype,
        result.budgets,
        result.ranking,
        objective_info or {},
        result.input_shapes,
    )


def front_document(
    result: SearchResult,
    rows: Sequence[FrontCandidate],
    objective_info: dict[str, Any] | None = None,
    command: str = "",
) -> SearchFront:
    """The front document for `rows` and the whole front, with the sweep's summary and the
    command given."""
    h, w = result.input_shape.hw  # the document keeps (h, w) and the batch (its JSON form)
    key = front_key(result, objective_info)
    return SearchFront(
        id=key.id,
        command=command,
        space=result.space.to_dict(),
        template=result.space.template_name,
        input=(h, w),
        batch=result.input_shape.batch,
        dtype=result.dtype,
        budgets=result.budgets.on_metrics(),
        objective=result.ranking,
        objective_info=key.recorded_info,
        space_size=result.size,
        feasible=result.feasible,
        front_size=result.front_size,
        template_metrics=result.template.values(),
        candidates=tuple(rows),
        front=whole_front(result),
        inputs=tuple(s.hw for s in result.input_shapes) or None,
    )


def write_front(
    out_dir: str | Path,
    result: SearchResult,
    emit: int,
    objective_info: dict[str, Any] | None = None,
    command: str = "",
) -> SearchFront:
    """Write the best `emit` candidates' definitions (``candidates/<front id>/<id>.json``),
    ``sample.json`` (where the sweep drew a sample) and ``front.json`` under `out_dir`; returns
    the front document."""
    out = Path(out_dir)
    front_id = front_key(result, objective_info).id
    rows = []
    for candidate in result.candidates[:emit]:
        cid, defn = candidate_definition(result.space, candidate)
        relative = f"candidates/{front_id}/{cid}.json"
        save_definition(defn, out / relative)
        rows.append(candidate_row(result.space, candidate, result.template, relative))
    if result.sample:
        sample_document(result).write(out / SAMPLE_FILE)
    document = front_document(result, rows, objective_info, command)
    document.write(out / FRONT_FILE)
    return document


def sample_document(result: SearchResult) -> SearchSample:
    """The sweep's sample of the space as a document, each candidate with its id."""
    rows = []
    for candidate, feasible in result.sample:
        cid, _ = candidate_definition(result.space, candidate)
        assert candidate.index is not None  # sampled candidates are indexes of the space
        choices = candidate.choices
        rows.append(
            SampledCandidate(
                id=cid,
                index=candidate.index,
                k=tuple(c.k for c in choices),
                m=tuple(c.m for c in choices),
                n_layers=tuple(c.n_layers for c in choices),
                metrics=candidate.values(),
                feasible=feasible,
                widths=_widths(candidate),
                input=candidate.input,
            )
        )
    return SearchSample(result.size, SAMPLE_SEED, tuple(rows))
