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
  ``Evaluation.execution`` says so; CUDA graphs then stay off in the process. Each training thread keeps one
  stream (``streams``); the device is synchronized and its cache emptied only after running out of memory.

A last batch of one image that batch-statistics BatchNorm cannot normalise (one value per channel) is skipped, as
``drop_last`` would; every other batch trains.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasgym.core import spaces
from nasgym.core.datasets import ImageData
from nasgym.core.errors import ConfigError
from nasgym.core.evaluation import Evaluation
from nasgym.core.network import to_device
from nasgym.core.training.config import TrainConfig
from nasgym.core.training.cuda_graphs import CAPTURE_LOCK, GraphCaptureError, GraphedStep, capture_failure
from nasgym.core.training.device import is_out_of_memory, limit_threads, memory_bytes, resolve_device, retained_heap
from nasgym.core.training.split import split_for
from nasgym.core.training.streams import STREAM_POOL_SIZE, THREAD_STREAMS

EVAL_BATCH_SIZE = {"cuda": 1024, "cpu": 256}
"""Images per evaluation forward pass; on the CPU a smaller batch was as fast and needs a quarter of the memory."""

EpochCallback = Callable[[int], None]
"""Called with the epoch number after every epoch of a training (progress bars for long trainings)."""

_INIT_LOCK = threading.Lock()  # weight initialisation draws from the global CPU generator


class LearningCurve(NamedTuple):
    """One training of a network, scored after every epoch: what a look-up table records per (network, seed)."""

    evaluation: Evaluation
    """The training's record (accuracy: the reward ``train`` gives for the full ``epochs``)."""
    reward_correct: tuple[int, ...]
    """Reward-split images classified correctly after each epoch 1..epochs (fewer when training failed)."""
    test_correct: int
    """Test-split images classified correctly after the last epoch (-1 without a test split or after a failure)."""
    seconds: tuple[float, ...]
    """Seconds from the start to the end of each epoch's training, the scoring this curve adds left out."""
    score_seconds: float
    """Seconds one scoring of the reward split took (the last epoch's), which a plain training also spends."""


def _seeded_generator(device: torch.device, seed: int, purpose: int) -> torch.Generator:
    """Independent streams per purpose (batch order, dropout) from the one training seed."""
    state = np.random.SeedSequence([seed, purpose]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1))


class ChildTrainer:
    """Holds one dataset's split on the training device and trains architectures on it.

    ``train`` may be called from several threads at once (``TrainingEvaluator(concurrency=...)``): every
    training has its own random generators, and on CUDA its thread's stream. ``memory_share`` is the part of the
    device's memory a training may count on (a fractional Ray GPU), which sizes the up-front out-of-memory check.
    """

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig = TrainConfig(),
        device: str | torch.device = "auto",
        *,
        cuda_graphs: bool = True,
        memory_share: float = 1.0,
    ):
        self.data = data
        self.memory_share = memory_share
        self.config = config
        self.device = resolve_device(device)
        self.precision = config.resolved_precision(self.device)
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.threads = limit_threads() if self.device.type == "cpu" else None
        self._warned_capture = False
        self.split = split_for(data, config)
        train_idx, eval_idx = self.split.train, getattr(self.split, config.score_split)
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
        self._place = place  # the test split is placed only when a learning curve asks for it
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    @property
    def max_threads(self) -> int:
        """Threads that may train at once: on CUDA each needs a stream of its own (``streams``)."""
        return STREAM_POOL_SIZE if self.device.type == "cuda" else 2**31

    # -- one training, with its failures as results ------------------------------------------------------------
    def train(
        self, architecture: spaces.Network, on_epoch: EpochCallback | None = None, curve: _Curve | None = None
    ) -> Evaluation:
        """Train ``architecture`` from scratch; a NaN loss or running out of memory is a failed Evaluation (reward
        0 with the reason), never an exception."""
        network = architecture.network
        space = spaces.of(network)  # each search space builds and counts its own child network
        n_classes, image_size, config = self.data.n_classes, self.data.image_size, self.config.network
        parameters = space.parameter_count(network, n_classes, image_size, config)

        def build(dropout_generator: torch.Generator) -> nn.Module:
            return space.build(network, n_classes, image_size, config, 3, dropout_generator)

        return self.train_model(str(network), build, parameters, on_epoch, curve)

    def learning_curve(self, architecture: spaces.Network) -> LearningCurve:
        """Train ``architecture`` exactly as ``train`` does (the same seeds, batches and schedule), scoring the reward
        split after every epoch and the test split after the last. Scoring draws no random numbers and leaves the
        weights alone, so the accuracy after epoch e is the reward a training of ``epochs=e`` returns."""
        if self.config.score_split != "reward":
            raise ConfigError("a learning curve scores the reward split; use score_split='reward'")
        if self._test is None:
            self._test = self._place(self.split.test)
        curve = _Curve()
        evaluation = self.train(architecture, curve=curve)
        test_correct = -1 if evaluation.failure or not len(self.split.test) else curve.test_correct
        return LearningCurve(evaluation, tuple(curve.correct), test_correct, tuple(curve.seconds), curve.score_seconds)

    def train_model(
        self,
        name: str,
        build: Callable[[torch.Generator], nn.Module],
        parameters: int,
        on_epoch: EpochCallback | None = None,
        curve: _Curve | None = None,
    ) -> Evaluation:
        """Train the model ``build(dropout_generator)`` makes (for a network that is no architecture of the search
        space, such as a baseline) exactly as ``train`` trains a child: same data, schedule, seeds and reward."""
        start = time.perf_counter()
        failure, accuracy, execution = self._too_big(parameters), 0.0, self._execution(self._graphs())
        if failure is None:  # refused up front: a failed huge allocation is slow and spoils the kept heap
            try:
                with retained_heap() if self.device.type == "cpu" else contextlib.nullcontext():
                    failure, accuracy, execution = self._train_with_fallback(build, on_epoch, curve)
            except (RuntimeError, MemoryError) as error:
                if not (isinstance(error, MemoryError) or is_out_of_memory(error)):
                    raise
                failure, accuracy = f"out of memory: {str(error).splitlines()[0]}", 0.0
            if failure and failure.startswith("out of memory"):  # the failed model is freed by now
                self.release_device_memory()
        seconds = time.perf_counter() - start
        return Evaluation(name, accuracy, seconds, parameters, failure or "", execution=execution)

    def _train_with_fallback(
        self, build: Callable[[torch.Generator], nn.Module], on_epoch: EpochCallback | None, curve: _Curve | None
    ) -> tuple[str | None, float, str]:
        """Failure, accuracy and how it ran: CUDA graphs where they work, else eager training from scratch."""
        graphs = self._graphs()
        execution = self._execution(graphs)
        if self.cuda_graphs and not graphs:
            execution += f" (CUDA graphs off in this process since a capture failed: {capture_failure()})"
        try:
            return (*self._train_once(build, graphs, on_epoch, curve), execution)
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
        if curve is not None:  # the retraining runs on this thread's stream, after what the capture left there
            curve.clear()
        failure, accuracy = self._train_once(build, False, on_epoch, curve)
        return failure, accuracy, f"{self._execution(False)} (CUDA graph capture failed, trained eagerly: {reason})"

    def _graphs(self) -> bool:
        """Whether the next training captures CUDA graphs: never after a capture failed in this process."""
        return self.cuda_graphs and capture_failure() is None

    def release_device_memory(self) -> None:
        """After running out of memory: wait for the device and hand its cached blocks back (other streams' and
        processes' trainings can use them). Not after a failed capture, when emptying the cache would fail."""
        if self.device.type == "cuda" and capture_failure() is None:
            with CAPTURE_LOCK:  # never release memory while another thread captures
                torch.cuda.synchronize(self.device)
                torch.cuda.empty_cache()

    def _too_big(self, parameters: int) -> str | None:
        """A network whose weights, gradients and Adam moments (4 fp32 copies) exceed the device's memory (its
        ``memory_share`` of it).

        Refused up front: besides being slow to fail, a failed huge allocation moves the thread to a
        secondary glibc arena, where freed memory can no longer be kept (``device.retained_heap``).
        """
        need, have = 16 * parameters, memory_bytes(self.device) * min(self.memory_share, 1.0)
        if need <= have:
            return None
        share = f" (its share {self.memory_share:g})" if self.memory_share < 1 else ""
        return (
            f"out of memory: {parameters:,} parameters need {need / 2**30:,.1f} GiB for weights, gradients and "
            f"Adam state; the {self.device.type}{share} has {have / 2**30:,.1f} GiB"
        )

    def _execution(self, graphs: bool) -> str:
        """How a training runs here, for ``Evaluation.execution``."""
        if self.device.type == "cpu":
            return f"cpu: eager, {self.precision}, channels_last, {self.threads} threads"
        return f"{self.device.type}: {'CUDA graph' if graphs else 'eager'}, {self.precision}, channels_last"

    # -- the training itself ----------------------------------------------------------------------------------
    def _train_once(
        self,
        build: Callable[[torch.Generator], nn.Module],
        graphs: bool,
        on_epoch: EpochCallback | None,
        curve: _Curve | None = None,
    ) -> tuple[str | None, float]:
        cuda = self.device.type == "cuda"
        with contextlib.ExitStack() as on_device:
            if cuda:  # the device too: a graph captures the current device's current stream
                stream = THREAD_STREAMS.stream(self.device)
                on_device.enter_context(torch.cuda.device(self.device))
                on_device.enter_context(torch.cuda.stream(stream))
                stream.wait_stream(torch.cuda.default_stream(self.device))  # the data placed in __init__
            seed = self.config.seed
            dropout_generator = _seeded_generator(self.device, seed, purpose=1)
            with _INIT_LOCK, torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)  # initialisation runs on the CPU
                model = build(dropout_generator)
            model = to_device(model, self.device)
            failure, scores = self._fit(model, graphs, dropout_generator, on_epoch, curve)
            accuracy = 0.0 if failure else max(scores) ** self.config.reward_exponent
        return failure, accuracy

    def inputs(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """Placed images (``train_x``, ``eval_x`` rows) as a model here takes them: other trainings of these data
        (the shared weights) feed their models exactly as a child's training does."""
        return self._inputs(images_uint8)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The precision context a child's steps run in (bf16 autocast or none), for other trainings of these data."""
        return self._autocast()

    def _inputs(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return images_uint8.contiguous(memory_format=torch.channels_last).float().div_(255.0)

    def _autocast(self):
        # No autocast weight cache: it must not outlive a CUDA graph capture, and each weight is cast once.
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16", cache_enabled=False
        )

    def _fit(
        self,
        model: nn.Module,
        graphs: bool,
        dropout_generator: torch.Generator,
        on_epoch: EpochCallback | None,
        curve: _Curve | None = None,
    ) -> tuple[str | None, list[float]]:
        """Train; the failure (None) and the scored split's accuracy after each of the last ``reward_epochs``
        (``curve``, when given, gets every epoch's)."""
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

        def set_rate(epoch: int, optimizer_step: int) -> None:
            if graphs:
                group["lr"].fill_(cfg.learning_rate_at(epoch, optimizer_step))
            else:
                group["lr"] = cfg.learning_rate_at(epoch, optimizer_step)

        run_step = GraphedStep(step, generators=[dropout_generator]) if graphs else step
        end = self.n_train  # batches start before it: all of them, unless a last single image cannot train
        if self.n_train % cfg.batch_size == 1 and self.n_train > 1:
            with self._autocast():
                if _one_image_breaks_batch_norm(model, self._inputs(self.train_x[:1])):
                    end -= 1  # dropped, as drop_last would
        model.train()
        scores: list[float] = []
        optimizer_step = 0
        start_time, scoring = time.perf_counter(), 0.0
        for epoch in range(cfg.epochs):
            set_rate(epoch, optimizer_step)
            loss_sum.zero_()
            order = torch.randperm(self.n_train, device=self.device, generator=order_generator)
            for start in range(0, end, cfg.batch_size):
                if cfg.lr_decay_steps and optimizer_step:
                    set_rate(epoch, optimizer_step)
                run_step(order[start : start + cfg.batch_size])
                optimizer_step += 1
            if not math.isfinite(loss_sum.item()):  # the one host sync per epoch
                return f"non-finite training loss in epoch {epoch + 1}", scores
            if curve is not None:
                trained = time.perf_counter()
                curve.seconds.append(trained - start_time - scoring)
                curve.correct.append(self._correct(model, self.eval_x, self.eval_y))
                curve.score_seconds = time.perf_counter() - trained
                scoring += curve.score_seconds
                if epoch >= cfg.epochs - cfg.reward_epochs:
                    scores.append(curve.correct[-1] / len(self.eval_y))
                model.train()
            elif epoch >= cfg.epochs - cfg.reward_epochs:
                scores.append(self._accuracy(model))
                model.train()
            if on_epoch is not None:
                on_epoch(epoch + 1)
        if curve is not None and self._test is not None and len(self._test[1]):
            curve.test_correct = self._correct(model, *self._test)
        return None, scores

    def _accuracy(self, model: nn.Module) -> float:
        return self._correct(model, self.eval_x, self.eval_y) / len(self.eval_y)

    @torch.inference_mode()
    def _correct(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> int:
        """Images of a split that ``model`` classifies correctly."""
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        size = EVAL_BATCH_SIZE.get(self.device.type, 256)
        for start in range(0, len(labels), size):
            with self._autocast():
                logits = model(self._inputs(images[start : start + size]))
            correct += (logits.argmax(dim=1) == labels[start : start + size]).sum()
        return int(correct.item())


def _one_image_breaks_batch_norm(model: nn.Module, image: torch.Tensor) -> bool:
    """Whether a training step on one image fails: a BatchNorm that normalises with the batch's statistics would see
    one value per channel (a 1x1 map), which PyTorch refuses. Probed by an eval-mode forward of ``image``, which
    changes no statistics and draws no random numbers."""
    norms = [m for m in model.modules() if type(m).forward is nn.modules.batchnorm._BatchNorm.forward]
    seen: list[int] = []
    hooks = [norm.register_forward_pre_hook(lambda _norm, args: seen.append(args[0][0, 0].numel())) for norm in norms]
    try:
        with torch.inference_mode():
            model.eval()(image)
    finally:
        for hook in hooks:
            hook.remove()
    return 1 in seen


class _Curve:
    """What ``_fit`` records per epoch for ``ChildTrainer.learning_curve``."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.correct: list[int] = []
        self.seconds: list[float] = []
        self.score_seconds = 0.0
        self.test_correct = -1
