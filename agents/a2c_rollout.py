"""What meta-A2C carries between steps and updates: the LSTM memory, the state a step acts from, the rollout an
update learns from, n-step returns, and how each is read back from a checkpoint."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import torch

Memory = tuple[torch.Tensor, torch.Tensor]
"""The LSTM's (hidden, cell) state, each (1, hidden_size)."""


@dataclass(frozen=True)
class MetaA2CState:
    """What meta-A2C carries from one step to the next. After ``env.step`` record the reward with ``observe``."""

    memory: Memory = field(repr=False)
    previous_action: int = -1
    """-1 before the first action of a trial."""
    previous_reward: float = 0.0

    def observe(self, reward: float) -> MetaA2CState:
        return replace(self, previous_reward=float(reward))


@dataclass
class Rollout:
    """The steps since the last update: what the LSTM read and what happened."""

    start_memory: Memory | None = None
    end_memory: Memory | None = None
    """The memory after the last step; if the trial moved on without the rollout (``play``), it is closed."""
    inputs: list[torch.Tensor] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    masks: list[torch.Tensor] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    dones: list[bool] = field(default_factory=list)
    """The episode ended after this step."""
    cuts: list[bool] = field(default_factory=list)
    """Returns stop after this step and nothing bootstraps across it (an episode end, except under RL²; an episode
    abandoned unfinished)."""

    def add(self, inputs: torch.Tensor, action: int, mask: torch.Tensor, reward: float, done: bool, cut: bool) -> None:
        self.inputs.append(inputs)
        self.actions.append(action)
        self.masks.append(mask)
        self.rewards.append(reward)
        self.dones.append(done)
        self.cuts.append(cut)


def read_trial_state(stored: dict[str, Any]) -> MetaA2CState:
    """A ``MetaA2CState`` from its checkpointed form (``dataclasses.asdict``)."""
    stored = copy.deepcopy(stored)
    return MetaA2CState(**{**stored, "memory": _memory(stored["memory"])})


def read_rollout(stored: dict[str, Any]) -> Rollout:
    """A ``Rollout`` from its checkpointed form; one saved before ``cuts`` existed stopped its returns at ``dones``."""
    rollout = copy.deepcopy(stored)
    memories = {key: _memory(rollout[key]) for key in ("start_memory", "end_memory")}
    rollout.setdefault("cuts", list(rollout["dones"]))  # saved before cuts existed: returns stopped at dones
    return Rollout(**{**rollout, **memories})


def n_step_returns(rewards: list[float], cuts: list[bool], gamma: float, next_value: float) -> list[float]:
    """Discounted returns of a rollout, bootstrapped from ``next_value``; a return stops after a step that cuts."""
    returns, running = [], next_value
    for reward, cut in zip(reversed(rewards), reversed(cuts), strict=True):
        running = reward + gamma * running * (1.0 - cut)
        returns.append(running)
    return returns[::-1]


def _memory(stored: Any) -> Memory | None:
    """A memory as ``Memory``: a (hidden, cell) pair of (1, hidden_size) tensors."""
    if stored is None:
        return None
    hidden, cell = stored
    if not (isinstance(hidden, torch.Tensor) and isinstance(cell, torch.Tensor) and hidden.shape == cell.shape):
        raise ValueError("a memory that is not a pair of equal-shaped tensors")
    return hidden, cell
