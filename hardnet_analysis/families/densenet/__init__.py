"""The DenseNet-BC family: definition (pure data), analytic graph (no torch) and torch module
(``model``, imported only when a module is built)."""

from hardnet_analysis.families.densenet.definition import DenseNetDef
from hardnet_analysis.families.densenet.graph import build_densenet_graph
from hardnet_analysis.families.registry import FamilySpec, register_family

SPEC = register_family(
    FamilySpec(
        name="densenet",
        definition=DenseNetDef,
        graph=build_densenet_graph,
        module=f"{__name__}.model:DenseNet",
        description="DenseNet-BC (torchvision's layout)",
    )
)

__all__ = ["SPEC", "DenseNetDef"]
