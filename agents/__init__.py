"""Agents that search ``NAS-v0``: ``agents.make(name, env, **hyperparameters)`` and ``agents.load(path, env)``.

Every agent has ``learn(total_steps, callback=None)``, ``play(total_steps, callback=None, deterministic=False)``
(act without learning), ``predict(observation, state=None, deterministic=False)`` and ``save(path)``; its
hyperparameters are one dataclass, ``type(agent).Config``, with the papers' values as defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from agents.base import Agent, StepCallback
from agents.dqn import DQNAgent
from agents.meta_a2c import MetaA2C
from agents.random_search import RandomSearch
from agents.reinforce import Reinforce

__all__ = ["AGENTS", "Agent", "StepCallback", "agent_names", "load", "make", "make_config"]

AGENTS: dict[str, type[Agent]] = {agent.name: agent for agent in (Reinforce, DQNAgent, MetaA2C, RandomSearch)}


def agent_names() -> list[str]:
    return sorted(AGENTS)


def _agent_class(name: str) -> type[Agent]:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(agent_names())}")
    return AGENTS[name]


def make_config(name: str, **hyperparameters: Any) -> Any:
    """The hyperparameter dataclass of agent ``name``; unknown names raise errors that list the known ones."""
    return _agent_class(name).make_config(**hyperparameters)


def make(name: str, env: gym.Env, **hyperparameters: Any) -> Agent:
    """A new agent; unknown names and unknown hyperparameters raise errors that list the known ones."""
    return _agent_class(name)(env, **hyperparameters)


def load(path: str | Path, env: gym.Env) -> Agent:
    """An agent saved with ``agent.save(path)``, attached to ``env`` (which may use another dataset).

    Recurrent memory is kept, so a reloaded search resumes exactly; call ``agent.reset_trial()`` to start a
    new trial instead.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved agent at {path}")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("agent") not in AGENTS:
        raise ValueError(f"{path} is not a saved nasgym agent")
    return AGENTS[payload["agent"]].from_payload(payload, env)
