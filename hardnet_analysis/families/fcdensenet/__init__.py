"""The FC-DenseNet family (Tiramisu, semantic segmentation): definition (pure data), analytic
graph (no torch) and torch module (``model``, imported only when a module is built)."""

from hardnet_analysis.families.fcdensenet.definition import FCDenseNetDef
from hardnet_analysis.families.fcdensenet.graph import build_fcdensenet_graph
from hardnet_analysis.families.registry import FamilySpec, register_family

SPEC = register_family(
    FamilySpec(
        name="fcdensenet",
        definition=FCDenseNetDef,
        graph=build_fcdensenet_graph,
        module=f"{__name__}.model:FCDenseNet",
        description="Fully convolutional DenseNets (Tiramisu) for segmentation",
    )
)

__all__ = ["SPEC", "FCDenseNetDef"]
