"""One CUDA stream per training thread, kept for the thread's life.

``torch.cuda.Stream()`` hands out the streams of a fixed pool (32 per device) round-robin, so a stream asked for
per training is, after 32 requests, one that a training still running in another thread may be using; its kernels
would then interleave with a CUDA graph capture there and be recorded into that graph. A thread instead asks once
per device and keeps its stream, and no two live threads get the same one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch

STREAM_POOL_SIZE = 32
"""Streams PyTorch's pool holds per device (and priority); more threads than this cannot each have their own."""


class StreamOwner:
    """``stream(device)``: the calling thread's stream on ``device``, made by ``factory(device)`` on first use.

    A stream that a live thread already owns is never handed to another: such a pool stream is skipped.
    """

    def __init__(self, factory: Callable[[Any], Any] | None = None):
        self._factory = factory or torch.cuda.Stream
        self._local = threading.local()
        self._lock = threading.Lock()
        self._owners: dict[Any, threading.Thread] = {}  # stream -> the live thread that has it

    def stream(self, device: torch.device | str) -> Any:
        mine = self._local.__dict__.setdefault("streams", {})
        key = str(device)
        if key not in mine:
            mine[key] = self._new(key, device)
        return mine[key]

    def _new(self, key: str, device: torch.device | str) -> Any:
        with self._lock:
            self._owners = {owned: thread for owned, thread in self._owners.items() if thread.is_alive()}
            for _ in range(STREAM_POOL_SIZE):
                stream = self._factory(device)
                if stream not in self._owners:  # a CUDA stream equals another handle of the same stream
                    self._owners[stream] = threading.current_thread()
                    return stream
        raise RuntimeError(
            f"more than {STREAM_POOL_SIZE} threads train on {key} at once; PyTorch has {STREAM_POOL_SIZE} streams "
            "per device, so use a smaller concurrency"
        )


THREAD_STREAMS = StreamOwner()
"""The streams the trainers' threads use."""
