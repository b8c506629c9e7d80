"""Train a child network from scratch and measure its accuracy on the reward split.

One ``ChildTrainer`` per environment: it splits and places the data once (on the GPU when there is one),
then trains any number of architectures on it. NasGym's protocol is the default (DESIGN.md section 2).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasgym.datasets import ImageData
from nasgym.network import NetworkConfig, build_network, count_parameters, to_device
from nasgym.search_space import Architecture


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

    def resolved_precision(self, device: torch.device) -> str:
        if self.precision == "auto":
            return "bf16" if device.type == "cuda" else "fp32"
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.precision == "bf16" and device.type != "cuda":
            raise ValueError("precision='bf16' needs a CUDA device; use 'fp32' or 'auto' on the CPU")
        return self.precision

    def key_fields(self, device: torch.device) -> dict:
        """The settings as plain JSON values, precision resolved for ``device``."""
        fields = dataclasses.asdict(self)
        fields["betas"] = list(self.betas)
        fields["precision"] = self.resolved_precision(device)
        return fields


@dataclass(frozen=True)
class TrainResult:
    accuracy: float
    """Top-1 accuracy on the reward split, in [0, 1]; 0 when training failed."""
    train_seconds: float
    parameters: int
    failure: str | None = None
    """Why training failed (non-finite loss, out of memory); None when it succeeded."""


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


class ChildTrainer:
    """Holds one dataset's split on the training device and trains architectures on it."""

    def __init__(self, data: ImageData, config: TrainConfig = TrainConfig(), device: str | torch.device = "auto"):
        self.data = data
        self.config = config
        self.device = resolve_device(device)
        self.precision = config.resolved_precision(self.device)
        train_idx, eval_idx = split_indices(len(data), config.train_fraction, config.seed)
        # uint8 NCHW on the device: 4x smaller than float, converted one batch at a time.
        images = torch.from_numpy(data.images).permute(0, 3, 1, 2)
        labels = torch.from_numpy(data.labels)
        self.train_x = images[torch.from_numpy(train_idx)].contiguous().to(self.device)
        self.train_y = labels[torch.from_numpy(train_idx)].to(self.device)
        self.eval_x = images[torch.from_numpy(eval_idx)].contiguous().to(self.device)
        self.eval_y = labels[torch.from_numpy(eval_idx)].to(self.device)

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    def _inputs(self, images_uint8: torch.Tensor) -> torch.Tensor:
        x = images_uint8.float().div_(255.0)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def train(self, architecture: Architecture) -> TrainResult:
        """Train ``architecture`` from scratch; never raises for NaN losses or out-of-memory."""
        start = time.perf_counter()
        parameters = 0
        try:
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.config.seed)
                model = build_network(architecture, self.data.n_classes, self.data.image_size, self.config.network)
                parameters = count_parameters(model)
                model = to_device(model, self.device)
                failure = self._fit(model)
                accuracy = 0.0 if failure else self._accuracy(model)
        except torch.cuda.OutOfMemoryError as error:
            failure, accuracy = f"out of memory: {str(error).splitlines()[0]}", 0.0
        except RuntimeError as error:  # the CPU allocator reports exhaustion as a plain RuntimeError
            if "can't allocate memory" not in str(error) and "out of memory" not in str(error):
                raise
            failure, accuracy = f"out of memory: {str(error).splitlines()[0]}", 0.0
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        return TrainResult(accuracy, time.perf_counter() - start, parameters, failure)

    def _fit(self, model: nn.Module) -> str | None:
        cfg = self.config
        optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.learning_rate, betas=cfg.betas, eps=cfg.adam_epsilon,
            **({"fused": True} if self.device.type == "cuda" else {}),
        )  # fmt: skip
        schedule = (
            torch.optim.lr_scheduler.StepLR(optimizer, cfg.lr_decay_epochs, cfg.lr_decay_factor)
            if cfg.lr_decay_epochs > 0
            else None
        )
        loss_fn = nn.CrossEntropyLoss()
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        model.train()
        for epoch in range(cfg.epochs):
            order = torch.randperm(self.n_train, device=self.device, generator=generator)
            loss_sum = torch.zeros((), device=self.device)
            for start in range(0, self.n_train, cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                with self._autocast():
                    loss = loss_fn(model(self._inputs(self.train_x[batch])), self.train_y[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
            if not math.isfinite(loss_sum.item()):  # one host sync per epoch
                return f"non-finite training loss in epoch {epoch + 1}"
            if schedule is not None:
                schedule.step()
        return None

    @torch.inference_mode()
    def _accuracy(self, model: nn.Module, batch_size: int = 1024) -> float:
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for start in range(0, len(self.eval_y), batch_size):
            with self._autocast():
                logits = model(self._inputs(self.eval_x[start : start + batch_size]))
            correct += (logits.argmax(dim=1) == self.eval_y[start : start + batch_size]).sum()
        return correct.item() / len(self.eval_y)
