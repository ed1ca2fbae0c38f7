"""Per-op context factors (`documents.context_fit`, `metrics.fit_device.fit_context`): the
kernel average of context ops' profiled/kind-time ratios, checked by hand and on synthetic
networks whose ops follow a known, size-dependent slowdown."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardnet_analysis.documents.context_fit import (
    PRIOR_WEIGHT,
    ContextFit,
    ContextModel,
    KindShare,
    Neighbourhood,
    OpSample,
    op_point,
)
from hardnet_analysis.documents.records import decode, encode
from hardnet_analysis.metrics.fit_device import fit_context


def test_one_neighbour_at_distance_zero_moves_an_op_halfway() -> None:
    # A context op measured 2x its kind time, at the point of the op asked about; the prior
    # (the kind's ratio, 1x) weighs PRIOR_WEIGHT = 1: the log ratio is ln 2 / 2, factor 1.414.
    sample = OpSample("conv_kxk", 100e-6, 200e-6, 2e6, 1e5)
    near = Neighbourhood.of([("net", sample)])
    point = op_point(100e-6, 2e6, 1e5)
    assert PRIOR_WEIGHT == 1.0
    assert math.exp(near.average(point, 0.0, 0.3)) == pytest.approx(math.sqrt(2))
    # Far away (10x the kind time, bandwidth 0.3): the kernel weight is ~e^-29, the prior holds.
    far = op_point(1e-3, 2e7, 1e5)
    assert math.exp(near.average(far, 0.0, 0.3)) == pytest.approx(1.0, abs=1e-9)
    # Its own network left out, nothing is near.
    assert near.average(point, 0.0, 0.3, leave="net") == 0.0
    # Bandwidth 0: the prior.
    assert near.average(point, 0.25, 0.0) == 0.25


def test_op_point_worked_example() -> None:
    x, y = op_point(0.8e-3, 231e6, 1.2e6)
    assert x == pytest.approx(math.log(0.8e-3)) and y == pytest.approx(5.26, abs=0.01)


def _network(name: str, sizes: list[float], slow: float, intensity: float = 50.0) -> ContextModel:
    """A network of conv ops of the given kind times: ops under 100 us run `slow` x their kind
    time in the forward, the others 1x; the forward is exactly the spans plus 10 us per op."""
    samples = tuple(
        OpSample("conv_kxk", t, t * (slow if t < 100e-6 else 1.0), t * 1e10, t * 1e10 / intensity)
        for t in sizes
    )
    iso = sum(s.isolated_s for s in samples)
    spans = sum(s.measured_s for s in samples)
    share = KindShare("conv_kxk", len(samples), iso, spans, min(sizes), max(sizes))
    return ContextModel(
        name, (224, 224), spans + 10e-6 * len(samples), iso, len(samples), 0.0, (share,), samples
    )


def _sizes(seed: int) -> list[float]:
    # Kind times spread log-uniformly over 10 us - 1 ms, a different spread per network.
    return [10e-6 * 100 ** (((i * 37 + seed * 11) % 97) / 96) for i in range(60)]


def test_a_size_dependent_slowdown_is_learned_per_op() -> None:
    # Small ops 1.8x slower in a forward, large ones not: one scale per kind is their
    # time-weighted ratio, near the large ops' 1x (small ops then ~40% low); the per-op
    # factors find each op's own ratio.
    models = [_network(f"n{i}", _sizes(i), 1.8) for i in range(5)]
    fitted = fit_context(models)
    assert fitted.bandwidth > 0
    assert fitted.op_loo_error is not None and fitted.op_loo_error < 0.08
    kind_only = ContextFit(1.0, 0.0, 0.0, 0.0, fitted.models, fitted.kind_scale, fitted.kind_range)
    for t, truth in ((20e-6, 1.8), (600e-6, 1.0)):
        work, nbytes = t * 1e10, t * 1e10 / 50
        own = fitted.factor("conv_kxk", t, work, nbytes) / fitted.scale
        assert own == pytest.approx(truth, rel=0.1)
    assert kind_only.factor("conv_kxk", 20e-6) < 1.8 * 0.7
    # The forwards: spans + 10 us per op, found again.
    assert fitted.loo_error < 0.03
    assert fitted.op_s == pytest.approx(10e-6, rel=0.3)


@settings(max_examples=20, deadline=None)
@given(st.floats(0.5, 3.0), st.floats(0.2, 1.0))
def test_a_constant_ratio_is_every_ops_factor(ratio: float, bandwidth: float) -> None:
    # Every context op ran `ratio` x its kind time: whatever the bandwidth and wherever an op
    # lies within the kinds' reach, its factor (scale 1) is that ratio.
    models = [_network(f"n{i}", _sizes(i), 1.0) for i in range(3)]
    models = [
        ContextModel(
            m.model,
            m.input,
            m.measured_s,
            m.isolated_s,
            m.ops,
            0.0,
            tuple(
                KindShare(
                    k.kind, k.ops, k.isolated_s, k.isolated_s * ratio, k.shortest_s, k.longest_s
                )
                for k in m.kinds
            ),
            tuple(
                OpSample(s.kind, s.isolated_s, s.isolated_s * ratio, s.work, s.bytes)
                for s in m.samples
            ),
        )
        for m in models
    ]
    unit = ContextFit(
        1.0,
        0.0,
        0.0,
        0.0,
        tuple(models),
        {"conv_kxk": ratio},
        {"conv_kxk": (10e-6, 1e-3)},
        bandwidth,
    )
    for t in (15e-6, 100e-6, 900e-6):
        assert unit.factor("conv_kxk", t, t * 1e10, t * 2e8) == pytest.approx(ratio, rel=1e-9)


def test_networks_without_per_op_samples_keep_the_kind_scales() -> None:
    # Files written before per-op samples: bandwidth 0, no per-op error, kind scales only.
    kinds = (KindShare("conv_dw", 20, 2e-3, 3e-3, 50e-6, 200e-6),)
    models = [ContextModel(n, (224, 224), 4e-3, 3e-3, 30, 0.0, kinds) for n in ("a", "b")]
    fitted = fit_context(models)
    assert fitted.bandwidth == 0.0 and fitted.op_loo_error is None
    assert fitted.factor("conv_dw", 100e-6, 1e6, 1e4) == pytest.approx(
        fitted.scale * fitted.kind_scale["conv_dw"]
    )


def test_a_context_fit_round_trips_through_json() -> None:
    fitted = fit_context([_network(f"n{i}", _sizes(i), 1.5) for i in range(3)])
    again = decode(ContextFit, encode(fitted), "context")
    assert again == fitted
    assert again.factor("conv_kxk", 30e-6, 3e5, 6e3) == fitted.factor("conv_kxk", 30e-6, 3e5, 6e3)
