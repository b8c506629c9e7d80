"""The ``nasgym`` command. Errors a user can fix print as one line (``--debug`` shows the traceback).

Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop any command the same way, from its first moment (the commands' imports
run inside ``main``): files are closed, a search stays resumable, one line says so and the exit status is 130.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import NoReturn

from nasgym import __version__
from nasgym.core.errors import NasGymError, NasGymWarning
from nasgym.core.progress import PROGRESS_VARIABLE

INTERRUPTED = "nasgym: interrupted; what finished is kept (a search continues with --resume, a table build when rerun)"
INTERRUPTED_STATUS = 130
"""The exit status after Ctrl-C or SIGTERM (128 + SIGINT, what a shell reports for Ctrl-C)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (subcommand parsers are made of the same class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nasgym",
        description="Neural architecture search as a Gymnasium env.",
        epilog=f"Ctrl-C or kill (SIGTERM) stops a command cleanly: one line, exit status {INTERRUPTED_STATUS}.",
    )
    parser.add_argument("--version", action="version", version=f"nasgym {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    subparsers = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    # The commands bring PyTorch and the agents: imported here, inside main, where Ctrl-C is a clean stop.
    from nasgym.runners.cli import bench, data, fidelity, final, search, table, train, transfer

    for command in (train, search, data, bench, transfer, final, fidelity, table):
        command.add_parser(subparsers)
    return parser


def _describe_error(error: Exception) -> str:
    """nasgym's own errors say what to do; an OS error gets the path it concerns and what usually helps."""
    if isinstance(error, NasGymError) or not isinstance(error, OSError):
        return str(error)
    where = f" {error.filename}" if error.filename else ""
    advice_by_errno: dict[int | None, str] = {
        errno.ENOSPC: "free space and rerun (a search continues with --resume)",
        errno.EACCES: "check its permissions or choose another path",
        errno.EROFS: "it is on a read-only filesystem: choose another path",
        errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
        errno.EEXIST: "something is already there: choose another path",
        errno.ENOENT: "check the path",
    }
    advice = advice_by_errno.get(error.errno, "check the path and rerun")
    return f"cannot use{where}: {error.strerror or error}; {advice}"


_STOPS: list[int] = []
"""Signals received during this command: a library that swallows the KeyboardInterrupt (a bare ``except:`` in an
import) cannot make a stop asked for while the command starts go unheard."""


def _interrupt(signum: int, frame: object) -> None:
    _STOPS.append(signum)
    raise KeyboardInterrupt


def _one_line_warnings(format_warning: Callable[..., str]) -> Callable[..., str]:
    """``warnings.formatwarning`` that prints nasgym's own warnings as one line, like its errors."""

    def format_one(message, category, filename, lineno, line=None) -> str:
        if issubclass(category, NasGymWarning):
            return f"nasgym: warning: {message}\n"
        return format_warning(message, category, filename, lineno, line)

    return format_one


@contextlib.contextmanager
def _command_environment(args: argparse.Namespace) -> Iterator[None]:
    """While a command runs: one-line warnings, and ``--no-progress`` as NASGYM_PROGRESS=0 so the bars of data
    preparation and training (in this process and in those it starts) stay off too."""
    format_warning, progress = warnings.formatwarning, os.environ.get(PROGRESS_VARIABLE)
    warnings.formatwarning = _one_line_warnings(format_warning)
    if getattr(args, "no_progress", False):
        os.environ[PROGRESS_VARIABLE] = "0"
    try:
        yield
    finally:
        warnings.formatwarning = format_warning
        if progress is None:
            os.environ.pop(PROGRESS_VARIABLE, None)
        else:
            os.environ[PROGRESS_VARIABLE] = progress


def main(argv: list[str] | None = None) -> int:
    in_main_thread = threading.current_thread() is threading.main_thread()
    # `kill` stops a command like Ctrl-C: files are closed, a search stays resumable.
    _STOPS.clear()
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {stop: signal.signal(stop, _interrupt) for stop in stops} if in_main_thread else {}
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return INTERRUPTED_STATUS
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if _STOPS:  # asked to stop while the commands were imported, and something there swallowed it
        raise KeyboardInterrupt
    try:
        with _command_environment(args):
            return args.handler(args)
    except (NasGymError, OSError) as error:  # anything else is a bug: its traceback is what a report needs
        if args.debug:
            raise
        print(f"nasgym: error: {_describe_error(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
