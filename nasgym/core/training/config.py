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
    lr_decay_steps: int = 0
    """When > 0, decay the rate after every optimiser step instead: `learning_rate * lr_decay_factor ** (step /
    lr_decay_steps)` (TF's `exponential_decay`, which NasGym's final training used with 0.9 and 100)."""
    test_fraction: float = 0.1
    """This share of the images is held out first, by a shuffle of its own that no seed changes, so that no search
    trains or scores on it; `nasgym final` scores on it (`score_split`). 0: no test split (NasGym had none)."""
    train_fraction: float = 2 / 3
    """Of the images left, after one seeded shuffle, this leading fraction trains; the rest is the reward split."""
    split_rounding: Literal["round", "floor"] = "round"
    """How `train_fraction` times the images becomes a count of training images (NasGym: floor(0.67 n))."""
    split_seed: int | None = None
    """Seeds the train/reward shuffle; None: `seed` (NasGym: 32, whatever the training's randomness)."""
    score_split: Literal["reward", "test"] = "reward"
    """The split a trained network is scored on: `reward` during a search, `test` for a final evaluation."""
    reward_epochs: int = 1
    """The reward is the best accuracy on the scored split over the last `reward_epochs` epochs (all of them when
    there are fewer); 1: the accuracy after the last epoch. Zoph & Le: 5."""
    reward_exponent: float = 1.0
    """That accuracy is raised to this power, and the result is the reward and `Evaluation.accuracy` (Zoph & Le:
    3, a cube that stresses differences between good networks); 1: the accuracy itself."""
    seed: int = 0
    """Seeds the split (unless `split_seed`), the weight initialisation, dropout and the batch order."""
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
        if not 0 <= self.test_fraction < 1:
            problems.append(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.score_split == "test" and self.test_fraction == 0:
            problems.append("score_split='test' needs a test split: give test_fraction > 0")
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 2**63:
                problems.append(f"{name} must be in [0, 2**63), got {value}")
        if self.lr_decay_steps < 0 or self.reward_epochs < 1:
            problems.append(
                f"lr_decay_steps must be >= 0 and reward_epochs >= 1, got {self.lr_decay_steps}, {self.reward_epochs}"
            )
        if not (math.isfinite(self.reward_exponent) and self.reward_exponent > 0):
            problems.append(f"reward_exponent must be a positive number, got {self.reward_exponent}")
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

    def learning_rate_at(self, epoch: int, step: int = 0) -> float:
        """The rate for optimiser step ``step`` (counted over the whole training) in epoch ``epoch``: the continuous
        ``lr_decay_factor ** (step / lr_decay_steps)`` when ``lr_decay_steps`` is set, else the epoch schedule
        ``lr_decay_factor ** (epoch // lr_decay_epochs)``."""
        if self.lr_decay_steps:
            return self.learning_rate * self.lr_decay_factor ** (step / self.lr_decay_steps)
        if self.lr_decay_epochs == 0:
            return self.learning_rate
        return self.learning_rate * self.lr_decay_factor ** (epoch // self.lr_decay_epochs)

    @property
    def shuffle_seed(self) -> int:
        """The seed of the train/reward shuffle."""
        return self.seed if self.split_seed is None else self.split_seed
