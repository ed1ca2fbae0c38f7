"""Errors that reach the user as one line (the CLI formats them; `--debug` shows the traceback)."""

from __future__ import annotations


class HdaError(Exception):
    """A failure the user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(HdaError):
    """Bad input from the user: an unknown name, a malformed size, an impossible definition."""

    exit_code = 2


class ShapeError(UsageError):
    """A feature map would shrink to zero (or below) at a named layer."""


class UnknownModelError(UsageError):
    """A model name that no registry entry, builder or file resolves."""


class TransientError(HdaError):
    """A failure that another attempt may not meet (a diverged run, a lost worker): the
    training of a front retries it, unlike a `UsageError`, which would fail the same way."""


class NonFiniteLossError(TransientError):
    """The training loss became NaN or infinite."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ('' for none): errors are shown on one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
