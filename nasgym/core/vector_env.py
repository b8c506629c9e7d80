"""``NAS-v0`` as a Gymnasium vector environment whose copies are rewarded as one batch.

``gym.make_vec("NAS-v0", num_envs=N)`` builds ``N`` environments that share one evaluator (one dataset in
memory, one reward cache). Each ``step`` first collects the networks the ``N`` actions will be rewarded for and
hands them to the evaluator in one call, then steps the copies, which answer from the evaluator's memory. A
concurrent or remote evaluator (``TrainingEvaluator(concurrency=...)``, a Ray backend) therefore trains the ``N``
networks side by side. Apart from that it is gymnasium's ``SyncVectorEnv``: same autoreset modes, same
stacked ``info`` (NAS-v0's info has fixed keys and types, so it stacks).

Three additions serve agents that run several episodes at once (``nasgym search --num-envs N``): the action
``HOLD`` leaves a copy as it is for one step (REINFORCE's copies wait while others finish a batch),
``reset(options={"episodes": [...]})`` puts unfinished episodes back (a resumed search), and ``prefetch`` evaluates
sampled episodes as one batch as ``NASEnv.prefetch`` does. ``copy_info`` reads one copy's step info back out of the
stacked ``info``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import concatenate, iterate

from nasgym.core.env import NASEnv
from nasgym.core.errors import ArchitectureError, ConfigError

HOLD = -1
"""The action that leaves its copy unchanged for one step: no reward, no termination, no info."""


class _Held:
    """Stands in for a held copy during one step of ``SyncVectorEnv.step``."""

    def __init__(self, env: NASEnv, observation: Any):
        self.env, self.observation = env, observation

    def step(self, action: Any):
        return self.observation, 0.0, False, False, {}

    def reset(self, **kwargs: Any):
        return self.env.reset(**kwargs)


def _built(env: NASEnv) -> NASEnv:
    return env


class NASVectorEnv(SyncVectorEnv):
    """``num_envs`` copies of ``NAS-v0`` built from the same keywords, sharing one evaluator."""

    def __init__(
        self,
        num_envs: int,
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        copy: bool = True,
        **options: Any,
    ):
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ConfigError(f"num_envs must be a positive int, got {num_envs!r}")
        first = NASEnv(**options)
        shared = {**options, "evaluator": first.evaluator}
        # partials, not lambdas: the vector env pickles as its copies do
        makers = [functools.partial(_built, first)] + [functools.partial(NASEnv, **shared)] * (num_envs - 1)
        super().__init__(makers, copy=copy, autoreset_mode=autoreset_mode)
        self.evaluator = first.evaluator

    def step(self, actions: Any):
        self._check_actions(actions)
        networks, held = [], []
        for index, action in enumerate(iterate(self.action_space, actions)):
            if int(action) == HOLD:
                held.append(index)
                continue
            if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[index]:
                continue  # this copy resets instead of stepping
            network = self.envs[index].rewarded_network(int(action))
            if network is not None:
                networks.append(network)
        if networks and getattr(self.evaluator, "stationary", True):  # shared weights: each copy's step trains them
            self.evaluator.evaluate(networks)
        if not held:
            return super().step(actions)
        copies = list(self.envs)
        for index in held:
            self.envs[index] = _Held(copies[index], self._env_obs[index])
        try:
            return super().step(np.where(np.asarray(actions) == HOLD, 0, actions))
        finally:
            self.envs = copies

    def _check_actions(self, actions: Any) -> None:
        """One whole number per copy (each copy's step checks its range), or an ArchitectureError."""
        try:
            array = np.asarray(actions)
        except ValueError:  # ragged
            array = np.empty(0)
        if array.shape != (self.num_envs,) or not np.issubdtype(array.dtype, np.integer):
            shown = repr(actions) if len(repr(actions)) <= 80 else f"{repr(actions)[:77]}..."
            raise ArchitectureError(
                f"step takes {self.num_envs} whole-number actions, one per copy ({HOLD} leaves a copy as it is), "
                f"got {shown}"
            )

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Gymnasium's reset; ``options={"episodes": [actions of copy 0, ...]}`` then starts each copy from its
        partial network (an empty list: the empty network), as a resumed search continues unfinished episodes."""
        options = dict(options or {})
        episodes = options.pop("episodes", None)
        observations, infos = super().reset(seed=seed, options=options or None)
        if episodes is None:
            return observations, infos
        if len(episodes) != self.num_envs:
            raise ConfigError(f"reset got {len(episodes)} episodes to continue for {self.num_envs} copies")
        for index, actions in enumerate(episodes):
            if len(actions):
                self._env_obs[index], _ = self.envs[index].reset(options={"actions": list(actions)})
        self._observations = concatenate(self.single_observation_space, self._env_obs, self._observations)
        return (deepcopy(self._observations) if self.copy else self._observations), infos

    def prefetch(self, episodes: Sequence[Sequence[int]]) -> None:
        """``NASEnv.prefetch`` through the shared evaluator: every network the episodes will be rewarded for, as one
        batch."""
        self.envs[0].prefetch(episodes)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, 8)``: each copy's valid actions (a copy about to reset is offered every action)."""
        return np.stack([env.action_masks() for env in self.envs])


def copy_info(infos: dict[str, Any], index: int) -> dict[str, Any]:
    """Copy ``index``'s step info out of a vector env's stacked ``infos``, as plain Python values. On the step that
    ended its episode under ``AutoresetMode.SAME_STEP`` that is the final step's info, not the reset's."""
    final = infos.get("_final_info")
    if final is not None and final[index]:
        infos = infos["final_info"]
    info = {}
    for key, values in infos.items():
        if key.startswith("_") or key in ("final_info", "final_obs"):
            continue
        present = infos.get(f"_{key}")
        if present is None or present[index]:
            value = values[index]
            info[key] = value.item() if isinstance(value, np.generic) else value
    return info
