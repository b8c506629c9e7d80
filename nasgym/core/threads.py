"""Running torch work on one thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch ops on the calling thread only, then restore the thread count.

    For small work where threads only add synchronisation (the agents' networks: an LSTM step took 13 ms on two
    threads and 0.5 ms on one on a busy 2-core machine), and for work in a process that may fork later: GNU
    OpenMP's thread pool does not survive ``fork``, so a process that used it deadlocks its children
    (``AsyncVectorEnv``, multiprocessing) at their first parallel op.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
