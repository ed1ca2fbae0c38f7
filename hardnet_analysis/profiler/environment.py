"""The library versions a timing was produced with (a run file's ``versions``): hda's, Python's,
torch's and torchvision's, and each backend's own (CUDA and cuDNN)."""

from __future__ import annotations

import platform

import torch

from hardnet_analysis import __version__
from hardnet_analysis.backends import get_backend, list_backends


def versions() -> dict[str, str]:
    """Versions of hda, Python and the libraries that produced the timings."""
    import torchvision

    return {
        "hda": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        **{k: v for name in list_backends() for k, v in get_backend(name).versions().items()},
    }
