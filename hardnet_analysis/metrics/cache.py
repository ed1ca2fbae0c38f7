"""Cache-aware traffic: DRAM bytes each op moves when its tensors pass through a cache.

A view over the one engine's records (``metrics.analysis``) and the graph's execution order:
no op table of its own. An op's activation reads are the elements of its inputs (the edges of
the graph), its weight reads are what its record reads beyond them, and it writes its record's
``act_bytes``. The ops run one at a time, unfused, as eager PyTorch runs them.

**The model** (write-back, write-allocate, least recently used by bytes over whole tensors):

- A tensor an op writes is allocated in the cache (dirty), evicting the least recently used
  bytes first. A tensor larger than the cache is streamed: it flushes the whole cache and goes
  to DRAM whole (an LRU cache re-scanning a region larger than itself hits nothing).
- An activation read costs a DRAM read for the part of the tensor no longer resident; the read
  makes the tensor the most recently used. A tensor still resident costs nothing.
- Weights are read from DRAM at every use: between two uses of a layer's weights (one forward
  to the next) the whole forward's traffic passes through the cache. They pass through the cache
  clean (evicting activations as they stream), so they cost no write-back.
- Evicting dirty bytes of a tensor that is still needed writes them back to DRAM; the cost is
  charged to the op whose allocation evicted them, when that traffic happens. A tensor whose last
  consumer has run is dropped without write-back: the caching allocator hands its memory to the
  next tensor, whose writes overwrite those lines in the cache.
- Views (reshape, split, getitem, dropout) alias their source tensor; the graph input and
  constants start in DRAM; with `flush_outputs` the model's outputs are finally written to DRAM,
  charged to the ``output`` node.

Example, fp32, x -> a -> b -> c, every tensor 400 bytes: a 2000-byte cache holds any two, so
a reads x from DRAM (400), b and c read from the cache, the output is written at the end (400):
800 bytes where the unfused count is 2400. With 600 bytes, b's output and its input a (dirty)
need 800, so b's allocation writes back a's oldest 200 bytes, and likewise for c: 1200. With
300 bytes no tensor fits and the estimate is the unfused 2400 (``tests/test_cache.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from math import prod

from hardnet_analysis.metrics.analysis import Analysis, LayerRecord, dtype_bytes

ROOT_OPS = frozenset({"input", "constant"})


@dataclass(frozen=True)
class CacheLayer:
    """DRAM bytes one node causes under the cache model: `read_bytes` it misses (activations
    and weights) and `write_bytes` written back while it runs (or, for ``output``, the model's
    outputs flushed at the end)."""

    name: str
    op: str
    read_bytes: int
    write_bytes: int

    @property
    def dram_bytes_est(self) -> int:
        return self.read_bytes + self.write_bytes


@dataclass(frozen=True)
class CacheTraffic:
    """The cache-aware traffic of one analysis at one cache size (bytes)."""

    cache_bytes: int
    dtype: str
    layers: tuple[CacheLayer, ...]

    @property
    def dram_bytes_est(self) -> int:
        """Total estimated DRAM bytes read + written."""
        return sum(layer.dram_bytes_est for layer in self.layers)

    def by_name(self) -> dict[str, CacheLayer]:
        return {layer.name: layer for layer in self.layers}


class _Lru:
    """Resident bytes per tensor key (oldest first) with their dirty bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[str, list[int]] = OrderedDict()  # key -> [resident, dirty]
        self.used = 0

    def resident(self, key: str) -> int:
        entry = self.entries.get(key)
        return entry[0] if entry else 0

    def evict(self, need: int, keep: str | None = None) -> int:
        """Free `need` bytes from the least recently used end (sparing `keep`); returns the
        dirty bytes written back. Dirty bytes go first: they are a tensor's oldest."""
        written = 0
        for key in list(self.entries):
            if need <= 0:
                break
            if key == keep:
                continue
            entry = self.entries[key]
            taken = min(need, entry[0])
            written += min(taken, entry[1])
            entry[1] = max(0, entry[1] - taken)
            entry[0] -= taken
            self.used -= taken
            need -= taken
            if entry[0] == 0:
                del self.entries[key]
        return written

    def flush(self) -> int:
        """Evict everything; the dirty bytes written back."""
        return self.evict(self.used)

    def put(self, key: str, size: int, dirty: bool) -> int:
        """Make `size` bytes of `key` resident (most recent); the bytes written back to fit."""
        entry = self.entries.setdefault(key, [0, 0])
        self.entries.move_to_end(key)
        grow = size - entry[0]
        written = self.evict(self.used + grow - self.capacity, keep=key) if grow > 0 else 0
        entry = self.entries[key]
        self.used += size - entry[0]
        entry[0] = size
        if dirty:
            entry[1] = size
        return written

    def drop(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry:
            self.used -= entry[0]


@dataclass
class _Tensors:
    """Each node's storage (a view resolves to the tensor it aliases), sizes in bytes, and how
    many ops still read each storage."""

    root: dict[str, str]
    size: dict[str, int]
    uses: dict[str, int]
    outputs: set[str]


def _is_alias(record: LayerRecord) -> bool:
    return record.op not in ROOT_OPS and record.read_bytes == 0 and record.act_bytes == 0


def _tensors(analysis: Analysis, element: int) -> _Tensors:
    graph = analysis.graph
    t = _Tensors({}, {}, {}, set())
    for r in analysis.layers:
        preds = list(graph.predecessors(r.name))
        if r.op == "output":
            t.outputs.update(t.root[p] for p in preds)
            continue
        t.root[r.name] = t.root[preds[0]] if _is_alias(r) and preds else r.name
        t.size.setdefault(t.root[r.name], prod(r.out_shape) * element)
        if r.op in ROOT_OPS or _is_alias(r):
            continue
        for source in {t.root[p] for p in preds}:
            t.uses[source] = t.uses.get(source, 0) + 1
    return t


class _Simulation:
    """One pass over the ops in execution order (see the module docstring)."""

    def __init__(self, analysis: Analysis, capacity: int, warm: bool, handed_over: bool) -> None:
        self.analysis = analysis
        self.element = dtype_bytes(analysis.dtype)
        self.cache = _Lru(capacity)
        self.t = _tensors(analysis, self.element)
        self.warm = warm
        self.handed_over = handed_over

    def stream(self, key: str, size: int, dirty: bool) -> tuple[int, int]:
        """Bring `size` bytes of `key` in (dirty for a write): (bytes written back, bytes that
        end in DRAM because the tensor does not fit)."""
        if size > self.cache.capacity:
            self.cache.drop(key)
            return self.cache.flush(), size if dirty else 0
        return self.cache.put(key, size, dirty), 0

    def read(self, source: str, nbytes: int) -> tuple[int, int]:
        """(missed bytes, written back) of reading `nbytes` of storage `source`."""
        size = self.t.size[source]
        resident = self.cache.resident(source)
        missed = -(-min(nbytes, size) * (size - resident) // size) if size else 0
        written, _ = self.stream(source, size, dirty=False)
        return missed, written

    def op(self, r: LayerRecord) -> CacheLayer:
        graph, t = self.analysis.graph, self.t
        sources: dict[str, int] = {}
        for p in graph.predecessors(r.name):
            edge = prod(graph.nodes[p]["out_shape"]) * self.element
            sources[t.root[p]] = max(sources.get(t.root[p], 0), edge)
        missed = written = 0
        for source, nbytes in sources.items():
            m, w = self.read(source, nbytes)
            missed, written = missed + m, written + w
        activations = sum(prod(s) for s in r.in_shapes) * self.element
        weights = max(0, r.read_bytes - activations)
        if weights:
            w, _ = self.stream(f"weights:{r.name}", weights, dirty=False)
            missed, written = missed + (0 if self.warm else weights), written + w
        w, spilled = self.stream(r.name, r.act_bytes, dirty=True)
        for source in sources:
            t.uses[source] -= 1
            if t.uses[source] == 0 and source not in t.outputs:
                self.cache.drop(source)
        return CacheLayer(r.name, r.op, missed, written + w + spilled)

    def write_back(self, output: str) -> int:
        """The dirty bytes of what output node `output` reads, now clean: each output node
        flushes its own tensor, once (a detector's heatmap and box maps are two output nodes)."""
        written = 0
        for source in {self.t.root[p] for p in self.analysis.graph.predecessors(output)}:
            entry = self.cache.entries.get(source)
            if entry:
                written, entry[1] = written + entry[1], 0
        return written

    def run(self, flush_outputs: bool) -> tuple[CacheLayer, ...]:
        layers = []
        for r in self.analysis.layers:
            if r.op == "output":
                dirty = self.write_back(r.name)
                layers.append(CacheLayer(r.name, r.op, 0, dirty if flush_outputs else 0))
                continue
            if r.op in ROOT_OPS and (self.warm or self.handed_over):
                size = self.t.size[r.name]
                if size <= self.cache.capacity:  # else its producer already spilled it
                    self.cache.put(r.name, size, dirty=self.handed_over and r.op == "input")
            if r.op in ROOT_OPS or _is_alias(r):
                layers.append(CacheLayer(r.name, r.op, 0, 0))
                continue
            layers.append(self.op(r))
        return tuple(layers)


def cache_traffic(
    analysis: Analysis,
    cache_bytes: int,
    *,
    warm: bool = False,
    flush_outputs: bool = True,
    handed_over: bool = False,
) -> CacheTraffic:
    """DRAM bytes per node of `analysis` through a cache of `cache_bytes` (see the module
    docstring). `warm` starts with the graph inputs and constants resident and the weights
    cached (a micro-benchmark that repeats one op on the same tensors); `flush_outputs`
    charges the model's outputs' final write-back to the ``output`` node; `handed_over` starts
    with the graph input resident and dirty, as the tensor the network part before this one
    just wrote (the search's stage fragments: at a stage boundary that tensor is all that is
    live, so the parts' estimates add up to the whole network's)."""
    layers = _Simulation(analysis, cache_bytes, warm, handed_over).run(flush_outputs)
    return CacheTraffic(cache_bytes, analysis.dtype, layers)


def dram_bytes_by_node(traffic: CacheTraffic, names: Iterable[str]) -> int:
    """Summed `dram_bytes_est` of the nodes `names` (a profiled layer key's nodes)."""
    found = traffic.by_name()
    return sum(found[n].dram_bytes_est for n in names if n in found)
