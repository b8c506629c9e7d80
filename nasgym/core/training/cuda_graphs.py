"""The training step replayed as a CUDA graph: one capture per batch size, then replays (no per-op launches)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import torch

from nasgym.core.training.device import is_out_of_memory

GRAPH_WARMUP_STEPS = 2
"""Eager steps of each batch size before its CUDA graph is captured (lazy cuBLAS/cuDNN/Adam state)."""
CAPTURE_LOCK = threading.Lock()
"""One capture at a time (``torch.cuda.graph`` synchronizes the device); memory is never released during one."""


class GraphCaptureError(RuntimeError):
    """Capturing the training step as a CUDA graph failed; the trainer falls back to eager steps."""


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
        self.pool = None

    def __call__(self, batch: torch.Tensor) -> None:
        size = len(batch)
        if size in self.graphs:
            graph, static_batch = self.graphs[size]
            static_batch.copy_(batch)
            graph.replay()
        elif self.eager_steps[size] < GRAPH_WARMUP_STEPS:
            self.eager_steps[size] += 1
            self.step(batch)
        else:
            try:
                graph, static_batch = torch.cuda.CUDAGraph(), batch.clone()
                for generator in self.generators:  # dropout draws from its own generator: replays advance it
                    graph.register_generator_state(generator)
                with (
                    CAPTURE_LOCK,
                    torch.cuda.graph(
                        graph, pool=self.pool, stream=torch.cuda.current_stream(), capture_error_mode="thread_local"
                    ),
                ):
                    self.step(static_batch)
            except Exception as error:
                if is_out_of_memory(error):
                    raise
                raise GraphCaptureError(f"{type(error).__name__}: {str(error).splitlines()[0]}") from error
            self.pool = self.pool if self.pool is not None else graph.pool()
            self.graphs[size] = (graph, static_batch)
            graph.replay()  # capturing recorded this step without running it
