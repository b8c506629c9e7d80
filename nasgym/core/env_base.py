"""What every nasgym environment shares, whatever its search space: rewards from an evaluator, text rendering, the
checks a step starts with, and the marks Gymnasium reads when rewards are not stationary."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from nasgym.core.config import EnvConfig
from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.evaluator import Evaluator
from nasgym.core.reward_sources import build_evaluator
from nasgym.core.training import TrainConfig


class EvaluatedEnv(gym.Env[np.ndarray, "int | np.integer[Any]"]):
    """A search-space environment whose rewards come from ``self.evaluator``; subclasses set ``action_space``,
    ``observation_space`` and ``_done``. An action is an int or a NumPy integer (what ``Discrete.sample`` gives)."""

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012  # gym.Env's annotation
    _spec: EnvSpec | None = None
    _done: bool = False

    @property
    def spec(self) -> EnvSpec | None:
        """The registration ``gym.make`` used; marked nondeterministic when rewards come from weights that move
        between steps (weight sharing), which is what the flag tells Gymnasium's checker."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        evaluator = self.__dict__.get("evaluator")  # None while the constructor has not attached it yet
        if value is not None and evaluator is not None and not evaluator.stationary:
            value = dataclasses.replace(value, nondeterministic=True)
        self._spec = value

    def _attach_evaluator(
        self, evaluator: Evaluator | None, render_mode: str | None, config: EnvConfig, train_config: TrainConfig
    ) -> None:
        """Check ``render_mode`` and ``evaluator`` (built from the configs when None) and keep them."""
        if render_mode not in (None, "ansi"):
            raise ConfigError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        if evaluator is not None and not isinstance(evaluator, Evaluator):
            raise ConfigError(
                "evaluator must have an evaluate(architectures) method and the other members of "
                f"nasgym.core.evaluator.Evaluator, got {type(evaluator).__name__}; subclass EvaluatorBase there, or "
                "use FunctionEvaluator"
            )
        self.render_mode = render_mode
        self.evaluator = evaluator or build_evaluator(config, train_config)

    def _check_step(self, action: Any) -> None:
        if self._done:
            raise RuntimeError("the episode has ended; call env.reset() before stepping again")
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):  # True is no action
            raise ArchitectureError(f"action {action!r} is outside the action space {self.action_space}")

    def _evaluate_ahead(self, networks: Sequence[Any]) -> None:
        """Evaluate ``networks`` as one batch so the steps that reach them are answered from memory; skipped for an
        evaluator whose rewards move (shared weights: each step trains them, in the order the steps come)."""
        if networks and self.evaluator.stationary:
            self.evaluator.evaluate(list(networks))

    def close(self) -> None:
        self.evaluator.close()
        super().close()
