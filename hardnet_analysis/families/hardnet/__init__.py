"""The HarDNet family: definition (pure data), analytic graph (no torch) and torch module
(``model``, imported only when a module is built)."""

from hardnet_analysis.families.hardnet.definition import (
    HarDBlockDef,
    HarDNetConfig,
    HarDNetDef,
    HeadDef,
    StageDef,
    StemDef,
)
from hardnet_analysis.families.hardnet.graph import build_hardnet_graph, search_parts
from hardnet_analysis.families.registry import FamilySpec, register_family

SPEC = register_family(
    FamilySpec(
        name="hardnet",
        definition=HarDNetDef,
        graph=build_hardnet_graph,
        search_parts=search_parts,
        module=f"{__name__}.model:HarDNet",
        description="Harmonic densely connected networks (PyTorch-HarDNet layout)",
    )
)

__all__ = ["SPEC", "HarDBlockDef", "HarDNetConfig", "HarDNetDef", "HeadDef", "StageDef", "StemDef"]
