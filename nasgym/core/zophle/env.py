"""``NAS-ZophLe-v0``: Zoph & Le's (2017) search space as a Gymnasium environment, one controller decision a step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from nasgym.core import settings
from nasgym.core.env_base import EvaluatedEnv
from nasgym.core.errors import ConfigError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import Evaluator
from nasgym.core.zophle.config import all_settings, make_configs
from nasgym.core.zophle.network import output_sides
from nasgym.core.zophle.space import N_ACTIONS, TOKEN_TYPES, ZophLeArchitecture, space_size
from nasgym.core.zophle.space_model import ZophLeSpaceModel


class ZophLeEnv(EvaluatedEnv):
    """
    ## Description

    Write a convolutional network token by token, as Zoph & Le's controller RNN does ("Neural Architecture
    Search with Reinforcement Learning", ICLR 2017): per layer a filter height, a filter width, a number of
    filters and a stride, then for every earlier layer whether it feeds this one (the anchor points, which
    make skip connections). The reward is the accuracy of the finished network trained from scratch, through
    the same trainer, reward cache and evaluators as `NAS-v0`.

    ## Action Space

    `Discrete(4)`; what an action means depends on the token being written:

    | token | action 0, 1, 2, 3 |
    |---|---|
    | filter height, filter width | 1, 3, 5, 7 |
    | number of filters | 24, 36, 48, 64 |
    | stride (`strides=True`) | 1, 2, 3 (3 is invalid) |
    | anchor "does layer j feed this one?" | no, yes (2, 3 are invalid) |

    `env.unwrapped.action_masks()` gives the valid actions of the current token. An invalid action ends the
    episode with reward 0 and `info["valid"] = False`, as in NAS-v0.

    ## Observation Space

    `Box(0, 1, (n,), float32)`: the tokens chosen so far (one row of 4 per token of the episode, one-hot),
    then the current token's type (one-hot of the 5 types and "ended"), its layer and the episode's number of
    layers (one-hot each over `layers`). Every RL library takes it without wrappers.

    ## Rewards

    0 until the last token of the last layer; then the trained network's accuracy on the reward split
    (raised to `reward_exponent`, best of the last `reward_epochs` epochs: Zoph & Le's reward is
    `reward_epochs=5, reward_exponent=3`). There is no per-step reward: an unfinished layer is no network.

    ## Starting State

    No token chosen.

    ## Episode End

    Termination after the last token of layer `layers` (or of the depth set by `set_depth`), or after an
    invalid action. No truncation.

    ## Info

    The same keys with the same types every step: `architecture` (str, e.g. `"3x3x24s1-5x5x36s2:1"`),
    `token` (the type of the token just written), `layer` (its layer), `layers` (finished layers), `depth`
    (layers of this episode), `valid`, and NAS-v0's reward keys (`rewarded`, `accuracy`, `from_cache`,
    `train_seconds`, `parameters`, `failure`, `reward_source`); `accuracy` is -1.0 on steps without a reward.

    ## Arguments

    ```python
    >>> import gymnasium as gym, nasgym
    >>> env = gym.make("NAS-ZophLe-v0", dataset="digits", layers=3, epochs=1, image_size=16, cache=False)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(1)  # filter height 3

    ```

    {settings_table}

    `evaluator=` and `render_mode="ansi"` work as in NAS-v0.
    """

    def __init__(
        self,
        dataset: str | None = None,
        *,
        evaluator: Evaluator | None = None,
        render_mode: str | None = None,
        **options: Any,
    ):
        if isinstance(dataset, os.PathLike):  # a folder of images, as in NAS-v0
            dataset = f"folder:{os.fspath(dataset)}"
        if dataset is not None:
            options["dataset"] = dataset
        self.space_config, self.config, self.train_config = make_configs(options)
        self._attach_evaluator(evaluator, render_mode, self.config, self.train_config)
        self._space = ZophLeSpaceModel(self.space_config.layers, self.space_config.layers, self.space_config.strides)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = self._space.observation_space
        self.architecture = ZophLeArchitecture((), self.strides)
        self._done = False

    # -- what agents and runners read -----------------------------------------------------------------------------
    @property
    def space_model(self) -> ZophLeSpaceModel:
        """Owned by the environment: a depth change (``set_depth``) reaches every agent holding it."""
        return self._space

    @property
    def strides(self) -> bool:
        return self.space_config.strides

    @property
    def depth(self) -> int:
        """Layers of the current episode."""
        return self._space.layers

    @property
    def max_layers(self) -> int:
        return self.space_config.layers

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def reward_mode(self) -> str:
        return "final"

    def set_depth(self, layers: int) -> None:
        """Change the number of layers of the coming episodes (the curriculum); refused mid-episode."""
        if not 1 <= layers <= self.max_layers:
            raise ConfigError(f"depth must be in 1..{self.max_layers} (the env's layers), got {layers}")
        if self.architecture.actions and not self._done:
            raise ConfigError("the depth changes between episodes, not in the middle of one")
        self._space.layers = layers

    def space_size(self) -> int:
        """Distinct networks of the current depth."""
        return space_size(self.depth, self.strides)

    # -- Gymnasium API --------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.architecture = ZophLeArchitecture((), self.strides)
        self._done = False
        return self._space.observe(()), {"architecture": "", "layers": 0, "depth": self.depth}

    def step(self, action: int | np.integer[Any]):
        self._check_step(action)
        token = self._space.tokens[len(self.architecture)]
        self.architecture = self.architecture.append(int(action))
        valid = int(action) < token.choices
        finished = valid and len(self.architecture) == self._space.episode_steps()
        self._done = finished or not valid
        if finished:
            evaluation = self.evaluator.evaluate([self.architecture])[0]
            reward = evaluation.accuracy
        else:
            evaluation, reward = Evaluation.none(str(self.architecture)), 0.0
        info = {
            "architecture": str(self.architecture),
            "token": TOKEN_TYPES[token.type],
            "layer": token.layer,
            "layers": self.architecture.complete_layers(),
            "depth": self.depth,
            "valid": valid,
            **evaluation.info(),
        }
        return self._space.observe(self.architecture.actions), float(reward), self._done, False, info

    def action_masks(self) -> np.ndarray:
        """The valid actions of the current token (all of them once the episode has ended)."""
        return self._space.masks(self._space.observe(self.architecture.actions))

    def prefetch(self, episodes: Sequence[Sequence[int]]) -> None:
        """Evaluate, as one batch, the finished valid networks among ``episodes`` (REINFORCE's m per update)."""
        networks: dict[str, ZophLeArchitecture] = {}
        for actions in episodes:
            architecture = self._space.architecture(actions)
            if architecture.is_valid and len(architecture) == self._space.episode_steps():
                networks.setdefault(str(architecture), architecture)
        self._evaluate_ahead(list(networks.values()))

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        text = str(self.architecture) or "(empty)"
        if self.architecture.is_valid and self.architecture.complete_layers():
            layers = self.architecture.layers
            sides = " ".join(str(side) for side in output_sides(layers, self.image_size))
            return f"{text}  (output sides {sides})"
        return text


if ZophLeEnv.__doc__ is not None:  # None under python -OO, which strips docstrings
    ZophLeEnv.__doc__ = ZophLeEnv.__doc__.replace(
        "{settings_table}", settings.markdown_table(all_settings()).replace("\n", "\n    ")
    )
