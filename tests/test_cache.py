"""The cache-aware traffic estimate on hand-computed small graphs, and its two limits on real
models (no cache: every unfused byte; an endless cache: input, weights and output once)."""

from __future__ import annotations

from math import prod

import pytest

from hardnet_analysis.analysis import analyze
from hardnet_analysis.graph.ir import GraphBuilder
from hardnet_analysis.metrics.analysis import Analysis, measure_graph
from hardnet_analysis.metrics.cache import cache_traffic


def chain() -> Analysis:
    """x -> a -> b -> c -> output, every tensor 100 fp32 elements (400 bytes)."""
    g = GraphBuilder("chain")
    x = g.add("input", "x", [], (1, 100))
    a = g.add("activation", "a", [x], (1, 100))
    b = g.add("activation", "b", [a], (1, 100))
    c = g.add("activation", "c", [b], (1, 100))
    g.add("output", "out", [c], (1, 100))
    return measure_graph(g.graph)


def concat_reread() -> Analysis:
    """x (400 B) -> a = relu(x); c = cat(x, a) (800 B) read twice: d = relu(c), e = c + d."""
    g = GraphBuilder("concat")
    x = g.add("input", "x", [], (1, 100))
    a = g.add("activation", "a", [x], (1, 100))
    c = g.add("concat", "c", [x, a], (1, 200))
    d = g.add("activation", "d", [c], (1, 200))
    e = g.add("add", "e", [c, d], (1, 200))
    g.add("output", "out", [e], (1, 200))
    return measure_graph(g.graph)


def per_node(analysis: Analysis, cache: int) -> dict[str, tuple[int, int]]:
    found = cache_traffic(analysis, cache).layers
    return {n.name: (n.read_bytes, n.write_bytes) for n in found if n.dram_bytes_est}


def test_chain_that_fits_reads_the_input_and_writes_the_output_only() -> None:
    # 2000 B hold any two 400 B tensors: a reads x from DRAM; b and c read their input from the
    # cache; the output's 400 dirty bytes are written at the end.
    assert per_node(chain(), 2000) == {"a": (400, 0), "out": (0, 400)}
    assert cache_traffic(chain(), 2000).dram_bytes_est == 800


def test_chain_that_spills_writes_back_what_each_allocation_evicts() -> None:
    # 600 B: while b runs, its input a (400, dirty) and its output (400) need 800, so b's
    # allocation evicts a's oldest 200 dirty bytes (written back); the same for c.
    assert per_node(chain(), 600) == {"a": (400, 0), "b": (0, 200), "c": (0, 200), "out": (0, 400)}
    # 300 B hold no tensor: every read and write goes to DRAM, the unfused bytes exactly.
    assert cache_traffic(chain(), 300).dram_bytes_est == 2400 == chain().totals.bytes


def test_concat_reread_is_free_while_resident_and_paid_when_evicted() -> None:
    # Everything fits: c is read twice from the cache; only x in and e out touch DRAM.
    assert per_node(concat_reread(), 10_000) == {"a": (400, 0), "out": (0, 800)}
    # 1600 B: c and d fill the cache; e's 800 B allocation evicts c (dirty, least recent) while
    # e still reads it: 800 B written back, charged to e.
    assert per_node(concat_reread(), 1600) == {"a": (400, 0), "e": (0, 800), "out": (0, 800)}
    # No cache: both reads of c (800 B each) and every write go to DRAM.
    nothing = per_node(concat_reread(), 0)
    assert nothing["d"] == (800, 800) and nothing["e"] == (1600, 800)
    assert sum(map(sum, nothing.values())) == concat_reread().totals.bytes == 6400


def test_each_output_node_writes_its_own_tensor_once() -> None:
    # Two outputs (as a detector's heads): a (400 B) and b (400 B) are each written back at
    # their own output node; the first output node used to write back both, so 1600 B in all.
    g = GraphBuilder("two heads")
    x = g.add("input", "x", [], (1, 100))
    a = g.add("activation", "a", [x], (1, 100))
    b = g.add("activation", "b", [a], (1, 100))
    g.add("output", "output", [a], (1, 100))
    g.add("output", "output:1", [b], (1, 100))
    found = per_node(measure_graph(g.graph), 10_000)
    assert found == {"a": (400, 0), "output": (0, 400), "output:1": (0, 400)}


@pytest.mark.parametrize("model", ["hardnet68", "resnet50"])
def test_limits_on_real_models(model: str) -> None:
    analysis = analyze(model, 64)
    assert cache_traffic(analysis, 0).dram_bytes_est == analysis.totals.bytes
    activations = sum(prod(s) for r in analysis.layers if r.read_bytes for s in r.in_shapes)
    weights = sum(r.read_bytes for r in analysis.layers) - 4 * activations
    ends = 4 * (prod(analysis.input_shape) + prod(analysis.output_shape))
    assert cache_traffic(analysis, 10**12).dram_bytes_est == weights + ends


def test_estimate_falls_as_the_cache_grows() -> None:
    analysis = analyze("hardnet39ds", 128)
    sizes = [0, 2**20, 2**22, 2**24, 2**26]
    totals = [cache_traffic(analysis, s).dram_bytes_est for s in sizes]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]
