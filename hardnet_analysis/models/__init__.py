"""Torch modules from names or definitions (imports torch); each family's module lives in its
folder under ``hardnet_analysis.families``."""

from hardnet_analysis.models.factory import create_model, load_weights

__all__ = ["create_model", "load_weights"]
