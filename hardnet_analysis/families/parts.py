"""What a family offers the architecture search: searched blocks and parts measured alone.

A *searchable* definition (`Searchable`) lists its HarDBlocks in a fixed order (the search's
stages: HarDNet's stages, or FC-HarDNet's encoder blocks then its decoder blocks) and rebuilds
itself with other blocks. Its family's `FamilySpec.search_parts` cuts the network into `Part`s:
each is built alone as a graph *fragment* fed by input nodes of given shapes, and the parts'
costs sum to the whole graph's exactly (input and output nodes cost nothing).

A part names where each of its inputs comes from: the network input (`NETWORK_INPUT`) or
output k of an earlier part, ``(part, k)``. Where an input's shape depends on other stages'
blocks (FC-HarDNet's skip widths, the decoder's previous block), the search measures the part
once per shape it can meet; where it does not (a HarDNet stage after a fixed-width transition),
once per block. Example: FC-HarDNet-70 has 11 parts (stem, 5 encoder stages, 4 decoder stages,
head); decoder stage 0 reads ``(5, 0)`` (encoder stage 5's output) and ``(4, 1)`` (encoder
stage 4's skip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hardnet_analysis.families.registry import NetworkDef

if TYPE_CHECKING:
    import networkx as nx

    from hardnet_analysis.families.hardnet.definition import HarDBlockDef

Shape = tuple[int, ...]
#: (part index, output index) of an input's producer; the network input is ``(-1, 0)``.
Source = tuple[int, int]
NETWORK_INPUT: Source = (-1, 0)


class Searchable(NetworkDef, Protocol):
    """A definition whose HarDBlocks the search varies."""

    def blocks(self) -> tuple[HarDBlockDef, ...]:
        """The searched blocks, in the search's stage order."""
        ...

    def with_blocks(self, blocks: Sequence[HarDBlockDef], name: str) -> Searchable:
        """This network named `name` with `blocks` in place of `blocks()`."""
        ...


@dataclass(frozen=True)
class Part:
    """One piece of a searchable network. `stage` is the index of the searched block it holds
    (None: it holds none, as a stem or a head); `inputs` where each input comes from; `build`
    makes its fragment for a definition and one shape per input, its output nodes (op
    ``output``) in output order."""

    name: str
    stage: int | None
    inputs: tuple[Source, ...]
    build: Callable[[Any, tuple[Shape, ...]], nx.DiGraph]


PartsFn = Callable[[Any, Shape], tuple[Part, ...]]
