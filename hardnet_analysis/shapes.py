"""`InputShape`: the inputs a network runs on, one full tensor shape per input, batch first.

Today every network takes one image, NCHW: ``InputShape.of_image(224)`` is
``InputShape(((1, 3, 224, 224),))`` and ``InputShape.of_image((360, 480), batch=2)`` is
``((2, 3, 360, 480),)``. The tuple of shapes leaves room for inputs of any rank and for several
inputs (a video clip ``(1, 3, 16, 112, 112)``, an image beside a mask); the helpers that read one
image (`image`, `hw`) refuse those with a ValueError rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass

#: One tensor's shape, batch first: (N, C, H, W) for an image.
TensorShape = tuple[int, ...]


@dataclass(frozen=True)
class InputShape:
    """The shapes of a network's inputs, one per input, each batch first (see the module
    docstring); every dimension is a positive int. ``InputShape.of_image(224).hw`` is
    ``(224, 224)``, its `batch` 1 and its `channels` 3."""

    shapes: tuple[TensorShape, ...]

    def __post_init__(self) -> None:
        if not self.shapes or any(not s or min(s) < 1 for s in self.shapes):
            raise ValueError(f"an input shape needs positive dimensions, not {self.shapes}")

    @classmethod
    def of_image(cls, size: int | tuple[int, int], batch: int = 1, channels: int = 3) -> InputShape:
        """One NCHW image input: `size` a square side (224) or (height, width)."""
        h, w = (size, size) if isinstance(size, int) else size
        return cls(((batch, channels, h, w),))

    @property
    def image(self) -> TensorShape:
        """The one NCHW input: ``(1, 3, 224, 224)``; a ValueError for other inputs."""
        if len(self.shapes) != 1 or len(self.shapes[0]) != 4:
            raise ValueError(f"expected one NCHW image input, not {self.shapes}")
        return self.shapes[0]

    @property
    def hw(self) -> tuple[int, int]:
        """The image's (height, width): ``(360, 480)``."""
        _, _, h, w = self.image
        return h, w

    @property
    def batch(self) -> int:
        """The image's batch size N."""
        return self.image[0]

    @property
    def channels(self) -> int:
        """The image's channel count C (3 for RGB)."""
        return self.image[1]
