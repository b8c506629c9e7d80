"""``NAS-v0``: neural architecture search as a Gymnasium environment (NasGym semantics)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from nasgym.core import observation, settings
from nasgym.core.config import SETTINGS_CLASSES, EnvConfig, grouped_keywords, make_configs
from nasgym.core.env_base import EvaluatedEnv
from nasgym.core.errors import ArchitectureError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import Evaluator
from nasgym.core.search_space import N_ACTIONS, Architecture, action_mask
from nasgym.core.space_model import ChainSpaceModel
from nasgym.core.training import TrainConfig


class _NotGiven:
    """``dataset``'s default: EnvConfig's, unless ``env_config`` names one (so ``None`` stays a wrong value)."""

    def __repr__(self) -> str:
        return f"{EnvConfig.dataset!r}"


_NOT_GIVEN: Any = _NotGiven()


class NASEnv(EvaluatedEnv):
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

    `env.unwrapped.action_masks()` gives the actions that keep the network valid (sb3-contrib's convention).

    ## Observation Space

    `observation="nsc"` (default): the NSC matrix, `Box(0, max(max_layers, 7), (max_layers, 5), int64)`: row `i`
    is `[i + 1, type, kernel, i, 0]` for the i-th layer appended (type 1 conv, 2 max-pool, 3 avg-pool,
    7 terminal), rows not used yet are zero. `observation="onehot"`: `Box(0, 1, (max_layers * 9,), float32)`,
    each row's layer one-hot (empty or one of the 8 actions), the form MLP policies of any RL library take.
    `observation="nasgym"`: NasGym's `Box(0, 1, (max_layers, 25), float32)` for 10 layers, each row the one-hot of
    its type, kernel and predecessor, the newest layer in the last row (`nasgym.core.observation`).

    ## Rewards

    - `reward="per_step"` (NasGym's default): after every step the whole current network is trained from
      scratch; its accuracy on the reward split, in [0, 1], is the reward.
    - `reward="final"` (Zoph & Le): 0 until the episode ends, then the final network's accuracy.
    - An invalid network (a spatial side below 1) gets 0.
    - `reward_source="weight_sharing"` (ENAS): instead of training from scratch, the network is scored with weights
      shared by every network of the space, after k minibatches of training through it (the `ws_*` keywords);
      far cheaper, never cached, and a coarser ranking (`nasgym fidelity` measures how coarse).

    Identical networks are never trained twice: a persistent SQLite reward cache answers them. A network
    whose training diverges or runs out of memory gets 0, with the reason in `info["failure"]`.

    ## Starting State

    The empty network (all-zero NSC).

    ## Episode End

    Termination when the terminal action is taken, when `max_layers` rows are used (the terminal row
    counts), or when the new layer makes the network invalid (`info["valid"] = False`). No truncation.

    ## Info

    Every step gives the same keys with the same types and shapes, so vector environments can stack them:
    `architecture` (str, e.g. `"c3-m2-t"`), `nsc` (the observation's `(max_layers, 5)` matrix), `layers` (int),
    `valid` (bool), `rewarded` (bool: this step's network was evaluated), `accuracy` (float, -1.0 when not
    rewarded: a finite sentinel, so test `rewarded`), `from_cache` (answered by the persistent cache: trained by an
    earlier run or another process), `train_seconds` (what training this network took, whenever that was; 0.0 when
    not rewarded), `parameters` (int, -1 when not rewarded), `failure` (why training failed, `""` otherwise) and
    `reward_source` (`"trained"`, `"weight_sharing"`, `"function"` or `"none"`). A repeat within one environment
    returns the first answer unchanged, so a step is a pure function of the architecture;
    `env.unwrapped.evaluator.stats` counts what was really trained. With `reward_source="weight_sharing"` it is
    not: each rewarded step trains the shared weights k minibatches through its network and then scores it with
    them, so the same network's reward moves as they train; the environment's `spec.nondeterministic` is then True.

    ## Arguments

    ```python
    >>> import gymnasium as gym, nasgym
    >>> env = gym.make("NAS-v0", dataset="digits", epochs=1, image_size=16, cache=False)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(1)  # append a 3x3 conv

    ```

    Every keyword below is a field of `EnvConfig`, `TrainConfig` or `NetworkConfig`, where its default is
    written; the command line's flags come from the same fields. NasGym's values are the defaults.

    {settings_table}

    The same settings also come grouped, as typed configs: `env_config=EnvConfig(...)` (the environment's own,
    `dataset` included) and `train_config=TrainConfig(...)` (the child training's, `NetworkConfig` inside), e.g.
    `gym.make("NAS-v0", dataset="digits", env_config=EnvConfig(image_size=16), train_config=TrainConfig(epochs=1))`.
    A grouped config is taken whole, its defaults included (with `reward_source="table"` the table's image size is
    not filled in: give it in the config); a flat keyword naming one of its settings again is a `ConfigError`.
    `dataset=` may accompany `env_config` whose `dataset` is left at its default: it then picks the data.

    Besides these, `evaluator=` replaces training with any `nasgym.core.evaluator.Evaluator` (subclass
    `EvaluatorBase` and write `evaluate(architectures) -> list[Evaluation]`; `FunctionEvaluator` is the hook for
    cheap known rewards), and `render_mode="ansi"` renders the network as text. Every training setting is part
    of the reward cache key, so a changed setting never reuses a reward. `env.reset(seed=...)` seeds nothing
    that matters: the environment's dynamics are deterministic.
    """

    def __init__(
        self,
        dataset: str = _NOT_GIVEN,
        *,
        env_config: EnvConfig | None = None,
        train_config: TrainConfig | None = None,
        evaluator: Evaluator | None = None,
        render_mode: str | None = None,
        **options: Any,
    ):
        if isinstance(dataset, os.PathLike):  # a folder of images; the settings' str check would drop the meaning
            dataset = f"folder:{os.fspath(dataset)}"
        given = {"dataset": dataset} if dataset is not _NOT_GIVEN else {}
        self.config, self.train_config = make_configs(grouped_keywords({**given, **options}, env_config, train_config))
        self.train_config.network.conv_filters(self.max_layers - 1)  # the deepest network's widest layer fits
        self._attach_evaluator(evaluator, render_mode, self.config, self.train_config)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = observation.observation_space(self.config.observation, self.max_layers)
        self.architecture = Architecture(())
        self._done = False

    # -- the settings agents read -------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        """Input side of the child networks: it decides which actions are valid."""
        return self.config.image_size

    @property
    def max_layers(self) -> int:
        return self.config.max_layers

    @property
    def reward_mode(self) -> str:
        return self.config.reward

    @property
    def space_model(self) -> ChainSpaceModel:
        """What agents need to act without a live env: masks, features and episode progress from observations."""
        return ChainSpaceModel(self.image_size, self.max_layers, self.config.observation)

    # -- Gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """The empty network; ``options={"actions": [...]}`` starts from a partial network instead (a resumed
        search puts an unfinished episode back; nothing is rewarded), which must be valid and not ended."""
        super().reset(seed=seed)
        architecture = Architecture(tuple((options or {}).get("actions", ())))
        ended = architecture.is_terminated or len(architecture) >= self.max_layers
        if architecture and (ended or not architecture.is_valid(self.image_size, self.max_layers)):
            raise ArchitectureError(f"cannot start an episode from {architecture}: it is invalid or already ended")
        self.architecture = architecture
        self._done = False
        return self._observation(), {"architecture": str(architecture), "layers": len(architecture)}

    def step(self, action: int | np.integer[Any]):
        self._check_step(action)
        rewarded = self.rewarded_network(int(action))
        self.architecture = self.architecture.append(int(action))
        valid = self.architecture.is_valid(self.image_size, self.max_layers)
        terminated = not valid or self.architecture.is_terminated or len(self.architecture) >= self.max_layers
        self._done = terminated
        if rewarded is not None:
            evaluation = self.evaluator.evaluate([rewarded])[0]
        else:
            evaluation = Evaluation.none(str(self.architecture.network))
        reward = evaluation.accuracy if evaluation.rewarded else 0.0
        return self._observation(), float(reward), terminated, False, self._info(valid, evaluation)

    def action_masks(self) -> np.ndarray:
        """Actions that keep the network valid; the terminal action is always among them."""
        return action_mask(self.architecture, self.image_size, self.max_layers)

    def rewarded_network(self, action: int) -> Architecture | None:
        """The network ``action`` would be rewarded for at this step (None: no reward, or an invalid network).
        A vector env asks every copy before stepping them, to evaluate their networks as one batch."""
        architecture = self.architecture.append(action)
        if not architecture.is_valid(self.image_size, self.max_layers):
            return None
        ends = architecture.is_terminated or len(architecture) >= self.max_layers
        return architecture if ends or self.reward_mode == "per_step" else None

    def prefetch(self, episodes: Sequence[Sequence[int]]) -> None:
        """Evaluate, as one batch, every network the given action sequences will be rewarded for under this
        environment's reward mode; the steps that reach them later are answered from memory.

        An agent that samples several architectures before stepping them (REINFORCE's m per update) calls this,
        so a concurrent or remote evaluator trains them side by side instead of one per step.
        """
        networks: dict[str, Architecture] = {}
        for actions in episodes:
            episode = Architecture(tuple(actions))
            lengths = range(1, len(episode) + 1) if self.reward_mode == "per_step" else [len(episode)]
            for length in lengths:
                prefix = Architecture(episode.actions[:length])
                if prefix.is_valid(self.image_size, self.max_layers):
                    networks.setdefault(str(prefix.network), prefix.network)
        self._evaluate_ahead(list(networks.values()))

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        sides = " -> ".join(str(side) for side in self.architecture.spatial_sizes(self.image_size))
        return f"{self.architecture or '(empty)'}  (spatial sides {sides})"

    # -- helpers ------------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        return observation.encode(self.config.observation, self.architecture.nsc(self.max_layers))

    def _info(self, valid: bool, evaluation: Evaluation) -> dict[str, Any]:
        return {
            "architecture": str(self.architecture),
            "nsc": self.architecture.nsc(self.max_layers),
            "layers": len(self.architecture),
            "valid": valid,
            **evaluation.info(),
        }


if NASEnv.__doc__ is not None:  # None under python -OO, which strips docstrings
    NASEnv.__doc__ = NASEnv.__doc__.replace(
        "{settings_table}", settings.markdown_table(settings.settings_of(*SETTINGS_CLASSES)).replace("\n", "\n    ")
    )
