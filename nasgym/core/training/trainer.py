"""Train a child network from scratch and measure its accuracy on the reward split.

One ``ChildTrainer`` per environment: it splits and places the data once (on the GPU when there is one),
then trains any number of architectures on it, NasGym's protocol by default.

The device changes how a step runs, never what it computes (benchmarks/child_training.py compares it
with a plain PyTorch loop):

* everywhere: data kept as uint8 beside the model and gathered per batch, channels_last, fused Adam, one
  host sync per epoch (the divergence check);
* CPU: fp32; intra-op threads capped at the usable CPUs; freed memory kept in the process while training
  (``nasgym.core.training.device.retained_heap``);
* CUDA: bf16 autocast, and the whole step (gather, forward, backward, Adam) captured once per batch size
  as a CUDA graph and replayed (``cuda_graphs``). The first steps of each size run eagerly as ordinary
  training steps; if capture fails the architecture is trained again eagerly from scratch, and
  ``Evaluation.execution`` says so.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasgym.core.datasets import ImageData
from nasgym.core.errors import ConfigError
from nasgym.core.evaluation import Evaluation
from nasgym.core.network import build_network, parameter_count, to_device
from nasgym.core.search_space import Architecture
from nasgym.core.training.config import TrainConfig
from nasgym.core.training.cuda_graphs import CAPTURE_LOCK, GraphCaptureError, GraphedStep
from nasgym.core.training.device import is_out_of_memory, limit_threads, memory_bytes, resolve_device, retained_heap

EVAL_BATCH_SIZE = {"cuda": 1024, "cpu": 256}
"""Images per evaluation forward pass; on the CPU a smaller batch was as fast and needs a quarter of the memory."""

EpochCallback = Callable[[int], None]
"""Called with the epoch number after every epoch of a training (progress bars for long trainings)."""

_INIT_LOCK = threading.Lock()  # weight initialisation draws from the global CPU generator


def split_indices(labels: np.ndarray, train_fraction: float, seed: int, n_classes: int) -> tuple[np.ndarray, ...]:
    """One seeded shuffle: the first ``train_fraction`` trains, the rest is the reward split.

    A split with fewer images than classes on either side measures nothing (two images gave accuracy 1.0 from
    one reward image), so it is refused.
    """
    n = len(labels)
    order = np.random.default_rng(seed).permutation(n)
    n_train = round(n * train_fraction)
    if min(n_train, n - n_train) < n_classes:
        raise ConfigError(
            f"{n} images split {train_fraction:.3f} : {1 - train_fraction:.3f} give {n_train} to train and "
            f"{n - n_train} to score, fewer than the {n_classes} classes on one side; use more images "
            "(max_samples) or another train_fraction"
        )
    return order[:n_train], order[n_train:]


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
        train_idx, eval_idx = split_indices(data.labels, config.train_fraction, config.seed, data.n_classes)
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

    # -- one training, with its failures as results ------------------------------------------------------------
    def train(self, architecture: Architecture, on_epoch: EpochCallback | None = None) -> Evaluation:
        """Train ``architecture`` from scratch; a NaN loss or running out of memory is a failed Evaluation (reward
        0 with the reason), never an exception."""
        start = time.perf_counter()
        network = architecture.network
        parameters = parameter_count(network, self.data.n_classes, self.data.image_size, self.config.network)
        failure, accuracy, execution = self._too_big(parameters), 0.0, self._execution(self.cuda_graphs)
        if failure is None:  # refused up front: a failed huge allocation is slow and spoils the kept heap
            try:
                with retained_heap() if self.device.type == "cpu" else contextlib.nullcontext():
                    failure, accuracy, execution = self._train_with_fallback(network, on_epoch)
            except (RuntimeError, MemoryError) as error:
                if not (isinstance(error, MemoryError) or is_out_of_memory(error)):
                    raise
                failure, accuracy = f"out of memory: {str(error).splitlines()[0]}", 0.0
            finally:
                self._release_device_memory()
        seconds = time.perf_counter() - start
        return Evaluation(str(network), accuracy, seconds, parameters, failure or "", execution=execution)

    def _train_with_fallback(
        self, network: Architecture, on_epoch: EpochCallback | None
    ) -> tuple[str | None, float, str]:
        """Failure, accuracy and how it ran: CUDA graphs where they work, else eager training from scratch."""
        try:
            return (*self._train_once(network, self.cuda_graphs, on_epoch), self._execution(self.cuda_graphs))
        except GraphCaptureError as error:  # leaving the handler frees the half-trained model
            reason = str(error)
        if not self._warned_capture:
            self._warned_capture = True
            warnings.warn(
                f"CUDA graph capture failed ({reason}); training eagerly instead, which is slower. "
                "Evaluation.execution records it for every architecture.",
                RuntimeWarning,
                stacklevel=3,
            )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        failure, accuracy = self._train_once(network, False, on_epoch)
        return failure, accuracy, f"{self._execution(False)} (CUDA graph capture failed, trained eagerly: {reason})"

    def _release_device_memory(self) -> None:
        if self.device.type == "cuda":
            with CAPTURE_LOCK:  # never release memory while another thread captures
                torch.cuda.empty_cache()

    def _too_big(self, parameters: int) -> str | None:
        """A network whose weights, gradients and Adam moments (4 fp32 copies) exceed the device's memory.

        Refused up front: besides being slow to fail, a failed huge allocation moves the thread to a
        secondary glibc arena, where freed memory can no longer be kept (``device.retained_heap``).
        """
        need, have = 16 * parameters, memory_bytes(self.device)
        if need <= have:
            return None
        return (
            f"out of memory: {parameters:,} parameters need {need / 2**30:,.1f} GiB for weights, gradients and "
            f"Adam state; the {self.device.type} has {have / 2**30:,.1f} GiB"
        )

    def _execution(self, graphs: bool) -> str:
        """How a training runs here, for ``Evaluation.execution``."""
        if self.device.type == "cpu":
            return f"cpu: eager, {self.precision}, channels_last, {self.threads} threads"
        return f"{self.device.type}: {'CUDA graph' if graphs else 'eager'}, {self.precision}, channels_last"

    # -- the training itself ----------------------------------------------------------------------------------
    def _train_once(
        self, network: Architecture, graphs: bool, on_epoch: EpochCallback | None
    ) -> tuple[str | None, float]:
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
                    network, self.data.n_classes, self.data.image_size, self.config.network, 3, dropout_generator
                )
            model = to_device(model, self.device)
            failure = self._fit(model, graphs, dropout_generator, on_epoch)
            accuracy = 0.0 if failure else self._accuracy(model)
        return failure, accuracy

    def _inputs(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return images_uint8.contiguous(memory_format=torch.channels_last).float().div_(255.0)

    def _autocast(self):
        # No autocast weight cache: it must not outlive a CUDA graph capture, and each weight is cast once.
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16", cache_enabled=False
        )

    def _fit(
        self, model: nn.Module, graphs: bool, dropout_generator: torch.Generator, on_epoch: EpochCallback | None
    ) -> str | None:
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

        run_step = GraphedStep(step, generators=[dropout_generator]) if graphs else step
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
            if on_epoch is not None:
                on_epoch(epoch + 1)
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
