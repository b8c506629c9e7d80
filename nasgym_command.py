"""The ``nasgym`` command's entry point, outside the package so that it runs before ``import nasgym``.

Importing the package takes a moment (Gymnasium, NumPy). A Ctrl-C or SIGTERM in that moment would otherwise print
Python's traceback of whatever import it interrupted; here it is only noted, and the command then stops with its
one clean line (``nasgym.runners.cli``'s handlers take over once the package is imported).
"""

from __future__ import annotations

import signal
import sys

_STOPS: list[int] = []


def _note(signum: int, frame: object) -> None:
    _STOPS.append(signum)


def main() -> int:
    previous = {stop: signal.signal(stop, _note) for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        from nasgym.runners import cli
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
    if _STOPS:
        print(cli.INTERRUPTED, file=sys.stderr)
        return cli.INTERRUPTED_STATUS
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
