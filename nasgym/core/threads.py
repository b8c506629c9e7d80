"""Running torch work on one thread, and keeping processes forked from this one out of OpenMP's dead pool."""

from __future__ import annotations

import contextlib
import os
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


def one_thread_after_fork() -> None:
    """In a forked child, run torch on one thread.

    A parent that trained a network has GNU OpenMP's thread pool running; ``fork`` copies the pool's bookkeeping
    but not its threads, so the child's first parallel op waits forever on a barrier (``AsyncVectorEnv`` and
    ``multiprocessing`` with the default start on Linux). One thread never enters the pool. PyTorch's DataLoader
    workers do the same; with ``spawn`` the children start fresh and keep every thread.
    """
    torch.set_num_threads(1)


os.register_at_fork(after_in_child=one_thread_after_fork)
