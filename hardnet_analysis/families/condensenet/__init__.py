"""The CondenseNet family: definition (pure data), analytic graph (no torch) and torch module
(``model``, imported only when a module is built)."""

from hardnet_analysis.families.condensenet.definition import CondenseNetDef
from hardnet_analysis.families.condensenet.graph import build_condensenet_graph
from hardnet_analysis.families.registry import FamilySpec, register_family

SPEC = register_family(
    FamilySpec(
        name="condensenet",
        definition=CondenseNetDef,
        graph=build_condensenet_graph,
        module=f"{__name__}.model:build_condensenet",
        description="CondenseNet, training-time and converted (official layout)",
    )
)

__all__ = ["SPEC", "CondenseNetDef"]
