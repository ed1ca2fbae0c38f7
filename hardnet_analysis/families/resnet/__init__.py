"""The ResNet v1/v1.5 family: definition (pure data), analytic graph (no torch) and torch module
(``model``, imported only when a module is built)."""

from hardnet_analysis.families.registry import FamilySpec, register_family
from hardnet_analysis.families.resnet.definition import ResNetDef
from hardnet_analysis.families.resnet.graph import build_resnet_graph

SPEC = register_family(
    FamilySpec(
        name="resnet",
        definition=ResNetDef,
        graph=build_resnet_graph,
        module=f"{__name__}.model:ResNet",
        description="ResNet v1 and v1.5 (torchvision's layout)",
    )
)

__all__ = ["SPEC", "ResNetDef"]
