"""The `hda` entry point: builds the parser from the subcommand modules and dispatches.

Errors the user can act on are printed as one line (exit status 2 for usage errors);
``--debug`` shows the traceback instead. Standard output that cannot be written is one line too:
closed (``>&-``) before any work, exit status 2; a write that fails (a full disk) exit status 1;
a reader that went away (``| head``) ends the command quietly with 141, as SIGPIPE would.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Sequence
from typing import TextIO

from hardnet_analysis.cli import (
    calibrate,
    cio,
    compare,
    correlate,
    definition,
    evaluate,
    graph,
    models,
    predict,
    report,
    rules,
    search,
    search_worker,
    train,
)
from hardnet_analysis.cli import profile as profile_cmd
from hardnet_analysis.cli.common import Parser, one_line, warn
from hardnet_analysis.errors import HdaError, UsageError

COMMANDS = (
    cio,
    compare,
    models,
    definition,
    graph,
    search,
    profile_cmd,
    calibrate,
    predict,
    correlate,
    report,
    train,
    evaluate,
    search_worker,
)


def build_parser() -> Parser:
    parser = Parser(
        prog="hda", description="HarDNet analysis: memory traffic (CIO), MACs, params, MoC."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C stops hda even where it was started with SIGINT ignored (a shell's background job
    # without job control): a search's workers and long sweeps must stay stoppable.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.stderr is None:  # 2>&-: print(file=None) would write hda's messages to stdout
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process's own stderr)
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a front records it was found by
    with contextlib.nullcontext() if args.debug else _one_line_warnings():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The command, its errors as one line and its exit status."""
    try:
        _check_stdout()
        rules.check(args)
        code: int = args.func(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # a failing write shows here, not after exit as a traceback
        return code
    except HdaError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"hda {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hda: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _discard_stdout()  # the reader left (| head): stop quietly, as SIGPIPE would
        return 128 + signal.SIGPIPE
    except OSError as exc:
        if not _stdout_failed(exc):
            raise
        _discard_stdout()
        print(
            f"hda {args.command}: error: cannot write standard output: {exc.strerror}",
            file=sys.stderr,
        )
        return 1


def _check_stdout() -> None:
    """A UsageError, before any work, when standard output is closed or open only for reading:
    the results would be lost while the command said nothing."""
    if sys.stdout is None:  # fd 1 closed at start: Python drops every print without a word
        raise UsageError("standard output is closed; redirect it (>/dev/null) to discard results")
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a file (a test's capture): nothing to check
        return
    try:
        mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        raise UsageError(
            "standard output is closed; redirect it (>/dev/null) to discard results"
        ) from None
    if mode == os.O_RDONLY:
        raise UsageError("standard output is open only for reading; results cannot be written")


#: How a write to standard output fails (a full disk, a quota, a device error, a closed fd).
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF)


def _stdout_failed(exc: OSError) -> bool:
    """Whether standard output is what failed: a write error that names no file (hda's own
    files are named in an HdaError), or stdout still failing to flush."""
    if exc.filename is None and exc.errno in _WRITE_ERRNOS:
        return True
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        return True
    return False


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null, so that Python's flush at exit finds nothing to complain of."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Python warnings (a library's FutureWarning) as one ``hda: warning:`` line each, as hda's
    own, instead of two lines with the source line."""
    shown = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        warn(f"{category.__name__}: {one_line(Exception(str(message)))}")

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
