"""The search space: a template plus, per stage, lists of growth rate k, layers per block and
channel weighting factor m (one list for all stages, or one per stage).

A template is a definition of a family with ``search_parts`` (`hardnet_analysis.families.parts`):
a HarDNet (stages: its stages) or an FC-HarDNet (its encoder then decoder blocks: 5 + 4 for
fchardnet70). It fixes everything else: stem, stage count, transition widths, pooling, head.
A *candidate* picks one (k, m, n_layers) per stage. With a global m list the candidates are, for
each m, the product of the stages' k x n_layers lists (every stage uses that m); with per-stage
m lists they are the product of the stages' k x m x n_layers lists. The default space for
HarDNet-68 has 4 m values and 5 k x 3 n_layers per stage: 4 * 15**5 = 3,037,500 candidates;
a template of more than `WIDE_STAGES` stages gets 2 k x 2 n_layers per stage (fchardnet70:
4 * 4**9 = 1,048,576).

File format (JSON, or TOML with the same keys; ``hda search --write-space FILE`` writes one)::

    {"format": "hda-search-space", "version": 1, "template": "hardnet68",
     "m": [1.6, 1.65, 1.7, 1.75],
     "stages": [{"k": [10, 12, 14, 16, 18], "n_layers": [4, 6, 8]}, ...]}

Leave out the top-level ``m`` and give ``"m": [...]`` in every stage for per-stage m.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from itertools import product
from typing import Any

from hardnet_analysis.errors import UnknownModelError, UsageError
from hardnet_analysis.families.hardnet.definition import (
    MAX_K,
    MAX_M,
    MAX_N_LAYERS,
    HarDBlockDef,
    HarDNetDef,
)
from hardnet_analysis.families.parts import Searchable
from hardnet_analysis.families.registry import get_family, list_families, list_models
from hardnet_analysis.resolve import ModuleSpec, resolve
from hardnet_analysis.units import parse_whole

FORMAT = "hda-search-space"
VERSION = 1
DEFAULT_TEMPLATE = "hardnet68"
#: The endings of space files, by what they hold: TOML or JSON.
SPACE_SUFFIXES = (".toml", ".json")

#: Default lists, relative to the template: k scaled (to even numbers), n_layers scaled, m shifted.
DEFAULT_K_SCALES = (0.75, 0.875, 1.0, 1.125, 1.25)
DEFAULT_N_SCALES = (0.5, 0.75, 1.0)
DEFAULT_M_SHIFTS = (-0.1, -0.05, 0.0, 0.05)
#: The largest k and n_layers a space may hold: far above any published HarDNet (k 160, 16
#: layers), low enough that a candidate builds in moments and its counts fit 64-bit integers.
#: Templates of more stages default to WIDE_K_SCALES x WIDE_N_SCALES per stage (a product).
WIDE_STAGES = 6
WIDE_K_SCALES = (0.75, 1.0)
WIDE_N_SCALES = (0.5, 1.0)
#: The widest transition a space may hold: four times HarDNet-85's widest (1280).
MAX_WIDTH = 8192


@dataclass(frozen=True, order=True)
class StageChoice:
    """One stage's block: growth rate k, channel weighting factor m, layers per block."""

    k: int
    m: float
    n_layers: int
    #: The stage's transition (output) width; None: the template's, not searched.
    width: int | None = None


Choices = tuple[StageChoice, ...]


@dataclass(frozen=True)
class StageSpace:
    """The lists one stage draws from; `m` is None when the space's m is global, `widths`
    (transition output widths) None when the template's widths are not searched."""

    k: tuple[int, ...]
    n_layers: tuple[int, ...]
    m: tuple[float, ...] | None = None
    widths: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Group:
    """A product sub-space: each stage picks one of `options[stage]`. Global index
    `offset + i` is candidate i of this group, stage 0 being the most significant digit."""

    offset: int
    options: tuple[tuple[StageChoice, ...], ...]

    @cached_property
    def radices(self) -> tuple[int, ...]:
        return tuple(len(o) for o in self.options)

    @cached_property
    def size(self) -> int:
        return math.prod(self.radices)

    def digits(self, local: int) -> tuple[int, ...]:
        """The option index of each stage for candidate `local` of this group."""
        out = []
        for radix in reversed(self.radices):
            local, digit = divmod(local, radix)
            out.append(digit)
        return tuple(reversed(out))


def _canonical(values: Sequence[Any], what: str) -> tuple[Any, ...]:
    if not values:
        raise UsageError(f"{what}: the list is empty; give at least one value")
    return tuple(sorted(set(values)))


def _check_ints(values: Sequence[Any], what: str, most: int) -> tuple[int, ...]:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= most:
            raise UsageError(f"{what}: {v!r} is not an integer from 1 to {most}")
    return _canonical(values, what)


def _check_m(values: Sequence[Any], what: str) -> tuple[float, ...]:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 < v <= MAX_M:
            raise UsageError(f"{what}: {v!r} is not a number > 1 and <= {MAX_M:g}")
    return _canonical([float(v) for v in values], what)


@dataclass(frozen=True)
class SearchSpace:
    """A template and the per-stage lists; `m` is the global m list (None: per-stage m)."""

    template: Searchable
    stages: tuple[StageSpace, ...]
    m: tuple[float, ...] | None
    template_name: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        if len(self.stages) != len(self.template.blocks()):
            raise UsageError(
                f"the space has {len(self.stages)} stages but template {self.template_name} has "
                f"{len(self.template.blocks())}"
            )
        per_stage = [s.m is not None for s in self.stages]
        if self.m is None and not all(per_stage):
            raise UsageError("m: give one list for all stages, or a list in every stage")
        if self.m is not None and any(per_stage):
            raise UsageError("m: give one list for all stages or one per stage, not both")
        searched = any(s.widths is not None for s in self.stages)
        if searched and not self.template_widths():
            raise UsageError(
                f"widths: template {self.template_name} has no transition widths to search "
                "(a HarDNet's stages do)"
            )
        native = self.template_widths()
        stages = tuple(
            StageSpace(
                _check_ints(s.k, f"stage {i} k", MAX_K),
                _check_ints(s.n_layers, f"stage {i} n_layers", MAX_N_LAYERS),
                None if s.m is None else _check_m(s.m, f"stage {i} m"),
                None
                if not searched
                else _check_ints(s.widths or (native[i - 1],), f"stage {i} widths", MAX_WIDTH),
            )
            for i, s in enumerate(self.stages, start=1)
        )
        object.__setattr__(self, "stages", stages)
        if self.m is not None:
            object.__setattr__(self, "m", _check_m(self.m, "m"))

    def template_widths(self) -> tuple[int, ...]:
        """The template's transition widths, one per stage ((128, 256, 320, 640, 1024) for
        HarDNet-68); empty for a template without them (FC-HarDNet)."""
        if not isinstance(self.template, HarDNetDef):
            return ()
        return tuple(s.transition_channels for s in self.template.stages)

    @property
    def searches_widths(self) -> bool:
        """True when the stages' transition widths are choices."""
        return self.stages[0].widths is not None

    @cached_property
    def groups(self) -> tuple[Group, ...]:
        """One group per global m value (every stage uses it), or one group for per-stage m."""
        if self.m is None:
            return (Group(0, tuple(_options(s, s.m or ()) for s in self.stages)),)
        groups: list[Group] = []
        offset = 0
        for m in self.m:
            group = Group(offset, tuple(_options(s, (m,)) for s in self.stages))
            groups.append(group)
            offset += group.size
        return tuple(groups)

    @property
    def size(self) -> int:
        """Number of candidates."""
        return sum(g.size for g in self.groups)

    def choices(self, index: int) -> Choices:
        """The (k, m, n_layers) of each stage of candidate `index` (0 <= index < size)."""
        if not 0 <= index < self.size:
            raise IndexError(f"candidate {index} is outside the space of {self.size}")
        group = next(g for g in reversed(self.groups) if g.offset <= index)
        digits = group.digits(index - group.offset)
        return tuple(opts[d] for opts, d in zip(group.options, digits, strict=True))

    def index_of(self, choices: Choices) -> int | None:
        """The index of the candidate with these choices, or None if the space lacks it."""
        for group in self.groups:
            local = 0
            for opts, choice in zip(group.options, choices, strict=True):
                if choice not in opts:
                    break
                local = local * len(opts) + opts.index(choice)
            else:
                return group.offset + local
        return None

    def template_choices(self) -> Choices:
        """The template's own (k, m, n_layers) per stage."""
        widths = self.template_widths() if self.searches_widths else (None,) * len(self.stages)
        return tuple(
            StageChoice(b.growth_rate, b.grmul, b.n_layers, w)
            for b, w in zip(self.template.blocks(), widths, strict=True)
        )

    def definition(self, choices: Choices, name: str | None = None) -> Searchable:
        """The template with each stage's block set to `choices` (depthwise/keep_base kept),
        and its transition to the choice's width where it has one."""
        blocks = tuple(
            replace(b, growth_rate=c.k, grmul=c.m, n_layers=c.n_layers)
            for b, c in zip(self.template.blocks(), choices, strict=True)
        )
        defn = self.template.with_blocks(blocks, name or self.template.name)
        if not isinstance(defn, HarDNetDef) or all(c.width is None for c in choices):
            return defn
        stages = tuple(
            s if c.width is None else replace(s, transition_channels=c.width)
            for s, c in zip(defn.stages, choices, strict=True)
        )
        return replace(defn, stages=stages)

    def to_dict(self) -> dict[str, Any]:
        """The space as a file document (see the module docstring)."""
        doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "template": self.template_name}
        if self.m is not None:
            doc["m"] = list(self.m)
        doc["stages"] = [
            {"k": list(s.k), "n_layers": list(s.n_layers)}
            | ({} if s.m is None else {"m": list(s.m)})
            | ({} if s.widths is None else {"widths": list(s.widths)})
            for s in self.stages
        ]
        return doc


def _options(stage: StageSpace, ms: Sequence[float]) -> tuple[StageChoice, ...]:
    """Every (k, m, n_layers, width) of a stage, the width the least significant."""
    widths = stage.widths or (None,)
    return tuple(
        StageChoice(k, m, n, w) for k, m, n, w in product(stage.k, ms, stage.n_layers, widths)
    )


def load_template(name: str) -> Searchable:
    """The network a search starts from, through the one resolution path (``resolve``): a
    registered name of a searchable family (``hardnet68``, ``fchardnet70``) or a definition
    file (``*.json``)."""
    families = [f for f in list_families() if get_family(f).search_parts is not None]
    try:
        defn = resolve(name)
    except UnknownModelError:
        known = ", ".join(n for f in families for n in list_models(f))
        raise UsageError(f"unknown template {name!r}; use one of {known} or a FILE.json") from None
    if isinstance(defn, ModuleSpec) or defn.family not in families:
        what = "a torch module builder" if isinstance(defn, ModuleSpec) else f"a {defn.family}"
        searchable = ", ".join(families)
        raise UsageError(f"template {name!r} is {what}, not a HarDNet definition ({searchable})")
    template: Searchable = defn
    return template


def scale_even(value: int, factor: float) -> int:
    """`value * factor` rounded to the nearest even number, at least 2: (14, 0.75) -> 10."""
    return max(2, 2 * round(value * factor / 2))


def scale_int(value: int, factor: float) -> int:
    """`value * factor` rounded to the nearest integer, at least 1: (8, 0.75) -> 6."""
    return max(1, round(value * factor))


def default_space(template: Searchable, template_name: str = DEFAULT_TEMPLATE) -> SearchSpace:
    """k scaled by DEFAULT_K_SCALES, n_layers by DEFAULT_N_SCALES (WIDE_* for a template of more
    than WIDE_STAGES stages), a global m list shifted by DEFAULT_M_SHIFTS (values > 1 only); the
    template's own values are always included."""
    blocks = template.blocks()
    wide = len(blocks) > WIDE_STAGES
    k_scales = WIDE_K_SCALES if wide else DEFAULT_K_SCALES
    n_scales = WIDE_N_SCALES if wide else DEFAULT_N_SCALES
    stages = tuple(
        StageSpace(
            tuple({scale_even(b.growth_rate, f) for f in k_scales} | {b.growth_rate}),
            tuple({scale_int(b.n_layers, f) for f in n_scales} | {b.n_layers}),
        )
        for b in blocks
    )
    grmuls = {b.grmul for b in blocks}
    if len(grmuls) != 1:
        ms = [(b.grmul,) for b in blocks]
        stages = tuple(replace(s, m=m) for s, m in zip(stages, ms, strict=True))
        return SearchSpace(template, stages, None, template_name)
    base = grmuls.pop()
    m = tuple({v for d in DEFAULT_M_SHIFTS if (v := round(base + d, 4)) > 1} | {base})
    return SearchSpace(template, stages, m, template_name)


def _number_list(text: str, what: str, integer: bool) -> list[float]:
    """Comma-separated numbers, parsed as every count and number flag is (ASCII digits; no
    '_' or other scripts' digits, which int() and float() would take)."""
    values: list[float] = []
    for part in text.split(","):
        part = part.strip()
        try:
            values.append(parse_whole(part) if integer else _float(part))
        except UsageError:
            kind = "integers" if integer else "numbers"
            raise UsageError(
                f"{what}: {part!r} is not a number; give comma-separated {kind}"
            ) from None
    return values


def _float(text: str) -> float:
    """A number in ASCII as float() reads it; NaN, infinity and 1e400 pass, for the range
    check of the values to name."""
    if not _FLOAT.match(text):
        raise UsageError(f"{text!r} is not a number")
    return float(text)


_FLOAT = re.compile(
    r"[+-]?(?:inf|infinity|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\Z", re.IGNORECASE
)


def _scaled(value: int, factors: Sequence[float], what: str) -> list[float]:
    """`value` times each factor, rounded (k to even numbers); a factor that is not finite,
    or that scales `value` below 1 (which rounding would turn into the smallest k or
    n_layers, the same for every stage), is a UsageError."""
    scale = scale_even if what in ("--k", "--widths") else scale_int
    out: list[float] = []
    for factor in factors:
        if not math.isfinite(factor) or value * factor < 1:
            raise UsageError(
                f"{what}: scale x{factor:g} of the template's {value} is {value * factor:g}; "
                "give scales that keep every stage's value at 1 or more"
            )
        out.append(scale(value, factor))
    return out


def parse_stage_lists(
    text: str, what: str, template_values: Sequence[float], integer: bool = True
) -> list[list[float]]:
    """Per-stage lists from a flag: ``"4,8,16"`` (every stage), ``"12,14/16/20/40/160"`` (one
    list per stage, separated by ``/``) or ``"x0.75,x1"`` (scales of the template's value; k is
    rounded to even numbers, n_layers to integers)."""
    stages = len(template_values)
    text = text.strip()
    if not text:
        raise UsageError(f"{what}: the list is empty; give at least one value")
    if text.startswith("x"):
        if not integer:
            raise UsageError(f"{what}: scales (x0.9) apply to k and n_layers, not to m")
        factors = _number_list(text.replace("x", ""), what, integer=False)
        return [_scaled(int(v), factors, what) for v in template_values]
    parts = text.split("/")
    if len(parts) == 1:
        return [_number_list(parts[0], what, integer)] * stages
    if len(parts) != stages:
        raise UsageError(
            f"{what}: {len(parts)} lists separated by '/' but the template has {stages} stages"
        )
    return [_number_list(p, what, integer) if p.strip() else [] for p in parts]


def with_flags(
    space: SearchSpace,
    k: str | None,
    m: str | None,
    n_layers: str | None,
    widths: str | None = None,
) -> SearchSpace:
    """`space` with the lists given by the --k, --m, --n-layers and --widths flags replaced
    (`--widths x0.75,x1` scales each stage's transition width, to even numbers)."""
    stages = list(space.stages)
    if widths is not None:
        native = space.template_widths()
        if not native:
            raise UsageError(
                f"--widths: template {space.template_name} has no transition widths to search "
                "(a HarDNet's stages do)"
            )
        ws = parse_stage_lists(widths, "--widths", native)
        stages = [
            replace(s, widths=tuple(int(v) for v in v_)) for s, v_ in zip(stages, ws, strict=True)
        ]
    blocks: list[HarDBlockDef] = list(space.template.blocks())
    if k is not None:
        ks = parse_stage_lists(k, "--k", [b.growth_rate for b in blocks])
        stages = [replace(s, k=tuple(int(v) for v in v_)) for s, v_ in zip(stages, ks, strict=True)]
    if n_layers is not None:
        ns = parse_stage_lists(n_layers, "--n-layers", [b.n_layers for b in blocks])
        stages = [
            replace(s, n_layers=tuple(int(v) for v in v_)) for s, v_ in zip(stages, ns, strict=True)
        ]
    global_m = space.m
    if m is not None:
        if "/" in m or m.strip().startswith("x"):  # per-stage lists, or scales (refused)
            ms = parse_stage_lists(m, "--m", [b.grmul for b in blocks], integer=False)
            stages = [replace(s, m=tuple(v)) for s, v in zip(stages, ms, strict=True)]
            global_m = None
        else:
            global_m = tuple(_number_list(m, "--m", integer=False))
            stages = [replace(s, m=None) for s in stages]
    return replace(space, stages=tuple(stages), m=global_m)
