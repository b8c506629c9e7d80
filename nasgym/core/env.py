"""``NAS-v0``: neural architecture search as a Gymnasium environment (NasGym semantics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from nasgym.core.datasets import load_dataset
from nasgym.core.errors import ArchitectureError
from nasgym.core.evaluator import Evaluation, Evaluator, TrainingEvaluator
from nasgym.core.network import NetworkConfig
from nasgym.core.paths import default_cache_path
from nasgym.core.search_space import (
    DEFAULT_IMAGE_SIZE,
    DEFAULT_MAX_LAYERS,
    N_ACTIONS,
    TERMINAL,
    Architecture,
    action_mask,
)
from nasgym.core.trainer import TrainConfig

REWARD_MODES = ("per_step", "final")


class NASEnv(gym.Env[np.ndarray, int]):
    """
    ## Description

    Build a chain-structured CNN one layer at a time; the reward is the accuracy the network reaches
    when trained from scratch on an image dataset. This is the environment of NasGym (Gomez Robles &
    Vanschoren 2019), with networks written as BlockQNN's Network Structure Code (NSC).

    ## Action Space

    `Discrete(8)`; action `a` appends one layer:

    | action | layer | token |
    |--------|----------------------------|-------|
    | 0, 1, 2 | conv 1x1, 3x3, 5x5 (32 filters) | c1 c3 c5 |
    | 3, 4 | max-pool 2, 3 (stride = window) | m2 m3 |
    | 5, 6 | avg-pool 2, 3 (stride = window) | a2 a3 |
    | 7 | terminal | t |

    `env.action_masks()` gives the actions that keep the network valid (sb3-contrib's convention).

    ## Observation Space

    The NSC matrix, `Box(0, max(max_layers, 7), (max_layers, 5), int64)`: row `i` is
    `[i + 1, type, kernel, i, 0]` for the i-th layer appended (type 1 conv, 2 max-pool, 3 avg-pool,
    7 terminal), rows not used yet are zero.

    ## Rewards

    - `reward="per_step"` (NasGym's default): after every step the whole current network is trained from
      scratch; its accuracy on the reward split, in [0, 1], is the reward.
    - `reward="final"` (Zoph & Le): 0 until the episode ends, then the final network's accuracy.
    - An invalid network (a spatial side below 1) gets 0.

    Identical networks are never trained twice: a persistent SQLite reward cache answers them. A network
    whose training diverges or runs out of memory gets 0, with the reason in `info["failure"]`.

    ## Starting State

    The empty network (all-zero NSC).

    ## Episode End

    Termination when the terminal action is taken, when `max_layers` rows are used (the terminal row
    counts), or when the new layer makes the network invalid (`info["valid"] = False`). No truncation.

    ## Info

    `architecture` (e.g. `"c3-m2-t"`), `nsc`, `layers`, `valid`, and, on steps that are rewarded,
    `accuracy`, `from_cache` (answered by the persistent cache: trained by an earlier run or another
    process), `train_seconds` (what training this network took, whenever that was), `parameters` and
    `failure` (why training failed, else None); None on steps without a reward. A repeat within one
    environment returns the first answer unchanged, so a step is a pure function of the architecture;
    `env.unwrapped.evaluator.stats` counts what was really trained.

    ## Arguments

    ```python
    >>> import gymnasium as gym, nasgym
    >>> env = gym.make("NAS-v0", dataset="digits", epochs=1, image_size=16, cache=False)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(1)  # append a 3x3 conv

    ```

    | Parameter | Default | Description |
    |-----------|---------|-------------|
    | `dataset` | `"digits"` | a registered dataset name (`nasgym.core.datasets.dataset_names()`) |
    | `reward` | `"per_step"` | `"per_step"` or `"final"` |
    | `max_layers` | 10 | rows per episode, terminal included |
    | `image_size` | 84 | images are resized to this side, 3 channels, scaled to [0, 1] |
    | `epochs`, `batch_size` | 12, 128 | child training budget |
    | `learning_rate`, `betas`, `adam_epsilon` | 1e-3, (0.9, 0.999), 1e-8 | Adam |
    | `lr_decay_factor`, `lr_decay_epochs` | 0.2, 5 | step schedule; `lr_decay_epochs=0` is NasGym's constant rate |
    | `filters`, `dense_units`, `dropout` | 32, 1024, 0.4 | child network shape |
    | `filter_growth`, `max_filters` | 1.0, 512 | each conv has `filter_growth` x the filters of the last, capped |
    | `train_fraction` | 2/3 | after one seeded shuffle, leading part trains, the rest gives the reward |
    | `seed` | 0 | training seed: split, initialisation, dropout, batch order |
    | `precision` | `"auto"` | `"fp32"`, `"bf16"` (CUDA) or `"auto"` |
    | `device` | `"auto"` | `"cuda"`, `"cpu"` or `"auto"` |
    | `max_samples` | None | train on a fixed random subset of this many images |
    | `data_dir` | None | where prepared datasets live |
    | `cache`, `cache_path` | True, None | use the reward cache; its file (default `~/.cache/nasgym/rewards.sqlite`) |
    | `evaluator` | None | replaces training: any object with `evaluate(architectures) -> list[Evaluation]` |
    |  |  | (`nasgym.core.evaluator.FunctionEvaluator` is the hook for cheap known rewards) |

    Every training setting is part of the reward cache key, so a changed setting never reuses a reward.
    `env.reset(seed=...)` seeds nothing that matters: the environment's dynamics are deterministic.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        dataset: str = "digits",
        *,
        reward: str = "per_step",
        max_layers: int = DEFAULT_MAX_LAYERS,
        image_size: int = DEFAULT_IMAGE_SIZE,
        epochs: int = 12,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        adam_epsilon: float = 1e-8,
        lr_decay_factor: float = 0.2,
        lr_decay_epochs: int = 5,
        filters: int = 32,
        dense_units: int = 1024,
        dropout: float = 0.4,
        filter_growth: float = 1.0,
        max_filters: int = 512,
        train_fraction: float = 2 / 3,
        seed: int = 0,
        precision: str = "auto",
        device: str = "auto",
        max_samples: int | None = None,
        data_dir: str | Path | None = None,
        cache: bool = True,
        cache_path: str | Path | None = None,
        evaluator: Evaluator | None = None,
        render_mode: str | None = None,
    ):
        if reward not in REWARD_MODES:
            raise ValueError(f"reward must be one of {REWARD_MODES}, got {reward!r}")
        if max_layers < 1:
            raise ValueError(f"max_layers must be at least 1, got {max_layers}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.reward_mode = reward
        self.max_layers = max_layers
        self.image_size = image_size
        self.render_mode = render_mode
        self.dataset_name = dataset
        self.train_config = TrainConfig(
            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, betas=tuple(betas),
            adam_epsilon=adam_epsilon, lr_decay_factor=lr_decay_factor, lr_decay_epochs=lr_decay_epochs,
            train_fraction=train_fraction, seed=seed, precision=precision,
            network=NetworkConfig(
                filters=filters, dense_units=dense_units, dropout=dropout, filter_growth=filter_growth,
                max_filters=max_filters,
            ),
        )  # fmt: skip
        if evaluator is None:
            data = load_dataset(dataset, image_size, max_samples=max_samples, data_dir=data_dir)
            path = (cache_path or default_cache_path()) if cache else None
            evaluator = TrainingEvaluator(data, self.train_config, device, path)
        self.evaluator = evaluator

        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = spaces.Box(0, max(max_layers, TERMINAL), (max_layers, 5), dtype=np.int64)
        self.architecture = Architecture(())
        self._done = False

    # -- Gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.architecture = Architecture(())
        self._done = False
        return self._observation(), {"architecture": "", "layers": 0}

    def step(self, action: int):
        if self._done:
            raise RuntimeError("the episode has ended; call env.reset() before stepping again")
        if not self.action_space.contains(action):
            raise ArchitectureError(f"action {action!r} is outside the action space Discrete({N_ACTIONS})")
        self.architecture = self.architecture.append(int(action))
        valid = self.architecture.is_valid(self.image_size, self.max_layers)
        terminated = not valid or self.architecture.is_terminated or len(self.architecture) >= self.max_layers
        self._done = terminated

        evaluation: Evaluation | None = None
        if valid and (terminated or self.reward_mode == "per_step"):
            evaluation = self.evaluator.evaluate([self.architecture])[0]
        reward = evaluation.accuracy if evaluation is not None else 0.0
        info = self._info(valid, evaluation)
        return self._observation(), float(reward), terminated, False, info

    def action_masks(self) -> np.ndarray:
        """Actions that keep the network valid; the terminal action is always among them."""
        return action_mask(self.architecture, self.image_size, self.max_layers)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        sides = " -> ".join(str(side) for side in self.architecture.spatial_sizes(self.image_size))
        return f"{self.architecture or '(empty)'}  (spatial sides {sides})"

    # -- helpers ------------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        return self.architecture.nsc(self.max_layers)

    def _info(self, valid: bool, evaluation: Evaluation | None) -> dict[str, Any]:
        return {
            "architecture": str(self.architecture),
            "nsc": self.architecture.nsc(),
            "layers": len(self.architecture),
            "valid": valid,
            "accuracy": None if evaluation is None else evaluation.accuracy,
            "from_cache": None if evaluation is None else evaluation.from_cache,
            "train_seconds": None if evaluation is None else evaluation.train_seconds,
            "parameters": None if evaluation is None else evaluation.parameters,
            "failure": None if evaluation is None else evaluation.failure,
        }
