"""``NAS-v0`` as a Gymnasium vector environment whose copies are rewarded as one batch.

``gym.make_vec("NAS-v0", num_envs=N)`` builds ``N`` environments that share one evaluator (one dataset in
memory, one reward cache). Each ``step`` first collects the networks the ``N`` actions will be rewarded for and
hands them to the evaluator in one call, then steps the copies, which answer from the evaluator's memory. A
concurrent or remote evaluator (``TrainingEvaluator(concurrency=...)``, a Ray backend) therefore trains the ``N``
networks side by side. It implements Gymnasium's ``VectorEnv`` API itself and otherwise behaves as gymnasium's
``SyncVectorEnv``: the same three autoreset modes, ``reset_mask``, and the same stacked ``info`` (NAS-v0's info has
fixed keys and types, so it stacks).

Three additions serve agents that run several episodes at once (``nasgym search --num-envs N``): the action
``HOLD`` leaves a copy as it is for one step (REINFORCE's copies wait while others finish a batch),
``reset(options={"episodes": [...]})`` puts unfinished episodes back (a resumed search), and ``prefetch`` evaluates
sampled episodes as one batch as ``NASEnv.prefetch`` does. ``copy_info`` reads one copy's step info back out of the
stacked ``info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from nasgym.core.env import NASEnv
from nasgym.core.errors import ArchitectureError, ConfigError

HOLD = -1
"""The action that leaves its copy unchanged for one step: no reward, no termination, no info."""

Step = tuple[Any, float, bool, bool, dict[str, Any]]


class NASVectorEnv(VectorEnv):
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
        self.envs: list[NASEnv] = [first] + [NASEnv(**shared) for _ in range(num_envs - 1)]
        self.evaluator = first.evaluator
        self.num_envs = num_envs
        self.copy = copy
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {**first.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = first.render_mode
        self.single_action_space = first.action_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = first.observation_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._copy_observations: list[Any] = [None] * num_envs
        """Each copy's latest observation; ``_observations`` stacks them."""
        observations = create_empty_array(self.single_observation_space, n=num_envs, fn=np.zeros)
        if observations is None:  # gymnasium's annotation allows it; none of its spaces gives it
            raise TypeError(f"observations of {self.single_observation_space} do not stack")
        self._observations = observations
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)
        """The copies whose episode ended at the last step: under ``NEXT_STEP`` their next step is a reset."""

    # -- Gymnasium's VectorEnv API ----------------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Gymnasium's reset (``options={"reset_mask": ...}`` resets those copies only); ``options={"episodes":
        [actions of copy 0, ...]}`` then starts each copy from its partial network (an empty list: the empty network),
        as a resumed search continues unfinished episodes."""
        options = dict(options or {})
        episodes = options.pop("episodes", None)
        mask = self._reset_mask(options.pop("reset_mask", None))
        seeds = self._seeds(seed)
        infos: dict[str, Any] = {}
        for index, env in enumerate(self.envs):
            if mask[index]:
                self._copy_observations[index], info = env.reset(seed=seeds[index], options=options or None)
                infos = add_info(infos, info, index, self.num_envs)
        self._autoreset[mask] = False
        if episodes is not None:
            if len(episodes) != self.num_envs:
                raise ConfigError(f"reset got {len(episodes)} episodes to continue for {self.num_envs} copies")
            for index, actions in enumerate(episodes):
                if len(actions):
                    self._copy_observations[index], _ = self.envs[index].reset(options={"actions": list(actions)})
        return self._stacked(), infos

    def step(self, actions: Any):
        """Every copy's step (``HOLD``: none), their rewarded networks evaluated first as one batch."""
        self._check_actions(actions)
        actions = list(iterate(self.action_space, actions))
        self._evaluate_batch(actions)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminations = np.zeros(self.num_envs, dtype=np.bool_)
        truncations = np.zeros(self.num_envs, dtype=np.bool_)
        infos: dict[str, Any] = {}
        for index, action in enumerate(actions):
            env = self.envs[index]
            if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset[index]:
                observation, info = env.reset()
                step: Step = (observation, 0.0, False, False, info)
            elif self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset[index]:
                raise RuntimeError(
                    f"copy {index} ended its episode; with AutoresetMode.DISABLED reset it (options={{'reset_mask': "
                    "...}) before stepping it again"
                )
            else:
                step = self._step_copy(index, action)
                if self.autoreset_mode == AutoresetMode.SAME_STEP and (step[2] or step[3]):
                    final = {"final_obs": step[0], "final_info": step[4]}
                    infos = add_info(infos, final, index, self.num_envs)
                    observation, info = env.reset()
                    step = (observation, *step[1:4], info)
            self._copy_observations[index], rewards[index], terminations[index], truncations[index], info = step
            infos = add_info(infos, info, index, self.num_envs)
        self._autoreset = terminations | truncations
        return self._stacked(), rewards, terminations, truncations, infos

    def render(self) -> tuple[Any, ...]:
        return tuple(env.render() for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Each copy's method ``name`` called with these arguments (an attribute that is not callable: its value)."""
        results = []
        for env in self.envs:
            function = env.get_wrapper_attr(name)
            results.append(function(*args, **kwargs) if callable(function) else function)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return self.call(name)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set ``name`` on every copy: one value each from a list or tuple, else the same value on all."""
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"set_attr takes one value per copy ({self.num_envs}), got {len(values)}")
        for env, value in zip(self.envs, values, strict=True):
            env.set_wrapper_attr(name, value)

    # One per copy, as gymnasium's own SyncVectorEnv overrides VectorEnv's single seed and generator
    @property
    def np_random_seed(self) -> tuple[int, ...]:  # type: ignore[override]
        return self.get_attr("np_random_seed")

    @property  # type: ignore[misc]
    def np_random(self) -> tuple[np.random.Generator, ...]:  # type: ignore[override]
        return self.get_attr("np_random")

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.__dict__.get("envs", []):  # a constructor that failed leaves no copies
            env.close()

    # -- NAS-v0's additions -----------------------------------------------------------------------------------------
    def prefetch(self, episodes: Sequence[Sequence[int]]) -> None:
        """``NASEnv.prefetch`` through the shared evaluator: every network the episodes will be rewarded for, as one
        batch."""
        self.envs[0].prefetch(episodes)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, 8)``: each copy's valid actions (a copy about to reset is offered every action)."""
        return np.stack([env.action_masks() for env in self.envs])

    # -- helpers ----------------------------------------------------------------------------------------------------
    def _evaluate_batch(self, actions: list[Any]) -> None:
        """Hand the evaluator the networks this step's copies will be rewarded for, as one call."""
        networks = []
        for index, action in enumerate(actions):
            if int(action) == HOLD or (self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset[index]):
                continue  # this copy holds, or resets instead of stepping
            network = self.envs[index].rewarded_network(int(action))
            if network is not None:
                networks.append(network)
        if networks and self.evaluator.stationary:  # shared weights: each copy's step trains them
            self.evaluator.evaluate(networks)

    def _step_copy(self, index: int, action: Any) -> Step:
        if int(action) == HOLD:
            return self._copy_observations[index], 0.0, False, False, {}
        return self.envs[index].step(action)

    def _stacked(self) -> Any:
        self._observations = concatenate(self.single_observation_space, self._copy_observations, self._observations)
        return deepcopy(self._observations) if self.copy else self._observations

    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        """One seed per copy, as ``SyncVectorEnv`` spreads them: None, ``seed + index``, or the list given."""
        if seed is None:
            return [None] * self.num_envs
        seeds: list[int | None] = (
            [seed + index for index in range(self.num_envs)] if isinstance(seed, int) else list(seed)
        )
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset takes one seed per copy ({self.num_envs}), got {len(seeds)}")
        return seeds

    def _reset_mask(self, mask: Any) -> np.ndarray:
        """Gymnasium's ``options["reset_mask"]``, checked: which copies a reset resets (None: all)."""
        if mask is None:
            return np.ones(self.num_envs, dtype=np.bool_)
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
            raise TypeError(f"options['reset_mask'] must be a numpy array of dtype np.bool_, got {mask!r}")
        if mask.shape != (self.num_envs,) or not mask.any():
            raise ValueError(
                f"options['reset_mask'] must have shape ({self.num_envs},) and at least one True value, got {mask!r}"
            )
        return mask

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


def add_info(infos: dict[str, Any], info: dict[str, Any], index: int, num_envs: int) -> dict[str, Any]:
    """Copy ``index``'s ``info`` stacked into ``infos`` as Gymnasium's vector envs stack it: per key an array over the
    copies (typed by the first value: a number's type, an array's shape and dtype, else objects) beside a mask
    ``_key`` of the copies that gave one; a dict nested alike; ``final_obs`` an object array."""
    for key, value in info.items():
        array: dict[str, Any] | np.ndarray
        if isinstance(value, dict) and key != "final_obs":
            array = add_info(infos.get(key, {}), value, index, num_envs)
        else:
            array = infos[key] if key in infos else _column(key, value, num_envs)
            array[index] = value
        present = infos.get(f"_{key}", np.zeros(num_envs, dtype=np.bool_))
        present[index] = True
        infos[key], infos[f"_{key}"] = array, present
    return infos


def _column(key: str, value: Any, num_envs: int) -> np.ndarray:
    if key != "final_obs" and (type(value) in (int, float, bool) or isinstance(value, np.number)):
        return np.zeros(num_envs, dtype=type(value))
    if key != "final_obs" and isinstance(value, np.ndarray):
        return np.zeros((num_envs, *value.shape), dtype=value.dtype)
    return np.full(num_envs, None, dtype=object)


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
