"""``TrainConfig``: every setting of a child's training, each one part of the reward cache key."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch

from nasgym.core import settings
from nasgym.core.errors import ConfigError
from nasgym.core.network import NetworkConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that changes a reward (NasGym's values are the defaults). All of them are part of the reward
    cache key, so a changed setting never reuses a reward."""

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
    """Multiply the learning rate by this every `lr_decay_epochs`."""
    lr_decay_epochs: int = 5
    """Step schedule period; 0 keeps the rate constant, as NasGym's TF1 code actually did."""
    train_fraction: float = 2 / 3
    """After one seeded shuffle, this leading fraction trains; the rest is the reward split."""
    seed: int = 0
    """Seeds the shuffle, the weight initialisation, dropout and the batch order."""
    network: NetworkConfig = NetworkConfig()
    """Filters per conv, dense units, dropout."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """`fp32`, `bf16` (autocast, CUDA only) or `auto` (bf16 on CUDA, fp32 on the CPU)."""

    def __post_init__(self) -> None:
        settings.check_fields(self)
        problems = []
        if self.epochs < 1 or self.batch_size < 1:
            problems.append(f"epochs and batch_size must be at least 1, got {self.epochs} and {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            problems.append(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not all(0 <= beta < 1 for beta in self.betas) or not self.adam_epsilon >= 0:
            problems.append(f"Adam needs betas in [0, 1) and epsilon >= 0, got {self.betas}, {self.adam_epsilon}")
        if not (math.isfinite(self.lr_decay_factor) and self.lr_decay_factor > 0) or self.lr_decay_epochs < 0:
            problems.append("lr_decay_factor must be positive and lr_decay_epochs >= 0 (0 = constant rate)")
        if not 0 < self.train_fraction < 1:
            problems.append(f"train_fraction must be in (0, 1), got {self.train_fraction}")
        if not 0 <= self.seed < 2**63:
            problems.append(f"seed must be in [0, 2**63), got {self.seed}")
        if problems:
            raise ConfigError("; ".join(problems))

    def resolved_precision(self, device: torch.device) -> str:
        if self.precision == "auto":
            return "bf16" if device.type == "cuda" else "fp32"
        if self.precision == "bf16" and device.type != "cuda":
            raise ConfigError("precision='bf16' needs a CUDA device; use 'fp32' or 'auto' on the CPU")
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
