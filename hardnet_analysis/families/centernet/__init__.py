"""The CenterNet-HarDNet family (object detection): definition (pure data), analytic graph (no
torch) and torch module with the public CenterNet-HarDNet parameter layout (``model``, imported
only when a module is built)."""

from hardnet_analysis.families.centernet.definition import (
    BackboneStageDef,
    CenterNetHarDNetConfig,
    CenterNetHarDNetDef,
    HeadDef,
    UpStageDef,
)
from hardnet_analysis.families.centernet.graph import build_centernet_graph
from hardnet_analysis.families.registry import FamilySpec, register_family

SPEC = register_family(
    FamilySpec(
        name="centernet",
        definition=CenterNetHarDNetDef,
        graph=build_centernet_graph,
        module=f"{__name__}.model:CenterNetHarDNet",
        description="CenterNet detectors on HarDNet backbones (CenterNet-HarDNet layout)",
    )
)

__all__ = [
    "SPEC",
    "BackboneStageDef",
    "CenterNetHarDNetConfig",
    "CenterNetHarDNetDef",
    "HeadDef",
    "UpStageDef",
]
