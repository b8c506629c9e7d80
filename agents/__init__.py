"""Agents that search ``NAS-v0``: ``agents.make(name, env, **hyperparameters)`` and ``agents.load(path, env)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from agents.base import Agent, StepCallback
from agents.random_search import RandomSearch

__all__ = ["AGENTS", "Agent", "StepCallback", "agent_names", "load", "make"]

AGENTS: dict[str, type[Agent]] = {RandomSearch.name: RandomSearch}


def agent_names() -> list[str]:
    return sorted(AGENTS)


def make(name: str, env: gym.Env, **hyperparameters: Any) -> Agent:
    """A new agent; unknown names and unknown hyperparameters raise errors that list the known ones."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(agent_names())}")
    return AGENTS[name](env, **hyperparameters)


def load(path: str | Path, env: gym.Env) -> Agent:
    """An agent saved with ``agent.save(path)``, attached to ``env``."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("agent") not in AGENTS:
        raise ValueError(f"{path} is not a saved nasgym agent")
    return AGENTS[payload["agent"]].from_payload(payload, env)
