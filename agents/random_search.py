"""Random search: every NAS paper's baseline. Uniform over the actions that keep the network valid.

With a vector env the copies' actions are drawn in copy order from the one generator, so a run depends on
``num_envs`` but is exact to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.base import Agent, StepCallback
from agents.hyperparameters import Seed, validate


@dataclass
class RandomSearchConfig:
    seed: Seed = 0
    """Seeds the action choices."""
    mask_invalid: bool = True
    """Choose only among valid actions; False samples all 8 and lets the environment end invalid episodes."""

    def __post_init__(self) -> None:
        validate(self)


class RandomSearch(Agent):
    name = "random"
    Config = RandomSearchConfig

    def __init__(self, env, config: RandomSearchConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        self.rng = np.random.default_rng(self.config.seed)

    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        allowed = self._mask(observation) if self.config.mask_invalid else np.ones(self.space.n_actions, dtype=bool)
        return int(self.rng.choice(np.flatnonzero(allowed))), state

    def _learn(self, total_steps: int, callback: StepCallback | None) -> RandomSearch:
        target = self.num_timesteps + total_steps
        while self.num_timesteps < target:
            observations = self._observations("learn")
            rewards, dones, infos = self._env_step([self.predict(observation)[0] for observation in observations])
            self.num_timesteps += self.num_envs
            if not self._notify_copies(callback, self.num_timesteps - self.num_envs, rewards, dones, infos):
                break
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
