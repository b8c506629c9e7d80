"""The surface every agent shares (stable-baselines3's): ``learn``, ``predict``, ``play``, ``save``, ``load``.

Resuming is exact at episode ends: ``state_dict`` holds everything a run needs to continue (weights,
optimiser, random generators, counters, unfinished batches or rollouts), and a callback runs only once the
agent has fully processed its step, so saving from a callback captures a consistent state. The observation of
an unfinished episode is not saved: a loaded agent starts a new episode.

An agent given a vector env of ``N`` NAS-v0 copies (``gym.make_vec("NAS-v0", num_envs=N,
autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)``; stable-baselines3's ``n_envs``) runs ``N`` episodes at
once, and the copies' networks reach the evaluator as one batch per step. ``agent.num_envs`` is ``N`` (1 for a plain
env); ``learn(total_steps)`` counts the steps of all copies and, as in stable-baselines3, may take up to ``N - 1``
more to finish its last vector step. Per-copy state (meta-A2C's memories, REINFORCE's batch) is in the checkpoint;
the copies' unfinished episodes are not, but ``reset()`` answers with them where the env puts them back (a resumed
``nasgym search`` does), so such a search resumes exactly.

Every agent has one way to act, over copies: a plain env is wrapped once, in ``Agent.__init__``, as a vector env of
one copy (``OneEnv``, as stable-baselines3 wraps one in a ``DummyVecEnv``), so ``learn`` and ``play`` have one loop
each and a plain env's run is the one-copy run of the same seed.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from agents import checkpoint
from agents.hyperparameters import validate
from nasgym.core import settings
from nasgym.core.errors import ConfigError
from nasgym.core.space_model import SpaceModel
from nasgym.core.vector_env import HOLD, add_info, copy_info

StepCallback = Callable[[dict[str, Any]], "bool | None"]
"""Called after every environment step with ``{"step", "reward", "terminated", "info", "env"}``; False stops.

``terminated`` is True when the step ended the episode; ``env`` is the copy of a vector env that took the step (0 for
a plain env), and a vector step's copies are reported in copy order. The agent has finished processing the step (stored
it, updated on it) before the call, so ``agent.save`` inside a callback writes a checkpoint that resumes
exactly.
"""
UpdateListener = Callable[[dict[str, float]], None]
"""Receives an agent's training metrics (losses, entropy, ...) after each of its updates."""


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Networks built inside start from ``seed``; the global random state is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


AgentT = TypeVar("AgentT", bound="Agent")


@runtime_checkable
class CopyAttributes(Protocol):
    """A vector env that reads an attribute of each copy (Gymnasium's sync and async ones, ``NASVectorEnv``,
    ``OneEnv``); Gymnasium's ``VectorEnv`` itself declares no ``get_attr``."""

    def get_attr(self, name: str) -> tuple[Any, ...]: ...


class Agent(ABC):
    """An agent that searches a ``NAS-v0`` environment. Hyperparameters live in one dataclass, ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, env: gym.Env | gym.vector.VectorEnv, config: Any = None, **hyperparameters: Any):
        if config is not None and hyperparameters:
            raise TypeError("pass either a config object or keyword hyperparameters, not both")
        self.config = config if config is not None else self.make_config(**hyperparameters)
        if config is not None:
            self._checked(lambda: validate(self.config))  # a config object may have changed since it was made
        self.env = env
        """The environment as given: a plain env or a vector env."""
        self.space = self.space_of(env)
        """What the agent knows of the search space from observations alone (``nasgym.core.space_model``)."""
        self.num_timesteps = 0
        """Environment steps learned from (``play`` does not count)."""
        self.update_listener: UpdateListener | None = None
        self._observation: np.ndarray | None = None  # the copies' of their unfinished episodes; None: reset first
        self._episode_owner: str | None = None  # "learn" or "play": switching between them starts a new episode
        self.vectorized = is_vector(env)
        """The env given is a vector env (of any number of copies, one included)."""
        if self.vectorized and env.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
            raise ConfigError(
                f"{self.name} runs vector envs that reset a copy in the step that ends its episode: make it with "
                "autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP"
            )
        self.vec_env: gym.vector.VectorEnv = env if isinstance(env, gym.vector.VectorEnv) else OneEnv(env)
        """What the agent steps: ``env`` itself, or a plain ``env`` as a vector env of one copy."""
        self.num_envs = self.vec_env.num_envs
        """Episodes run at once: the copies of a vector env, 1 for a plain env."""

    @classmethod
    def space_of(cls, env: gym.Env | gym.vector.VectorEnv) -> SpaceModel:
        """The environment's ``SpaceModel``, through any wrappers."""
        try:
            if not isinstance(env, gym.vector.VectorEnv):
                return env.get_wrapper_attr("space_model")
            if isinstance(env.unwrapped, CopyAttributes):
                return env.unwrapped.get_attr("space_model")[0]
        except AttributeError:
            pass
        raise ConfigError(
            f"{cls.name} searches nasgym environments: {env} has no space_model, so the valid actions are unknown"
        )

    @classmethod
    def make_config(cls, **hyperparameters: Any) -> Any:
        """``Config(**hyperparameters)``, checked; an unknown name or a bad value is a one-line ConfigError (an
        unknown name's lists the known ones)."""
        known = [field.name for field in dataclasses.fields(cls.Config)]
        for name in hyperparameters:
            if name not in known:
                raise settings.unknown_name_error(name, known, f"{cls.name} hyperparameter")
        return cls._checked(lambda: cls.Config(**hyperparameters))

    @classmethod
    def _checked(cls, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except ConfigError as error:
            raise ConfigError(f"bad {cls.name} hyperparameters: {error}") from None

    # -- the API --------------------------------------------------------------------------------------
    def learn(self, total_steps: int, callback: StepCallback | None = None) -> Agent:
        """Interact with the environment for ``total_steps`` more steps (a whole number, at least 1), learning as it
        goes."""
        return self._learn(step_count(total_steps), callback)

    @abstractmethod
    def _learn(self, total_steps: int, callback: StepCallback | None) -> Agent:
        """``learn`` after its argument was checked: what each agent does."""

    @abstractmethod
    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        """The next action for ``observation`` and the recurrent state to pass back next time."""

    def play(self, total_steps: int, callback: StepCallback | None = None, deterministic: bool = False) -> Agent:
        """Act with the current policy for ``total_steps`` steps without learning: a frozen policy.

        Event step numbers count from 1 within this call; ``num_timesteps`` does not move.
        """
        return self._play(step_count(total_steps), callback, deterministic)

    def _play(self, total_steps: int, callback: StepCallback | None, deterministic: bool) -> Agent:
        """``play`` after its argument was checked; agents with their own way of acting override this. Each copy's
        ``predict`` state is passed back to it within the call."""
        step, states = 0, [None] * self.num_envs
        while step < total_steps:
            observations = self._observations("play")
            acted = [self.predict(obs, state, deterministic) for obs, state in zip(observations, states, strict=True)]
            states = [state for _, state in acted]
            rewards, dones, infos = self._env_step([action for action, _ in acted])
            step += self.num_envs
            if not self._notify_copies(callback, step - self.num_envs, rewards, dones, infos):
                break
        return self

    @property
    def policy(self) -> torch.nn.Module | None:
        """The network that chooses actions (None for agents without one)."""
        return None

    def reset_trial(self) -> None:
        """Start a new trial (e.g. on another dataset): drop what belongs to the last one, such as recurrent
        memory (meta-A2C) or an unfinished batch (REINFORCE). Learned weights stay; the next step starts a
        new episode."""
        self._observation = None

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything learned or needed to continue learning (weights, optimiser, RNG, counters), as tensors and
        plain data only, so that the checkpoint loads with ``torch.load(weights_only=True)``."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
        """One file of tensors and plain data (``agents.checkpoint``): agent name, hyperparameters, state and the
        caller's ``metadata`` (plain data too); written atomically so a kill never truncates it."""
        payload = {
            "agent": self.name,
            "format": checkpoint.FORMAT,
            "config": dataclasses.asdict(self.config),
            "num_timesteps": int(self.num_timesteps),
            "observation_shape": tuple(int(side) for side in observation_shape(self.vec_env)),
            "state": self.state_dict(),
            "metadata": metadata or {},
        }
        checkpoint.write(Path(path), payload)

    @classmethod
    def from_payload(
        cls: type[AgentT],
        payload: dict[str, Any],
        env: gym.Env | gym.vector.VectorEnv,
        source: str | Path = "the checkpoint",
    ) -> AgentT:
        """The agent a checkpoint (``agents.checkpoint.read``) holds, attached to ``env``."""
        shape = tuple(payload["observation_shape"])
        if shape != observation_shape(env):
            raise ConfigError(
                f"the {payload['agent']} agent in {source} observed shape {shape}, this environment gives "
                f"{observation_shape(env)}; make the environment with the same max_layers and observation"
            )
        try:
            config = cls.Config(**payload["config"])
        except (ConfigError, TypeError) as error:
            raise checkpoint.unfit(source, f"its {cls.name} hyperparameters do not fit", error) from None
        agent = cls(env, config)
        agent.num_timesteps = payload["num_timesteps"]
        try:
            agent.load_state_dict(payload["state"])
        except (TypeError, KeyError, ValueError, RuntimeError, IndexError) as error:
            raise checkpoint.unfit(source, f"its {cls.name} state does not fit", error) from None
        return agent

    # -- helpers for subclasses -------------------------------------------------------------------------
    def _mask(self, observation: np.ndarray) -> np.ndarray:
        """Valid actions, computed from the observation alone (so ``predict`` needs no live env)."""
        return self.space.masks(observation)

    def _report(self, metrics: dict[str, float]) -> None:
        """Publish one update's metrics (the search writes them to progress.csv and TensorBoard)."""
        if self.update_listener is not None:
            self.update_listener({"step": self.num_timesteps, **metrics})

    @staticmethod
    def _notify(callback: StepCallback | None, step: int, reward: float, done: bool, info: dict, env: int = 0) -> bool:
        """Tell the callback about a step; False means stop."""
        if callback is None:
            return True
        event = {"step": step, "reward": reward, "terminated": done, "info": info, "env": env}
        return callback(event) is not False

    def _observations(self, owner: str) -> np.ndarray:
        """The copies' observations: of their unfinished episodes, or (first, or after a switch between learn and
        play) those ``reset()`` gives, which a resumed search's env answers with the episodes it put back."""
        if self._observation is None or self._episode_owner != owner:
            self._observation, _ = self.vec_env.reset()
            self._episode_owner = owner
        return self._observation

    def _env_step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Step every copy (``HOLD`` leaves one as it is): rewards, episode ends, per-copy infos (of the step that
        ended an episode, not of the reset that followed)."""
        observations, rewards, terminated, truncated, infos = self.vec_env.step(np.asarray(actions))
        self._observation = observations
        copies = [copy_info(infos, copy) for copy in range(self.num_envs)]
        return np.asarray(rewards, dtype=float), np.logical_or(terminated, truncated), copies

    def _prefetch(self, episodes: list[list[int]]) -> None:
        """Ask the env for every reward these episodes will need as one batch, where it can (``prefetch``); each
        step then reads its answer, and a concurrent evaluator trains the networks side by side."""
        prefetch = getattr(self.vec_env.unwrapped, "prefetch", None)
        if episodes and prefetch is not None:
            prefetch(episodes)

    def _notify_copies(
        self, callback: StepCallback | None, steps_before: int, rewards: Any, dones: Any, infos: list[dict]
    ) -> bool:
        """Tell the callback about each copy's step of one vector step (numbered from ``steps_before + 1``), once
        the agent has processed all of them; False means stop."""
        for copy in range(self.num_envs):
            step = steps_before + copy + 1
            if not self._notify(callback, step, float(rewards[copy]), bool(dones[copy]), infos[copy], copy):
                return False
        return True


def step_count(total_steps: Any) -> int:
    """``total_steps`` of ``learn`` and ``play`` as an int: a whole number of at least 1 (a bool, 1.5 or -1 is a
    one-line ConfigError naming the argument, not a TypeError deep inside an agent or a silent no-op)."""
    steps = settings.check_value("total_steps", int, total_steps)
    if steps < 1:
        raise ConfigError(f"total_steps must be at least 1 step, got {steps}")
    return steps


def is_vector(env: Any) -> bool:
    """Whether ``env`` is a Gymnasium vector env (an agent then runs its copies' episodes at once)."""
    return isinstance(env, gym.vector.VectorEnv)


def single_space(env: gym.Env | gym.vector.VectorEnv) -> gym.Space:
    """The observation space of one episode, of a plain env or of a vector env's copies."""
    return env.single_observation_space if isinstance(env, gym.vector.VectorEnv) else env.observation_space


def observation_shape(env: gym.Env | gym.vector.VectorEnv) -> tuple[int, ...]:
    """The shape of one episode's observations (the nasgym envs' observation spaces are boxes, which have one)."""
    shape = single_space(env).shape
    if shape is None:
        raise ConfigError(f"{env} observes a {single_space(env)}, which has no shape; nasgym's agents observe arrays")
    return shape


class OneEnv(gym.vector.VectorEnv):
    """A plain env as a vector env of one copy, so agents have one way to act (stable-baselines3's ``DummyVecEnv``).

    It behaves as ``NASVectorEnv`` in ``AutoresetMode.SAME_STEP`` does for the agents: the step that ends the episode
    resets the env and answers with the new episode's observation (the final one and the step's info under
    ``final_obs`` and ``final_info``), ``HOLD`` leaves the env as it is, the infos are stacked as Gymnasium's vector
    envs stack them, and ``prefetch``, ``action_masks`` and ``get_attr`` reach the env through its wrappers.
    """

    def __init__(self, env: gym.Env):
        self.env = env
        self.num_envs = 1
        self.metadata = {**env.metadata, "autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}
        self.render_mode = env.render_mode
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, 1)
        self.action_space = batch_space(env.action_space, 1)
        self._last: Any = None  # the env's latest observation, which HOLD answers with

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """``env.reset`` (a list of seeds has one, for the one copy), its info stacked."""
        seed = seed[0] if isinstance(seed, (list, tuple)) else seed
        self._last, info = self.env.reset(seed=seed, options=options)
        return self._stacked(), add_info({}, info, 0, 1)

    def step(self, actions: Any):
        """``env.step`` of the one action, resetting the env when the episode ends."""
        (action,) = np.asarray(actions).reshape(1).tolist()
        if action == HOLD:
            return self._stacked(), np.zeros(1), np.zeros(1, dtype=np.bool_), np.zeros(1, dtype=np.bool_), {}
        observation, reward, terminated, truncated, info = self.env.step(action)
        infos: dict[str, Any] = {}
        if terminated or truncated:
            infos = add_info(infos, {"final_obs": observation, "final_info": info}, 0, 1)
            observation, info = self.env.reset()
        self._last = observation
        infos = add_info(infos, info, 0, 1)
        return (
            self._stacked(),
            np.array([reward], dtype=np.float64),
            np.array([terminated]),
            np.array([truncated]),
            infos,
        )

    def _stacked(self) -> Any:
        out = create_empty_array(self.single_observation_space, 1)
        assert out is not None, "an observation space without a batch array"  # the nasgym envs' boxes have one
        return concatenate(self.single_observation_space, [self._last], out)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return (self.env.get_wrapper_attr(name),)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        function = self.env.get_wrapper_attr(name)
        return (function(*args, **kwargs) if callable(function) else function,)

    def action_masks(self) -> np.ndarray:
        """``(1, n_actions)``: the env's valid actions."""
        return np.stack([self.env.get_wrapper_attr("action_masks")()])

    @property
    def prefetch(self) -> Callable[[list[list[int]]], None]:
        """The env's ``prefetch`` (an AttributeError where it has none, so ``getattr(..., None)`` finds none)."""
        return self.env.get_wrapper_attr("prefetch")

    def render(self) -> tuple[Any, ...]:
        return (self.env.render(),)
