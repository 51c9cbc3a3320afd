"""User-facing errors and the command-line wrapper that turns them into one line + exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


class UserError(Exception):
    """A problem with the user's input (file, config, flag). Printed as one line, exit status 2."""


class _ArgumentError(Exception):
    """argparse's complaint, raised instead of its usage-plus-message exit."""


def _raise_argument_error(message: str) -> None:
    raise _ArgumentError(message)


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line: some library messages (tarfile's, torch's) span several."""
    parts = [part.strip() for part in str(text).splitlines()]
    parts = [part[2:] if part.startswith("- ") else part for part in parts]  # tarfile's bullet list
    joined = "; ".join(p for p in parts if p).replace(":;", ":")
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def where(path: object, line: int | None = None) -> str:
    """Format a location the way compilers do: ``path:line``."""
    return f"{path}:{line}" if line is not None else str(path)


def run_cli(
    impl: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``argv`` and run ``impl``; a :class:`UserError` becomes ``error: ...`` on stderr and 2.

    A bad flag is one line and 2 as well. With ``--debug`` on the command line the exception
    propagates with its traceback instead.
    """
    if not any(a.dest == "debug" for a in parser._actions):
        parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.error = _raise_argument_error  # type: ignore[method-assign]
    try:
        args = parser.parse_args(argv)
    except _ArgumentError as exc:
        print(f"error: {exc} (see {parser.prog} --help)", file=sys.stderr)
        return 2
    try:
        return int(impl(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {one_line(exc, 1000)}", file=sys.stderr)
        return 2
