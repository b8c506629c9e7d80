"""The surface every agent shares (stable-baselines3's): ``learn``, ``predict``, ``save``, ``load``."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from nasgym.search_space import Architecture, action_mask

StepCallback = Callable[[dict[str, Any]], "bool | None"]
"""Called after every environment step with ``{"step", "reward", "terminated", "info"}``; False stops."""
UpdateListener = Callable[[dict[str, float]], None]
"""Receives an agent's training metrics (losses, entropy, ...) after each of its updates."""


class Agent(ABC):
    """An agent that searches a ``NAS-v0`` environment. Hyperparameters live in one dataclass."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, env: gym.Env, config: Any = None, **hyperparameters: Any):
        if config is not None and hyperparameters:
            raise TypeError("pass either a config object or keyword hyperparameters, not both")
        try:
            self.config = config if config is not None else self.Config(**hyperparameters)
        except TypeError as error:
            known = ", ".join(f.name for f in dataclasses.fields(self.Config))
            raise TypeError(f"{self.name}: {error}; its hyperparameters are: {known}") from None
        self.env = env
        self.num_timesteps = 0
        self.update_listener: UpdateListener | None = None

    # -- the API --------------------------------------------------------------------------------------
    @abstractmethod
    def learn(self, total_steps: int, callback: StepCallback | None = None) -> Agent:
        """Interact with the environment for ``total_steps`` more steps, learning as it goes."""

    @abstractmethod
    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        """The next action for ``observation`` and the recurrent state to pass back next time."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything learned or needed to continue learning (weights, optimiser, RNG, counters)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def save(self, path: str | Path) -> None:
        """One file: agent name, hyperparameters and state; written atomically so a kill never truncates it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "agent": self.name,
            "config": dataclasses.asdict(self.config),
            "num_timesteps": self.num_timesteps,
            "state": self.state_dict(),
        }
        temporary = path.with_name(path.name + ".tmp")
        torch.save(payload, temporary)
        temporary.replace(path)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], env: gym.Env) -> Agent:
        agent = cls(env, cls.Config(**payload["config"]))
        agent.num_timesteps = payload["num_timesteps"]
        agent.load_state_dict(payload["state"])
        return agent

    # -- helpers for subclasses -------------------------------------------------------------------------
    def _space_shape(self) -> tuple[int, int]:
        """(image_size, max_layers) of the underlying environment, for action masks from observations."""
        base = self.env.unwrapped
        return getattr(base, "image_size", 84), getattr(base, "max_layers", 10)

    def _mask(self, observation: np.ndarray) -> np.ndarray:
        """Valid actions, computed from the observation alone (so ``predict`` needs no live env)."""
        image_size, max_layers = self._space_shape()
        return action_mask(Architecture.from_nsc(observation), image_size, max_layers)

    def _report(self, metrics: dict[str, float]) -> None:
        """Publish one update's metrics (the search writes them to progress.csv and TensorBoard)."""
        if self.update_listener is not None:
            self.update_listener({"step": self.num_timesteps, **metrics})

    def _notify(self, callback: StepCallback | None, reward: float, terminated: bool, info: dict) -> bool:
        """Count the step and tell the callback; False means stop."""
        self.num_timesteps += 1
        if callback is None:
            return True
        answer = callback({"step": self.num_timesteps, "reward": reward, "terminated": terminated, "info": info})
        return answer is not False
