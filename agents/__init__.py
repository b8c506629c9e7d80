"""Agents that search ``NAS-v0``: ``agents.make(name, env, **hyperparameters)`` and ``agents.load(path, env)``.

Every agent has ``learn(total_steps, callback=None)``, ``play(total_steps, callback=None, deterministic=False)``
(act without learning), ``predict(observation, state=None, deterministic=False)`` and ``save(path)``; its
hyperparameters are one dataclass, ``type(agent).Config``, with the papers' values as defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from agents import checkpoint
from agents.base import Agent, StepCallback
from agents.dqn import DQNAgent
from agents.local_search import LocalSearch
from agents.meta_a2c import MetaA2C
from agents.random_search import RandomSearch
from agents.regularized_evolution import RegularizedEvolution
from agents.reinforce import Reinforce
from nasgym.core.errors import CheckpointError, ConfigError

__all__ = ["AGENTS", "Agent", "StepCallback", "agent_names", "checkpoint_info", "load", "make", "make_config"]

AGENTS: dict[str, type[Agent]] = {
    agent.name: agent for agent in (Reinforce, DQNAgent, MetaA2C, RandomSearch, RegularizedEvolution, LocalSearch)
}


def agent_names() -> list[str]:
    return sorted(AGENTS)


def _agent_class(name: str) -> type[Agent]:
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; known agents: {', '.join(agent_names())}")
    return AGENTS[name]


def make_config(name: str, **hyperparameters: Any) -> Any:
    """The hyperparameter dataclass of agent ``name``; unknown names raise errors that list the known ones."""
    return _agent_class(name).make_config(**hyperparameters)


def make(name: str, env: gym.Env | gym.vector.VectorEnv, **hyperparameters: Any) -> Agent:
    """A new agent; unknown names and unknown hyperparameters raise errors that list the known ones."""
    return _agent_class(name)(env, **hyperparameters)


def load(path: str | Path, env: gym.Env | gym.vector.VectorEnv, agent: str | None = None, **overrides: Any) -> Agent:
    """An agent saved with ``agent.save(path)``, attached to ``env`` (which may use another dataset).

    The file is read with ``torch.load(weights_only=True)``: it holds tensors and plain data, and loading it runs
    no code from it. ``agent`` names the agent expected; a checkpoint of another one is refused before anything
    is built. Recurrent memory is kept, so a reloaded search resumes exactly; call ``agent.reset_trial()`` to
    start a new trial instead. ``overrides`` replace saved hyperparameters that leave the weights' shapes alone
    (e.g. ``memory="episode"`` to run a trained meta-A2C policy without memory across episodes).
    """
    payload = _read(path, agent)
    if overrides:
        name = payload["agent"]
        AGENTS[name].make_config(**overrides)  # bad names and values fail here, in one line
        payload = {**payload, "config": {**payload["config"], **overrides}}
    return AGENTS[payload["agent"]].from_payload(payload, env, path)


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """What a checkpoint says about itself without building its agent: ``agent`` (its name), ``num_timesteps``
    (steps it learned from, over its whole life) and the ``metadata`` its saver added."""
    payload = _read(path)
    return {key: payload[key] for key in ("agent", "num_timesteps", "metadata")}


def _read(path: str | Path, expected: str | None = None) -> dict[str, Any]:
    if expected is not None:
        _agent_class(expected)
    payload = checkpoint.read(path)
    name = payload["agent"]
    if name not in AGENTS:
        raise CheckpointError(
            f"{path} is not a nasgym agent checkpoint (it names an unknown agent {name!r}); {checkpoint.ADVICE}"
        )
    if expected is not None and name != expected:
        raise CheckpointError(f"{path} holds a {name} agent, not {expected}; give a {expected} checkpoint")
    return payload
