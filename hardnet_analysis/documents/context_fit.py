"""How ops run inside a network's forward rather than alone in a loop: the context part of the
device model (``documents.device_model``), fitted by ``metrics.fit_device.fit_context`` on whole
networks that ``hda calibrate`` times whole and op by op under ``torch.profiler``.

An op's *kind time* is what the micro-benchmark fit of its kind gives (alone in a loop). Inside
a forward it runs at another speed: it finds its weights and input evicted by the ops before it,
its input in another layout than a loop of one op leaves it, and it pays the Python module call,
allocation and dispatch that a tight loop hides. Two corrections follow, both measured on the
calibration's own context networks (none of them a model the predictor sweep scores):

- **per op**: the profiled span of each context op over its kind time, as a log ratio, is
  averaged over the ops of the same kind that lie near the op in (log kind time, log
  arithmetic intensity), by a Gaussian kernel of `ContextFit.bandwidth` (chosen leave one
  network out), and drawn towards the kind's overall ratio (`kind_scale`) by `PRIOR_WEIGHT`
  of kernel weight: an op like none of the context ops gets its kind's ratio; an op far outside
  the kind times the ratio was measured on (`KIND_REACH`) gets 1.
- **per forward**: ``scale`` and ``op_s`` fit the networks' un-profiled forwards,
  ``measured = scale * sum(factor * kind time) + op_s * ops``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy.typing as npt

    Matrix = npt.NDArray[Any]

#: How far outside the kind times it was fitted on a kind's context scale still applies: 2x.
KIND_REACH = 2.0
#: Kernel weight of the kind's overall ratio in an op's neighbourhood average: one neighbour
#: at distance 0 moves an op halfway from its kind's ratio to that neighbour's.
PRIOR_WEIGHT = 1.0
#: Per-op log ratios are clipped to +-ln 4: a profiled span 10x its kind time (an op that
#: waited on the allocator once) must not set its neighbours' factors.
LOG_RATIO_CLIP = math.log(4.0)


@dataclass(frozen=True)
class KindShare:
    """One kind's ops in a context network's forward under ``torch.profiler``: how many joined
    an op event, the sum of their kind times (alone in a loop) and of their measured spans, and
    the shortest and longest kind time of one of them."""

    kind: str
    ops: int
    isolated_s: float
    measured_s: float
    shortest_s: float
    longest_s: float


@dataclass(frozen=True)
class OpSample:
    """One op of a context network's forward that joined a profiler event: its kind, kind time
    (s, alone in a loop), profiled span (s), work (`op_work`, channels padded as its kind's fit
    pads them) and unfused bytes read + written."""

    kind: str
    isolated_s: float
    measured_s: float
    work: float
    bytes: float


def op_point(isolated_s: float, work: float, nbytes: float) -> tuple[float, float]:
    """Where an op lies among the context ops: (ln kind time, ln arithmetic intensity), the
    intensity being work per byte (+1 each, so an op of no work lies at ln 1/(bytes+1)).
    A 3x3 conv of 0.8 ms doing 231 MFLOP over 1.2 MB: (-7.13, 5.26)."""
    return (math.log(max(isolated_s, 1e-9)), math.log((work + 1.0) / (nbytes + 1.0)))


def log_ratio(sample: OpSample) -> float:
    """ln(profiled span / kind time), clipped to +-`LOG_RATIO_CLIP`."""
    ratio = math.log(max(sample.measured_s, 1e-9) / max(sample.isolated_s, 1e-9))
    return max(-LOG_RATIO_CLIP, min(LOG_RATIO_CLIP, ratio))


@dataclass(frozen=True)
class Neighbourhood:
    """The context ops of one kind as points (`op_point`) with their log ratios (`log_ratio`)
    and the network each came from (to leave one network out)."""

    points: Matrix
    ratios: Matrix
    networks: tuple[str, ...]

    @classmethod
    def of(cls, samples: Sequence[tuple[str, OpSample]]) -> Neighbourhood:
        """From (network, sample) pairs of one kind."""
        import numpy as np  # documents load with the standard library; predicting needs numpy

        points = np.array([op_point(s.isolated_s, s.work, s.bytes) for _, s in samples])
        ratios = np.array([log_ratio(s) for _, s in samples])
        return cls(points.reshape(-1, 2), ratios, tuple(n for n, _ in samples))

    def average(
        self, point: tuple[float, float], prior: float, bandwidth: float, leave: str = ""
    ) -> float:
        """The kernel-weighted mean log ratio around `point`, with the log ratio `prior` at
        weight `PRIOR_WEIGHT`; ops of network `leave` are left out. Bandwidth 0: `prior`."""
        if bandwidth <= 0 or not len(self.ratios):
            return prior
        import numpy as np  # documents load with the standard library; predicting needs numpy

        d2 = ((self.points - np.asarray(point)) ** 2).sum(axis=1)
        weights = np.exp(-d2 / (2 * bandwidth**2))
        if leave:
            weights = weights * np.array([n != leave for n in self.networks])
        total = float(weights.sum())
        return (float(weights @ self.ratios) + PRIOR_WEIGHT * prior) / (total + PRIOR_WEIGHT)


@dataclass(frozen=True)
class ContextModel:
    """A whole network timed during calibration for the context fit: its median forward
    seconds, the sum of its ops' kind times (`isolated_s`, as if each ran alone in a loop), its
    timed ops (`ops`: every node but views and graph boundaries), the context-fitted
    prediction, per kind its ops' kind times against their profiled times (`kinds`; empty
    in files written before per-kind scales), and its profiled ops one by one (`samples`;
    empty in files written before per-op factors)."""

    model: str
    input: tuple[int, int]
    measured_s: float
    isolated_s: float
    ops: int
    predicted_s: float
    kinds: tuple[KindShare, ...] = ()
    samples: tuple[OpSample, ...] = ()

    def scaled_s(self, kind_scale: Mapping[str, float]) -> float:
        """`isolated_s` with each kind's profiled ops at their kind's scale (others at 1)."""
        return self.isolated_s + sum(
            (kind_scale.get(k.kind, 1.0) - 1) * k.isolated_s for k in self.kinds
        )


@dataclass(frozen=True)
class ContextFit:
    """How an op runs inside a network's forward rather than alone in a loop (see the module
    docstring): its predicted seconds are ``scale * factor * kind time + op_s``, with views at
    their kind time. `kind_scale` is each kind's profiled op time over its kind time in the
    context networks' forwards (a kind with few ops is drawn towards the ratio over all kinds);
    it applies to ops whose kind time lies within `KIND_REACH` of the span of kind times it was
    measured on (`kind_range`): the context networks' one linear layer, a classifier of ~0.2
    ms, says nothing of a transformer's 3 ms ones. With a `bandwidth` > 0 the factor is the
    op's neighbourhood average (`Neighbourhood.average`) of the `models`' per-op samples around
    that kind scale. `scale` and `op_s` then fit the networks' whole forwards by least squares
    on relative error. The networks `models` are none of the models the predictor sweep scores;
    the fit is scored by leave-one-model-out mean |relative error| and the share within +-10%,
    and the per-op factors by the leave-one-network-out mean |relative error| of the profiled
    spans (`op_loo_error`). E.g. scale 1.0, a depthwise scale of 1.4, bandwidth 0 and op_s
    15e-6: a depthwise conv of kind time 100 us takes 1.0 * 1.4 * 100 + 15 = 155 us."""

    scale: float
    op_s: float
    loo_error: float
    loo_within_10pct: float
    models: tuple[ContextModel, ...]
    kind_scale: Mapping[str, float] = field(default_factory=dict)
    #: Per kind in `kind_scale`, the (shortest, longest) kind time of one op it was fitted on.
    kind_range: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: Kernel bandwidth of the per-op factors in `op_point` units; 0: the kind scale alone.
    bandwidth: float = 0.0
    #: Leave-one-network-out mean |relative error| of the per-op factors on the context ops
    #: holding >= 1% of their network's op time (None in files without per-op samples).
    op_loo_error: float | None = None

    @cached_property
    def neighbourhoods(self) -> dict[str, Neighbourhood]:
        """The models' per-op samples, per kind."""
        by_kind: dict[str, list[tuple[str, OpSample]]] = {}
        for m in self.models:
            for s in m.samples:
                by_kind.setdefault(s.kind, []).append((m.model, s))
        return {kind: Neighbourhood.of(pairs) for kind, pairs in by_kind.items()}

    def kind_factor(self, kind: str, isolated_s: float) -> float:
        """The kind's scale where the op's kind time lies within its reach, else 1."""
        low, high = self.kind_range.get(kind, (0.0, 0.0))
        within = low / KIND_REACH <= isolated_s <= high * KIND_REACH
        return self.kind_scale.get(kind, 1.0) if within else 1.0

    def factor(self, kind: str, isolated_s: float, work: float = 0.0, nbytes: float = 0.0) -> float:
        """What the kind time `isolated_s` of an op of `kind` (with `work` and `nbytes`, for
        its neighbourhood) is multiplied by inside a forward: 1 for views, else `scale` times
        its per-op factor (the kind scale where no neighbourhood applies)."""
        if kind == "view":
            return 1.0
        prior = math.log(self.kind_factor(kind, isolated_s))
        near = self.neighbourhoods.get(kind)
        if near is None or self.bandwidth <= 0:
            return self.scale * math.exp(prior)
        point = op_point(isolated_s, work, nbytes)
        return self.scale * math.exp(near.average(point, prior, self.bandwidth))

    def time(self, kind: str, isolated_s: float, work: float = 0.0, nbytes: float = 0.0) -> float:
        """Seconds of an op of `kind` whose kind time is `isolated_s`, inside a forward."""
        if kind == "view":
            return isolated_s
        return self.factor(kind, isolated_s, work, nbytes) * isolated_s + self.op_s
