"""The FC-HarDNet family (semantic segmentation): definition (pure data), analytic graph (no
torch) and torch module in the official FCHarDNet layout (``model``, imported only when a module
is built)."""

from hardnet_analysis.families.fchardnet.definition import (
    EncoderStageDef,
    FCHarDNetConfig,
    FCHarDNetDef,
    FCStemDef,
)
from hardnet_analysis.families.fchardnet.graph import build_fchardnet_graph, search_parts
from hardnet_analysis.families.registry import FamilySpec, register_family

SPEC = register_family(
    FamilySpec(
        name="fchardnet",
        definition=FCHarDNetDef,
        graph=build_fchardnet_graph,
        search_parts=search_parts,
        module=f"{__name__}.model:FCHarDNet",
        description="Fully convolutional HarDNets for segmentation (FCHarDNet layout)",
    )
)

__all__ = ["SPEC", "EncoderStageDef", "FCHarDNetConfig", "FCHarDNetDef", "FCStemDef"]
