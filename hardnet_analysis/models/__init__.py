"""Torch modules built from definitions (imports torch)."""

from hardnet_analysis.models.factory import build_module, create_model, load_weights

__all__ = ["build_module", "create_model", "load_weights"]
