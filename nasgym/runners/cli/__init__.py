"""The ``nasgym`` command. Errors a user can fix print as one line (``--debug`` shows the traceback)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from nasgym import __version__
from nasgym.core.errors import NasGymError
from nasgym.runners.cli import bench, data, final, search, train, transfer

COMMANDS = (train, search, data, bench, transfer, final)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasgym", description="Neural architecture search as a Gymnasium env.")
    parser.add_argument("--version", action="version", version=f"nasgym {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    subparsers = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    # `kill` stops a command like Ctrl-C: files are closed, a search stays resumable.
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("nasgym: interrupted; evaluated rewards are in the cache (a search continues with --resume)",
              file=sys.stderr)  # fmt: skip
        return 130
    except (NasGymError, ValueError, TypeError, FileNotFoundError) as error:
        if args.debug:
            raise
        print(f"nasgym: error: {error}", file=sys.stderr)
        return 2
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
