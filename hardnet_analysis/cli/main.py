"""The `hda` entry point: builds the parser from the subcommand modules and dispatches.

Errors the user can act on are printed as one line (exit status 2 for usage errors);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Sequence

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
    search,
    search_worker,
    train,
)
from hardnet_analysis.cli import profile as profile_cmd
from hardnet_analysis.cli.common import Parser
from hardnet_analysis.errors import HdaError

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
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a front records it was found by
    try:
        code: int = args.func(args)
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
        return 0


if __name__ == "__main__":
    sys.exit(main())
