"""Architecture families, one folder each (definition as pure data, analytic graph without
torch, torch module), registered once with a `FamilySpec`; and the registry of their models."""

from hardnet_analysis.families.registry import (
    FamilySpec,
    ModelEntry,
    NetworkDef,
    build_graph,
    build_module,
    family_of,
    get_definition,
    get_entry,
    get_family,
    list_families,
    list_models,
    register_family,
    register_model,
)

__all__ = [
    "FamilySpec",
    "ModelEntry",
    "NetworkDef",
    "build_graph",
    "build_module",
    "family_of",
    "get_definition",
    "get_entry",
    "get_family",
    "list_families",
    "list_models",
    "register_family",
    "register_model",
]
