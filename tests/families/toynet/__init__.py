"""A toy family used by the tests: a folder like any family's, found by discovery when its
parent folder is on ``hardnet_analysis.families.__path__``; nothing outside it names it."""

from hardnet_analysis.families.registry import FamilySpec, register_family

from .definition import ToyNetDef
from .graph import build_toynet_graph

SPEC = register_family(
    FamilySpec(
        name="toynet",
        definition=ToyNetDef,
        graph=build_toynet_graph,
        module=f"{__name__}.model:ToyNet",
        description="toy: strided Conv-BN-ReLU stages and a linear head",
    )
)

__all__ = ["SPEC", "ToyNetDef"]
