"""`InputShape`: the inputs a network runs on, one full tensor shape per input, batch first.

Most networks take one image, NCHW: ``InputShape.of_image(224)`` is
``InputShape(((1, 3, 224, 224),))`` and ``InputShape.of_image((360, 480), batch=2)`` is
``((2, 3, 360, 480),)``. Inputs of any rank and several inputs fit too: a video clip
``(1, 3, 16, 112, 112)``, token ids ``(1, 128)`` of dtype ``int64``, an image beside a mask
passed by keyword. The helpers that read one image (`image`, `hw`) refuse those with an
`InputShapeError` rather than guess.

The text form, one input per ``--input-shape``, is ``[NAME=]D0xD1x...[:DTYPE]``:
``1x3x16x112x112``, ``1x128:int64``, ``mask=1x1x64x64:bool`` (`parse_input_shape`; `str` of
an `InputShape` writes it back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import prod

from hardnet_analysis.errors import UsageError

#: One tensor's shape, batch first: (N, C, H, W) for an image.
TensorShape = tuple[int, ...]

#: The element types an input may have, by torch's names (``torch.int64``): the tracer makes
#: meta tensors of ``getattr(torch, name)``; floating types first.
DTYPES = (
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "complex64",
    "complex128",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint8",
    "bool",
)
#: Floating element types: the only ones an image input has.
FLOATING = frozenset(DTYPES[:4])
#: torch's other names for the same types (``torch.long is torch.int64``).
DTYPE_ALIASES = {
    "float": "float32",
    "half": "float16",
    "double": "float64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
}
#: What an input's type is when none is given.
DEFAULT_DTYPE = "float32"
#: torch counts elements in a signed 64-bit integer: no tensor holds more.
MAX_ELEMENTS = 2**63 - 1

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Dimensions in ASCII digits; a '-' is read so that "1x-3" is named as not positive rather
# than as malformed. Digits past 30 saturate (an int that large is refused as too many
# elements anyway).
_DIM = re.compile(r"[ \t]*(-?[0-9]+)[ \t]*\Z")
_DIGITS = 30
_FORM = "[NAME=]D0xD1x...[:DTYPE], e.g. 1x3x16x112x112 or 1x128:int64"


class InputShapeError(UsageError, ValueError):
    """An input shape that is malformed, impossible, or not what a helper reads (`image`):
    a usage error (one line, exit status 2) that is also a ValueError."""


def dtype_name(name: str) -> str:
    """The canonical name of element type `name` (``"long"`` -> ``"int64"``, ``"torch.bool"``
    -> ``"bool"``); an `InputShapeError` naming those accepted for a type torch lacks."""
    canonical = DTYPE_ALIASES.get(name.removeprefix("torch."), name.removeprefix("torch."))
    if canonical not in DTYPES:
        raise InputShapeError(f"unknown input dtype {name!r}; accepted: {', '.join(DTYPES)}")
    return canonical


@dataclass(frozen=True)
class InputShape:
    """The shapes of a network's inputs, one per input, each batch first (see the module
    docstring); every dimension is a positive int. `dtypes` holds each input's element type
    (`DTYPES`; left out, all ``float32``); the last ``len(keywords)`` inputs are passed by
    keyword, under those names, the others by position.

    ``InputShape.of_image(224).hw`` is ``(224, 224)``, its `batch` 1 and its `channels` 3;
    ``InputShape(((1, 128), (1, 128)), ("int64", "bool"), ("mask",))`` is token ids passed
    by position and a mask passed as ``mask=``.
    """

    shapes: tuple[TensorShape, ...]
    dtypes: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.shapes:
            raise InputShapeError("a network needs at least one input shape")
        for shape in self.shapes:
            _check_dims(shape)
        dtypes = self.dtypes or (DEFAULT_DTYPE,) * len(self.shapes)
        if len(dtypes) != len(self.shapes):
            raise InputShapeError(f"{len(self.shapes)} input shapes but {len(dtypes)} dtypes")
        # Frozen: the normalised dtypes are set once here, so that equal inputs compare equal.
        object.__setattr__(self, "dtypes", tuple(dtype_name(d) for d in dtypes))
        _check_keywords(self.keywords, len(self.shapes))

    @classmethod
    def of_image(cls, size: int | tuple[int, int], batch: int = 1, channels: int = 3) -> InputShape:
        """One NCHW image input: `size` a square side (224) or (height, width)."""
        h, w = (size, size) if isinstance(size, int) else size
        return cls(((batch, channels, h, w),))

    @classmethod
    def join(cls, parts: Iterable[InputShape]) -> InputShape:
        """The inputs of `parts` in order, as one: positional inputs must all come before the
        first keyword input. ``join([of_image(224), parse_input_shape("mask=1x224:bool")])``
        is an image by position and ``mask=``."""
        items = [item for part in parts for item in part.items()]
        return cls._of_items(items)

    @classmethod
    def _of_items(cls, items: Sequence[tuple[str | None, TensorShape, str]]) -> InputShape:
        keywords = [name for name, _, _ in items if name is not None]
        first = next((i for i, (name, _, _) in enumerate(items) if name is not None), len(items))
        if len(keywords) != len(items) - first:
            raise InputShapeError(
                f"a positional input cannot follow a keyword input ({keywords[0]}=...): give "
                "the positional shapes first"
            )
        return cls(
            tuple(shape for _, shape, _ in items),
            tuple(dtype for _, _, dtype in items),
            tuple(keywords),
        )

    def items(self) -> list[tuple[str | None, TensorShape, str]]:
        """Each input as (keyword or None, shape, dtype), in order: ``[(None, (1, 3, 224, 224),
        "float32")]`` for one image."""
        names = [None] * self.positional + list(self.keywords)
        return list(zip(names, self.shapes, self.dtypes, strict=True))

    @property
    def positional(self) -> int:
        """How many inputs are passed by position (the first ones): 1 for an image."""
        return len(self.shapes) - len(self.keywords)

    @property
    def image(self) -> TensorShape:
        """The one NCHW input: ``(1, 3, 224, 224)``; an `InputShapeError` for other inputs
        (another rank, several, a keyword input, integers)."""
        if (
            len(self.shapes) != 1
            or self.keywords
            or len(self.shapes[0]) != 4
            or self.dtypes[0] not in FLOATING
        ):
            raise InputShapeError(f"expected one NCHW image input such as 1x3x224x224, not {self}")
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

    def __str__(self) -> str:
        """The text form, inputs separated by spaces: ``1x3x224x224``, ``1x128:int64
        mask=1x128:bool`` (`parse_input_shape` reads each back)."""
        return " ".join(_format(name, shape, dtype) for name, shape, dtype in self.items())


def _check_dims(shape: TensorShape) -> None:
    if not shape or any(not isinstance(d, int) or isinstance(d, bool) for d in shape):
        raise InputShapeError(f"an input shape is a tuple of ints, not {shape!r}")
    if min(shape) < 1:
        raise InputShapeError(f"an input shape needs positive dimensions, not {shape}")
    if prod(shape) > MAX_ELEMENTS:
        raise InputShapeError(
            f"input shape {shape} has more elements than a tensor holds (2**63 - 1)"
        )


def _check_keywords(keywords: tuple[str, ...], inputs: int) -> None:
    if len(keywords) > inputs:
        raise InputShapeError(f"{len(keywords)} keywords for {inputs} inputs")
    for name in keywords:
        if not _IDENTIFIER.match(name):
            raise InputShapeError(f"input name {name!r} is not a Python identifier")
    if len(set(keywords)) != len(keywords):
        raise InputShapeError(f"an input is named twice among {', '.join(keywords)}")


def _format(name: str | None, shape: TensorShape, dtype: str) -> str:
    text = "x".join(str(d) for d in shape)
    if dtype != DEFAULT_DTYPE:
        text += f":{dtype}"
    return f"{name}={text}" if name else text


def _dim(text: str, whole: str) -> int:
    match = _DIM.match(text)
    if not match:
        raise InputShapeError(f"input shape {whole!r} is not understood; use {_FORM}")
    digits = match.group(1)
    body = digits.lstrip("-")
    value = 10**_DIGITS if len(body) > _DIGITS else int(body)
    return -value if digits.startswith("-") else value


def parse_input_shape(text: str) -> InputShape:
    """One input from its text form ``[NAME=]D0xD1x...[:DTYPE]`` (dimensions in ASCII digits,
    batch first; DTYPE one of `DTYPES` or an alias, default float32); an `InputShapeError`
    naming what is wrong otherwise.

    ``parse_input_shape("1x128:int64")`` is ``InputShape(((1, 128),), ("int64",))`` and
    ``parse_input_shape("mask=1x64:bool").keywords`` is ``("mask",)``.
    """
    name, equals, rest = text.partition("=")
    if not equals:
        name, rest = "", text
    dims, colon, dtype = rest.partition(":")
    name, dtype = name.strip(), dtype.strip()
    if equals and not _IDENTIFIER.match(name):
        raise InputShapeError(f"input name {name!r} in {text!r} is not a Python identifier")
    if colon and not dtype:
        raise InputShapeError(f"input shape {text!r} has no dtype after ':'; use {_FORM}")
    shape = tuple(_dim(part, text) for part in re.split("[xX]", dims))
    if min(shape) < 1:
        raise InputShapeError(f"input shape {text!r} needs positive dimensions (each >= 1)")
    return InputShape((shape,), (dtype or DEFAULT_DTYPE,), (name,) if equals else ())


def _one(value: object, name: str | None) -> tuple[str | None, TensorShape, str]:
    """(name, shape, dtype) of one input given as a shape, a text form or a tensor."""
    if isinstance(value, str):
        parsed = parse_input_shape(value)
        keyword = parsed.keywords[0] if parsed.keywords else None
        if keyword is not None and name is not None:
            raise InputShapeError(f"input {name!r} is named twice: {value!r}")
        return name or keyword, parsed.shapes[0], parsed.dtypes[0]
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:  # a tensor, torch's or any other array's
        return name, tuple(int(d) for d in shape), dtype_name(str(dtype))
    if isinstance(value, Sequence) and value and all(isinstance(d, int) for d in value):
        return name, tuple(value), DEFAULT_DTYPE
    raise InputShapeError(
        f"an input is a shape (1, 3, 224, 224), a string '1x128:int64' or a tensor, not {value!r}"
    )


def input_shape_of_inputs(inputs: object) -> InputShape:
    """The `InputShape` of `analyze`'s ``inputs=``: an `InputShape`; one input (a shape such as
    ``(1, 3, 16, 112, 112)``, a text form ``"1x128:int64"``, or a tensor: its shape and dtype);
    a list or tuple of inputs, passed by position; or a dict of keyword inputs (name -> one
    input). ``input_shape_of_inputs([(1, 3, 32, 32), "1x10:int64"])`` is two positional
    inputs, the second of int64 token ids; ``input_shape_of_inputs({"x": (1, 8)}).keywords``
    is ``("x",)``."""
    if isinstance(inputs, InputShape):
        return inputs
    if isinstance(inputs, Mapping):
        if not inputs:
            raise InputShapeError("inputs={} names no input")
        return InputShape._of_items([_one(v, str(k)) for k, v in inputs.items()])
    if isinstance(inputs, str) or hasattr(inputs, "shape"):
        return InputShape._of_items([_one(inputs, None)])
    if isinstance(inputs, Sequence) and inputs and all(isinstance(d, int) for d in inputs):
        return InputShape._of_items([_one(inputs, None)])
    if isinstance(inputs, Sequence) and inputs:
        return InputShape._of_items([_one(v, None) for v in inputs])
    raise InputShapeError(
        "inputs= takes an InputShape, a shape, a string such as '1x128:int64', a tensor, a "
        f"list of these or a dict of keyword inputs, not {inputs!r}"
    )
