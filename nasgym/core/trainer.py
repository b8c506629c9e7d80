"""Train a child network from scratch and measure its accuracy on the reward split.

One ``ChildTrainer`` per environment: it splits and places the data once (on the GPU when there is one),
then trains any number of architectures on it. NasGym's protocol is the default (DESIGN.md section 2).

The device changes how a step runs, never what it computes (benchmarks/child_training.py compares it
with a plain PyTorch loop):

* everywhere: data kept as uint8 beside the model and gathered per batch, channels_last, fused Adam, one
  host sync per epoch (the divergence check);
* CPU: fp32; intra-op threads capped at the usable CPUs; freed memory kept in the process while training
  (``nasgym.core.cpu_runtime``);
* CUDA: bf16 autocast, and the whole step (gather, forward, backward, Adam) captured once per batch size
  as a CUDA graph and replayed (DESIGN.md section 5 measured 2.65-3.7x over a plain loop on an H100). The
  first steps of each size run eagerly as ordinary training steps; if capture fails the architecture is
  trained again eagerly from scratch, and ``TrainResult.execution`` says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasgym.core.cpu_runtime import limit_threads, retained_heap
from nasgym.core.datasets import ImageData
from nasgym.core.network import NetworkConfig, build_network, count_parameters, parameter_count, to_device
from nasgym.core.search_space import Architecture

EVAL_BATCH_SIZE = {"cuda": 1024, "cpu": 256}
"""Images per evaluation forward pass; on the CPU a smaller batch was as fast and needs a quarter of the memory."""
GRAPH_WARMUP_STEPS = 2
"""Eager steps of each batch size before its CUDA graph is captured (lazy cuBLAS/cuDNN/Adam state)."""

_INIT_LOCK = threading.Lock()  # weight initialisation draws from the global CPU generator
_CAPTURE_LOCK = threading.Lock()  # one capture at a time: torch.cuda.graph synchronizes the device


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that changes a reward. All of them are part of the reward cache key."""

    epochs: int = 12
    """Passes over the training split (NasGym: 12)."""
    batch_size: int = 128
    """Training minibatch size (NasGym: 128); the last partial batch is kept."""
    learning_rate: float = 1e-3
    """Adam's initial learning rate."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam's beta1, beta2."""
    adam_epsilon: float = 1e-8
    """Adam's epsilon."""
    lr_decay_factor: float = 0.2
    """Multiply the learning rate by this every ``lr_decay_epochs``."""
    lr_decay_epochs: int = 5
    """Step schedule period; 0 keeps the rate constant, as NasGym's TF1 code actually did."""
    train_fraction: float = 2 / 3
    """After one seeded shuffle, this leading fraction trains; the rest is the reward split."""
    seed: int = 0
    """Seeds the shuffle, the weight initialisation, dropout and the batch order."""
    network: NetworkConfig = NetworkConfig()
    """Filters per conv, dense units, dropout."""
    precision: str = "auto"
    """'fp32', 'bf16' (autocast, CUDA only) or 'auto' (bf16 on CUDA, fp32 on CPU)."""

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1 or self.batch_size < 1:
            problems.append(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            problems.append(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not all(0 <= beta < 1 for beta in self.betas) or not self.adam_epsilon >= 0:
            problems.append(f"Adam needs betas in [0, 1) and epsilon >= 0, got {self.betas}, {self.adam_epsilon}")
        if not (math.isfinite(self.lr_decay_factor) and self.lr_decay_factor > 0) or self.lr_decay_epochs < 0:
            problems.append("lr_decay_factor must be positive and lr_decay_epochs >= 0 (0 = constant rate)")
        if self.precision not in ("auto", "fp32", "bf16"):
            problems.append(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def resolved_precision(self, device: torch.device) -> str:
        if self.precision == "auto":
            return "bf16" if device.type == "cuda" else "fp32"
        if self.precision == "bf16" and device.type != "cuda":
            raise ValueError("precision='bf16' needs a CUDA device; use 'fp32' or 'auto' on the CPU")
        return self.precision

    def key_fields(self, device: torch.device) -> dict:
        """The settings as plain JSON values, precision resolved for ``device``."""
        fields = dataclasses.asdict(self)
        fields["betas"] = list(self.betas)
        fields["precision"] = self.resolved_precision(device)
        return fields

    def learning_rate_at(self, epoch: int) -> float:
        """The step schedule: ``learning_rate * lr_decay_factor ** (epoch // lr_decay_epochs)``."""
        if self.lr_decay_epochs == 0:
            return self.learning_rate
        return self.learning_rate * self.lr_decay_factor ** (epoch // self.lr_decay_epochs)


@dataclass(frozen=True)
class TrainResult:
    accuracy: float
    """Top-1 accuracy on the reward split, in [0, 1]; 0 when training failed."""
    train_seconds: float
    parameters: int
    failure: str | None = None
    """Why training failed (non-finite loss, out of memory); None when it succeeded."""
    execution: str = ""
    """How it ran, e.g. 'cuda: CUDA graph, bf16, channels_last' (a failed graph capture is reported here)."""


class GraphCaptureError(RuntimeError):
    """Capturing the training step as a CUDA graph failed; the trainer falls back to eager steps."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' picks CUDA when available; an explicit device that does not exist raises a clear error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but PyTorch sees no CUDA GPU; use device='cpu' or 'auto'")
    return device


def split_indices(n: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One seeded shuffle: the first ``train_fraction`` trains, the rest is the reward split."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = round(n * train_fraction)
    if n_train < 1 or n_train >= n:
        raise ValueError(f"{n} images are too few to split {train_fraction:.3f} : {1 - train_fraction:.3f}")
    return order[:n_train], order[n_train:]


def _is_out_of_memory(error: BaseException | None) -> bool:
    """CUDA raises OutOfMemoryError, the CPU allocator a plain RuntimeError; a failed capture may wrap either."""
    while error is not None:
        if isinstance(error, torch.cuda.OutOfMemoryError):
            return True
        if isinstance(error, RuntimeError) and ("can't allocate memory" in str(error) or "out of memory" in str(error)):
            return True
        error = error.__cause__ or error.__context__
    return False


def _memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _seeded_generator(device: torch.device, seed: int, purpose: int) -> torch.Generator:
    """Independent streams per purpose (batch order, dropout) from the one training seed."""
    state = np.random.SeedSequence([seed, purpose]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1))


class ChildTrainer:
    """Holds one dataset's split on the training device and trains architectures on it.

    ``train`` may be called from several threads at once (``TrainingEvaluator(concurrency=...)``): every
    training has its own random generators, and on CUDA its own stream.
    """

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig = TrainConfig(),
        device: str | torch.device = "auto",
        *,
        cuda_graphs: bool = True,
    ):
        self.data = data
        self.config = config
        self.device = resolve_device(device)
        self.precision = config.resolved_precision(self.device)
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.threads = limit_threads() if self.device.type == "cpu" else None
        self._warned_capture = False
        self.on_epoch: Callable[[int], None] | None = None
        """Called with the epoch number after every epoch (progress bars for long trainings)."""
        train_idx, eval_idx = split_indices(len(data), config.train_fraction, config.seed)
        # uint8 on the device (4x smaller than float), converted one batch at a time. NHWC arrays are
        # already the channels_last layout of NCHW tensors.
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2)
        labels = torch.from_numpy(data.labels)

        def place(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            rows = torch.from_numpy(index)
            x = images[rows].contiguous(memory_format=torch.channels_last).to(self.device)
            return x, labels[rows].to(self.device)

        self.train_x, self.train_y = place(train_idx)
        self.eval_x, self.eval_y = place(eval_idx)

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def train(self, architecture: Architecture, on_epoch: Callable[[int], None] | None = None) -> TrainResult:
        self.on_epoch = on_epoch  # interim: the trainer package passes it down as an argument
        """Train ``architecture`` from scratch; never raises for NaN losses or out-of-memory."""
        start = time.perf_counter()
        cpu = self.device.type == "cpu"
        parameters, failure, accuracy, execution = 0, None, 0.0, self._describe(self.cuda_graphs)
        if (failure := self._too_big(architecture)) is not None:  # fail before the allocator has to
            parameters = parameter_count(architecture, self.data.n_classes, self.data.image_size, self.config.network)
            return TrainResult(0.0, time.perf_counter() - start, parameters, failure, execution)
        try:
            with retained_heap() if cpu else contextlib.nullcontext():
                capture_failure = None
                try:
                    parameters, failure, accuracy = self._train_once(architecture, self.cuda_graphs)
                except GraphCaptureError as error:  # leaving this block frees the half-trained model
                    capture_failure = str(error)
                if capture_failure is not None:
                    if not self._warned_capture:
                        self._warned_capture = True
                        warnings.warn(
                            f"CUDA graph capture failed ({capture_failure}); training eagerly instead, which is "
                            "slower. TrainResult.execution records it for every architecture.",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                    if not cpu:
                        torch.cuda.synchronize(self.device)
                    parameters, failure, accuracy = self._train_once(architecture, graphs=False)
                    execution = (
                        f"{self._describe(False)} (CUDA graph capture failed, trained eagerly: {capture_failure})"
                    )
        except (RuntimeError, MemoryError) as error:
            if not (_is_out_of_memory(error) or isinstance(error, MemoryError)):
                raise
            failure, accuracy = f"out of memory: {str(error).splitlines()[0]}", 0.0
        finally:
            if not cpu:
                with _CAPTURE_LOCK:  # never release memory while another thread captures
                    torch.cuda.empty_cache()
        return TrainResult(accuracy, time.perf_counter() - start, parameters, failure, execution)

    def _too_big(self, architecture: Architecture) -> str | None:
        """A network whose weights, gradients and Adam moments (4 fp32 copies) exceed the device's memory.

        Refused up front: besides being slow to fail, a failed huge allocation moves the thread to a
        secondary glibc arena, where freed memory can no longer be kept (``nasgym.core.cpu_runtime``).
        """
        n = parameter_count(architecture, self.data.n_classes, self.data.image_size, self.config.network)
        need, have = 16 * n, _memory_bytes(self.device)
        if need <= have:
            return None
        return (
            f"out of memory: {n:,} parameters need {need / 2**30:,.1f} GiB for weights, gradients and Adam "
            f"state; the {self.device.type} has {have / 2**30:,.1f} GiB"
        )

    def _describe(self, graphs: bool) -> str:
        if self.device.type == "cpu":
            return f"cpu: eager, {self.precision}, channels_last, {self.threads} threads"
        return f"{self.device.type}: {'CUDA graph' if graphs else 'eager'}, {self.precision}, channels_last"

    def _train_once(self, architecture: Architecture, graphs: bool) -> tuple[int, str | None, float]:
        cuda = self.device.type == "cuda"
        stream = torch.cuda.Stream(self.device) if cuda else None
        with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
            if cuda:
                stream.wait_stream(torch.cuda.default_stream(self.device))  # the data placed in __init__
            seed = self.config.seed
            dropout_generator = _seeded_generator(self.device, seed, purpose=1)
            with _INIT_LOCK, torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)  # initialisation runs on the CPU
                model = build_network(
                    architecture, self.data.n_classes, self.data.image_size, self.config.network, 3, dropout_generator
                )
            parameters = count_parameters(model)
            model = to_device(model, self.device)
            failure = self._fit(model, graphs, dropout_generator)
            accuracy = 0.0 if failure else self._accuracy(model)
        return parameters, failure, accuracy

    def _inputs(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return images_uint8.contiguous(memory_format=torch.channels_last).float().div_(255.0)

    def _autocast(self):
        # No autocast weight cache: it must not outlive a CUDA graph capture, and each weight is cast once.
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16", cache_enabled=False
        )

    def _fit(self, model: nn.Module, graphs: bool, dropout_generator: torch.Generator) -> str | None:
        cfg = self.config
        # A CUDA graph bakes scalars in, so a graphed step reads the learning rate from a device tensor.
        lr = torch.tensor(cfg.learning_rate, device=self.device) if graphs else cfg.learning_rate
        optimizer = torch.optim.Adam(
            model.parameters(), lr=lr, betas=cfg.betas, eps=cfg.adam_epsilon, fused=True, capturable=graphs
        )
        group = optimizer.param_groups[0]
        order_generator = _seeded_generator(self.device, cfg.seed, purpose=0)
        loss_sum = torch.zeros((), device=self.device)

        def step(batch: torch.Tensor) -> None:
            with self._autocast():
                loss = F.cross_entropy(model(self._inputs(self.train_x[batch])), self.train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum.add_(loss.detach().float())

        run_step = _GraphedStep(step, generators=[dropout_generator]) if graphs else step
        model.train()
        for epoch in range(cfg.epochs):
            if graphs:
                group["lr"].fill_(cfg.learning_rate_at(epoch))
            else:
                group["lr"] = cfg.learning_rate_at(epoch)
            loss_sum.zero_()
            order = torch.randperm(self.n_train, device=self.device, generator=order_generator)
            for start in range(0, self.n_train, cfg.batch_size):
                run_step(order[start : start + cfg.batch_size])
            if not math.isfinite(loss_sum.item()):  # the one host sync per epoch
                return f"non-finite training loss in epoch {epoch + 1}"
            if self.on_epoch is not None:
                self.on_epoch(epoch + 1)
        return None

    @torch.inference_mode()
    def _accuracy(self, model: nn.Module) -> float:
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        size = EVAL_BATCH_SIZE.get(self.device.type, 256)
        for start in range(0, len(self.eval_y), size):
            with self._autocast():
                logits = model(self._inputs(self.eval_x[start : start + size]))
            correct += (logits.argmax(dim=1) == self.eval_y[start : start + size]).sum()
        return correct.item() / len(self.eval_y)


class _GraphedStep:
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
                    _CAPTURE_LOCK,
                    torch.cuda.graph(
                        graph, pool=self.pool, stream=torch.cuda.current_stream(), capture_error_mode="thread_local"
                    ),
                ):
                    self.step(static_batch)
            except Exception as error:
                if _is_out_of_memory(error):
                    raise
                raise GraphCaptureError(f"{type(error).__name__}: {str(error).splitlines()[0]}") from error
            self.pool = self.pool if self.pool is not None else graph.pool()
            self.graphs[size] = (graph, static_batch)
            graph.replay()  # capturing recorded this step without running it
