"""The training step replayed as a CUDA graph: one capture per batch size, then replays (no per-op launches).

A failed capture turns CUDA graphs off for the whole process (``capture_failure``): when CUDA invalidates a
capture, PyTorch's allocator may still believe a capture is under way, and from then on ``torch.cuda.empty_cache``
fails an internal assertion. So nothing here empties the cache or synchronizes the device (``torch.cuda.graph``
does both before every capture); the trainer does it only after an out-of-memory error, and not at all once a
capture has failed.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from nasgym.core.training.device import is_out_of_memory

if TYPE_CHECKING:
    from torch.cuda import _POOL_HANDLE

GRAPH_WARMUP_STEPS = 2
"""Eager steps of each batch size before its CUDA graph is captured (lazy cuBLAS/cuDNN/Adam state)."""
CAPTURE_LOCK = threading.Lock()
"""One capture at a time; memory is never released during one."""
_WARNINGS_LOCK = threading.Lock()  # warnings.catch_warnings swaps process-wide filters: one thread at a time
_FAILURE: str | None = None  # why a capture failed in this process; None while CUDA graphs are on


class GraphCaptureError(RuntimeError):
    """Capturing the training step as a CUDA graph failed; the trainer falls back to eager steps."""


def capture_failure() -> str | None:
    """Why a CUDA graph capture failed in this process (graphs are off from then on), or None."""
    return _FAILURE


@contextlib.contextmanager
def _uncaptured_capturable_step() -> Iterator[None]:
    """Hide the warning a capturable Adam gives on its first step outside a capture: the warm-up steps are meant."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"This instance was constructed with capturable=True.*without", category=UserWarning
        )
        yield


class GraphedStep:
    """Runs ``step(batch_indices)`` as a replayed CUDA graph, one graph per batch size (the last partial
    batch gets its own, sharing the first one's memory pool). The first ``GRAPH_WARMUP_STEPS`` batches of
    each size run eagerly: they are ordinary training steps, so the trajectory is the eager one.
    """

    def __init__(self, step: Callable[[torch.Tensor], None], generators: list[torch.Generator]):
        self.step = step
        self.generators = generators
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.eager_steps: Counter[int] = Counter()
        self.pool: _POOL_HANDLE | None = None

    def __call__(self, batch: torch.Tensor) -> None:
        size = len(batch)
        if size in self.graphs:
            graph, static_batch = self.graphs[size]
            static_batch.copy_(batch)
            graph.replay()
        elif self.eager_steps[size] < GRAPH_WARMUP_STEPS:
            self.eager_steps[size] += 1
            with _uncaptured_capturable_step():
                self.step(batch)
        else:
            with CAPTURE_LOCK:
                graph, static_batch = self._capture(batch)
            self.pool = self.pool if self.pool is not None else graph.pool()
            self.graphs[size] = (graph, static_batch)
            graph.replay()  # capturing recorded this step without running it

    def _capture(self, batch: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """Record the step on the current stream (the training thread's own, ``streams``); holds CAPTURE_LOCK."""
        global _FAILURE
        if _FAILURE is not None:  # another training's capture failed meanwhile
            raise GraphCaptureError(f"CUDA graphs are off in this process since a capture failed ({_FAILURE})")
        try:
            graph, static_batch = torch.cuda.CUDAGraph(), batch.clone()
            for generator in self.generators:  # dropout draws from its own generator: replays advance it
                graph.register_generator_state(generator)
            # What torch.cuda.graph does, without its device-wide synchronize and empty_cache.
            graph.capture_begin(self.pool, capture_error_mode="thread_local")
            try:
                self.step(static_batch)
            finally:
                graph.capture_end()
        except Exception as error:
            reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
            _FAILURE = reason
            if is_out_of_memory(error):
                raise
            raise GraphCaptureError(reason) from error
        return graph, static_batch
