"""Arguments and output helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

from hardnet_analysis.errors import UsageError, first_line
from hardnet_analysis.fileio import check_output
from hardnet_analysis.metrics.analysis import DTYPE_BYTES
from hardnet_analysis.shapes import DTYPES, InputShape, parse_input_shape
from hardnet_analysis.units import (
    format_count,
    parse_bytes,
    parse_duration,
    parse_input_size,
    parse_number,
    parse_whole,
)

if TYPE_CHECKING:
    from hardnet_analysis.metrics.analysis import Analysis

# Library modules are imported inside the functions that use them: `hda` imports every
# command module to build its parser, and a command loads only what it runs.

FORMATS = ("table", "json", "csv")
T = TypeVar("T")

#: The namespace attribute naming the options given on the command line (their destinations),
#: as opposed to those left at their defaults: an option that needs another is refused only
#: when given.
GIVEN = "given_options"


def _record(namespace: argparse.Namespace, dest: str) -> None:
    given: set[str] | None = getattr(namespace, GIVEN, None)
    if given is None:
        given = set()
        setattr(namespace, GIVEN, given)
    given.add(dest)


class _Records:
    """Mixed into an argparse action: after storing, record its option as given."""

    dest: str

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)  # type: ignore[misc]
        _record(namespace, self.dest)


class _Store(_Records, argparse._StoreAction):
    pass


class _StoreTrue(_Records, argparse._StoreTrueAction):
    pass


class _Append(_Records, argparse._AppendAction):
    pass


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit status 2), and which records
    the options given on the command line (`given`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Argument groups share this registry, so every option of every subcommand records.
        self.register("action", None, _Store)
        self.register("action", "store", _Store)
        self.register("action", "store_true", _StoreTrue)
        self.register("action", "append", _Append)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def given(args: argparse.Namespace, dest: str) -> bool:
    """Whether option `dest` (its destination, ``batch_size``) was on the command line."""
    return dest in getattr(args, GIVEN, ())


def flag(dest: str) -> str:
    """The option of destination `dest`: ``batch_size`` -> ``--batch-size``."""
    return "--" + dest.replace("_", "-")


def requires(args: argparse.Namespace, dest: str, needed: str, present: bool) -> None:
    """A UsageError naming both when option `dest` was given but what it needs, `needed` (an
    option such as ``--out DIR`` or a value such as ``--task segmentation``), is not in effect
    (`present` False): the option would be ignored without a word."""
    if given(args, dest) and not present:
        raise UsageError(f"{flag(dest)} applies only with {needed}")


def conflicts(args: argparse.Namespace, first: str, second: str, why: str) -> None:
    """A UsageError naming both when options `first` and `second` were both given: one would
    be ignored (`why` says which, or why they cannot go together)."""
    if given(args, first) and given(args, second):
        raise UsageError(f"{flag(first)} and {flag(second)} cannot be combined: {why}")


def argument_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises UsageError: its message becomes argparse's
    one-line usage error (exit status 2), prefixed with the option's name."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


#: The largest count any flag takes (a C int): beyond it torch and the loaders overflow.
MAX_COUNT = 2**31 - 1
#: Batch sizes: beyond this no batch of images fits a machine's memory.
MAX_BATCH = 2**20
#: Random seeds: numpy's generators take 32 bits.
MAX_SEED = 2**32 - 1


def parse_int(text: str, least: int, most: int = MAX_COUNT) -> int:
    """An integer from `least` to `most` in ASCII digits (`parse_whole`; a UsageError
    otherwise). Every count flag parses this way: no '_', '+', exponent or other scripts'
    digits."""
    value = parse_whole(text)
    if value < least:
        raise UsageError(f"{text!r} must be >= {least}")
    if value > most:
        raise UsageError(f"{text!r} must be <= {most:,}")
    return value


def parse_float(text: str, least: float, above: bool = False) -> float:
    """A finite number in ASCII (`parse_number`) of at least `least` (above it, strictly, with
    `above`)."""
    value = parse_number(text)
    if value < least or (above and value == least):
        raise UsageError(f"{text!r} must be {'>' if above else '>='} {least:g}")
    return value


#: argparse types. Each raises only argparse's error, from hda's one-line message.
input_size = argument_type(parse_input_size)
tensor_shape = argument_type(parse_input_shape)
byte_size = argument_type(parse_bytes)
duration = argument_type(parse_duration)
positive_int = argument_type(partial(parse_int, least=1))
non_negative_int = argument_type(partial(parse_int, least=0))
batch_size = argument_type(partial(parse_int, least=1, most=MAX_BATCH))
seed = argument_type(partial(parse_int, least=0, most=MAX_SEED))
positive_float = argument_type(partial(parse_float, least=0.0, above=True))
#: Any finite number (--lr, --wd: their settings check the range and say why).
number = argument_type(partial(parse_float, least=-math.inf))
#: Any integer a C int holds (--ignore-index: a mask value).
integer = argument_type(partial(parse_int, least=-MAX_COUNT))
non_negative_float = argument_type(partial(parse_float, least=0.0))
output_file = argument_type(partial(check_output, kind="file"))
output_dir = argument_type(partial(check_output, kind="directory"))


def input_sizes(text: str) -> tuple[tuple[int, int], ...]:
    """A comma-separated list of input sizes, each once, in the order given: ``"224,256"`` ->
    ((224, 224), (256, 256))."""
    return tuple(dict.fromkeys(parse_input_size(part.strip()) for part in text.split(",")))


def add_input_args(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """--input, --input-shape, --batch, --dtype; `several`: --input takes a list of sizes
    (``hda search --input 224,256,288``: the size is searched too)."""
    parser.add_argument(
        "--input",
        type=argument_type(input_sizes) if several else input_size,
        default=None,
        metavar="N|HxW[,...]" if several else "N|HxW",
        help="input resolution: 224 (square) or HxW such as 320x480 (default: the model's own, "
        "224 for ImageNet models, 32 for the registered CIFAR ones, 1024x2048 for fchardnet70, "
        "360x480 for fcdensenet103)"
        + ("; several, comma-separated, are each searched (224,256,288)" if several else ""),
    )
    parser.add_argument(
        "--input-shape",
        type=tensor_shape,
        action="append",
        default=None,
        metavar="[NAME=]SHAPE[:DTYPE]",
        help="a whole input tensor, batch first, instead of --input: 1x3x16x112x112 (a video "
        "clip), 1x128:int64 (token ids); once per positional input, in order, then NAME=... "
        f"for keyword inputs. DTYPE: {', '.join(DTYPES)} (default float32)",
    )
    parser.add_argument("--batch", type=batch_size, default=1, help="batch size (default 1)")
    parser.add_argument(
        "--dtype",
        choices=list(DTYPE_BYTES),
        default="fp32",
        help="element type for activation bytes (default fp32)",
    )


#: `input_shape`'s and `analyze_model`'s default size: the command's ``--input``.
FROM_ARGS = (0, 0)


def input_shape(
    args: argparse.Namespace, model: Any, size: tuple[int, int] | None = FROM_ARGS
) -> InputShape:
    """The one `InputShape` a command runs resolved `model` (a definition, a `ModuleSpec`) on:
    the ``--input-shape`` inputs where given, else ``--input`` (or `size`, one of a list of
    sizes; None for the model's native one) at ``--batch``, with the model's channels."""
    from hardnet_analysis.resolve import input_shape_of

    whole = input_shapes(args)
    if whole is not None:
        return whole
    return input_shape_of(model, args.input if size is FROM_ARGS else size, args.batch)


def input_shapes(args: argparse.Namespace) -> InputShape | None:
    """The inputs ``--input-shape`` gives (each once, in order), None where it is not given;
    a UsageError beside ``--input`` or ``--batch``, whose sizes the shapes already hold.
    ``--input-shape 1x3x16x112x112`` is ``InputShape(((1, 3, 16, 112, 112),))``."""
    parts: list[InputShape] | None = getattr(args, "input_shape", None)
    if not parts:
        return None
    conflicts(args, "input", "input_shape", "the shape holds the whole input, batch included")
    conflicts(args, "batch", "input_shape", "the shape's first dimension is the batch")
    return InputShape.join(parts)


def analyze_model(
    args: argparse.Namespace,
    model: str,
    size: tuple[int, int] | None = FROM_ARGS,
    dtype: str | None = None,
) -> Analysis:
    """`analyze` of `model` as named on the command line, resolved once (with ``--kwargs``
    where the command has it), at its `input_shape` and `dtype` (default ``--dtype``)."""
    from hardnet_analysis.analysis import analyze
    from hardnet_analysis.resolve import ModuleSpec, resolve

    target = resolve(model, kwargs=getattr(args, "kwargs", None))
    requires(
        args,
        "detections",
        "a module (package.module:callable, file.py:callable or a torchvision builder)",
        isinstance(target, ModuleSpec),
    )
    shape = input_shape(args, target, size)
    detections = getattr(args, "detections", None)
    return analyze(target, shape, dtype=dtype or args.dtype, name=model, detections=detections)


def add_device_args(parser: argparse._ActionsContainer, default: str = "cpu") -> None:
    """--device (a registered backend, `hardnet_analysis.backends`; ``auto`` where `default`
    is ``auto``) and --strict-device."""
    from hardnet_analysis.backends import AUTO, device_choices

    auto = default == AUTO
    parser.add_argument(
        "--device",
        type=argument_type(partial(parse_device, auto=auto)),
        default=default,
        metavar="DEVICE",
        help=f"where it runs: {device_choices(auto)}, or NAME:N for device N (default {default})",
    )
    parser.add_argument(
        "--strict-device",
        action="store_true",
        help="exit with status 2 when --device cannot run here instead of falling back to cpu",
    )


def parse_device(text: str, auto: bool = False) -> str:
    """A ``--device`` value: a registered backend's name, optionally ``:N``, or ``auto``."""
    from hardnet_analysis.backends import AUTO, device_choices, get_backend

    if auto and text == AUTO:
        return text
    name, colon, index = text.partition(":")
    if colon and not (index.isascii() and index.isdigit()):  # '²'.isdigit() is True
        raise UsageError(f"{text!r}: the index after ':' must be a number, as in {name}:1")
    try:
        get_backend(name)
    except UsageError:
        raise UsageError(f"unknown device {text!r}; accepted: {device_choices(auto)}") from None
    return text


def parse_json_object(text: str) -> dict[str, Any]:
    """A JSON object such as '{"num_classes": 10}' (a UsageError otherwise)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{text!r} is not valid JSON ({exc.msg})") from None
    except RecursionError:  # '[[[[...' nested deeper than the decoder goes
        raise UsageError(f"{text[:20]!r}... is nested too deeply") from None
    if not isinstance(value, dict):
        raise UsageError(f'{text!r} is not a JSON object ({{"key": value}})')
    return value


#: argparse type for `--kwargs`.
json_object = argument_type(parse_json_object)


def add_kwargs_arg(parser: argparse.ArgumentParser) -> None:
    """--kwargs: keyword arguments for a model callable or torchvision builder."""
    parser.add_argument(
        "--kwargs",
        type=json_object,
        default=None,
        metavar="JSON",
        help="keyword arguments for a module:callable, file.py:callable or torchvision builder, "
        "as a JSON object, e.g. '{\"width\": 32}'",
    )
    parser.add_argument(
        "--detections",
        type=argument_type(partial(parse_int, least=1)),
        default=None,
        metavar="N",
        help="for a module whose forward needs values (a detector's nonzero and NMS), traced on "
        "real tensors: every data-dependent selection keeps N candidates (or all, if fewer) "
        "instead of what the random input selects",
    )


def add_format_arg(parser: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    parser.add_argument(
        "--format", choices=formats, default="table", help="output format (default table)"
    )


#: The narrowest page tables are fitted to: ``COLUMNS=0`` (or a terminal that reports no
#: width) would otherwise print nothing at all.
MIN_WIDTH = 40


def console() -> Console:
    """Console for tables: the terminal's width, or ``COLUMNS`` where set, at least
    `MIN_WIDTH`; piped output without ``COLUMNS`` gets a wide page (tables fit themselves to the
    width, see `present.fit`)."""
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 160
    out.width = max(out.width, MIN_WIDTH)
    return out


def input_label(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


@contextmanager
def progress_bar(command: str, task: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A callable ``(done, total)`` showing long work: a rich bar with the count and the time
    left on a terminal's stderr, else a plain line per quarter (``hda search: 500/2,000
    candidates swept``), which the error contract allows on stderr."""
    if sys.stderr.isatty():
        columns = (*Progress.get_default_columns()[:2], MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            handle = bar.add_task(task, total=None)
            yield lambda done, total: bar.update(handle, completed=done, total=total)
        return
    marks = [0.25, 0.5, 0.75, 1.0]

    def log(done: int, total: int) -> None:
        if marks and done >= marks[0] * total:
            while marks and done >= marks[0] * total:
                marks.pop(0)
            print(f"hda {command}: {done:,}/{total:,} {unit}", file=sys.stderr)

    yield log


def warn(message: str) -> None:
    """One warning line on stderr: the command goes on."""
    print(f"hda: warning: {message}", file=sys.stderr)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (errors and warnings are one line)."""
    return first_line(exc) or type(exc).__name__


def real_run_note(analysis: Analysis) -> str | None:
    """The note for a module traced on real tensors (None for one traced on meta alone):
    what ran, why, and which layers' counts depend on the values and by how much.
    "traced on real tensors (cpu, random input seed 0, its own initialisation, seed 0: the meta
    run needs values at module 'rpn', op where); 206 layers (2.37G of 21.6G MACs) depend on
    the values via nonzero, nms, unique: their counts are for this input"."""
    run = analysis.real_run
    if run is None:
        return None
    why = re.split(r"[.,!] ", run["why"] + " ")[0][:100]  # the error's first clause
    kept = (
        "every data-dependent selection kept its first "
        f"{run['detections']:,} candidates (--detections)"
        if run["detections"] is not None
        else "their counts are for this input"
    )
    dependent = analysis.dependent_layers
    macs = sum(r.macs for r in dependent)
    kinds = ", ".join(sorted(set(analysis.data_dependent.values()))) or "nothing"
    return (
        f"traced on real tensors ({run['device']}, random input seed {run['seed']}, weights "
        f"{run['weights']}) because the meta run needs values at {run['where']} ({why}); "
        f"{len(dependent)} layers ({format_count(macs)} of {format_count(analysis.totals.macs)} "
        f"MACs) depend on input values via {kinds}: {kept}"
    )


def note_real_run(analysis: Analysis) -> None:
    """Print `real_run_note` as an ``hda: note:`` line on stderr, where there is one."""
    note = real_run_note(analysis)
    if note is not None:
        print(f"hda: note: {note}", file=sys.stderr)
