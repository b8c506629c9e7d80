"""DQN's replay buffer: plain NumPy arrays with one row per vector step (a column per env copy), sampled with its own
generator so that a resumed search draws the same batches, allocated once NasGym's size (half of a trial's first
``learn`` call) is known, and saved as tensors and numbers (never a pickled object).

The arrays and their layout are stable-baselines3's ``ReplayBuffer``'s, so checkpoints written while DQN ran on SB3
still load.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import psutil
import torch
from gymnasium import spaces

from nasgym.core.errors import ConfigError

ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
"""The storage, each ``(rows, n_envs, ...)``: a transition per copy and vector step."""


class ReplayBatch(NamedTuple):
    observations: torch.Tensor
    actions: torch.Tensor
    """``(batch, 1)`` int64, ready for ``gather``."""
    next_observations: torch.Tensor
    dones: torch.Tensor
    """``(batch, 1)`` float32: 1 where the episode terminated, so its next state is not bootstrapped."""
    rewards: torch.Tensor
    """``(batch, 1)`` float32."""


class ReplayBuffer:
    """A ring buffer of transitions from ``n_envs`` env copies; it has no storage until ``allocate``."""

    def __init__(self, observation_space: spaces.Space, n_envs: int = 1, seed: int = 0):
        self.obs_shape: tuple[int, ...] = tuple(observation_space.shape or ())
        self.obs_dtype, self.n_envs = np.dtype(observation_space.dtype), n_envs
        self.rng = np.random.default_rng(seed)
        self.buffer_size, self.pos, self.full = 0, 0, False
        """Rows of storage, the next row to write, whether every row holds a transition."""

    @property
    def allocated(self) -> bool:
        return self.buffer_size > 0

    def size(self) -> int:
        """Rows filled (each holds ``n_envs`` transitions)."""
        return self.buffer_size if self.full else self.pos

    def bytes_needed(self, capacity: int) -> int:
        """Memory that storage for ``capacity`` transitions takes."""
        observation = int(np.prod(self.obs_shape)) * self.obs_dtype.itemsize
        action = np.dtype(np.int64).itemsize
        flags = 3 * np.dtype(np.float32).itemsize  # reward, done, timeout
        return capacity * (2 * observation + action + flags)

    def allocate(self, capacity: int, origin: str) -> None:
        """Empty storage for ``capacity`` transitions; ``origin`` says where that number came from. Storage larger
        than the free memory is refused with advice rather than left to fail, or to swap, mid-search."""
        needed, free = self.bytes_needed(capacity), psutil.virtual_memory().available
        if needed > free:
            fits = max(free // 2 // self.bytes_needed(1), 1)
            raise ConfigError(
                f"dqn's replay buffer of {capacity:,} transitions ({origin}) would need {_gib(needed)} of memory and "
                f"{_gib(free)} is free; cap it with the hyperparameter buffer_size (--set buffer_size=N), "
                f"e.g. buffer_size={fits}"
            )
        rows, copies = max(capacity // self.n_envs, 1), self.n_envs
        self.observations = np.zeros((rows, copies, *self.obs_shape), dtype=self.obs_dtype)
        self.next_observations = np.zeros_like(self.observations)
        self.actions = np.zeros((rows, copies, 1), dtype=np.int64)
        self.rewards = np.zeros((rows, copies), dtype=np.float32)
        self.dones = np.zeros((rows, copies), dtype=np.float32)
        self.timeouts = np.zeros((rows, copies), dtype=np.float32)
        self.buffer_size, self.pos, self.full = rows, 0, False

    def release(self) -> None:
        """Drop the transitions and their storage."""
        for name in ARRAYS:
            self.__dict__.pop(name, None)
        self.buffer_size, self.pos, self.full = 0, 0, False

    def add(
        self,
        observations: np.ndarray,
        next_observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> None:
        """One vector step: a transition per copy. ``next_observations`` of an ended episode is its final one."""
        row = self.pos
        self.observations[row] = observations
        self.next_observations[row] = next_observations
        self.actions[row, :, 0] = actions
        self.rewards[row] = rewards
        self.dones[row] = np.logical_or(terminated, truncated)
        self.timeouts[row] = np.logical_and(truncated, np.logical_not(terminated))  # ended without terminating
        self.pos = (row + 1) % self.buffer_size
        self.full = self.full or self.pos == 0

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly, with replacement, from every copy's stored ones."""
        rows, copies = np.divmod(self.rng.integers(0, self.size() * self.n_envs, size=batch_size), self.n_envs)
        terminal = self.dones[rows, copies] * (1 - self.timeouts[rows, copies])
        return ReplayBatch(
            torch.as_tensor(self.observations[rows, copies]),
            torch.as_tensor(self.actions[rows, copies]),
            torch.as_tensor(self.next_observations[rows, copies]),
            torch.as_tensor(terminal).reshape(-1, 1),
            torch.as_tensor(self.rewards[rows, copies]).reshape(-1, 1),
        )

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions as tensors, the write position and the sampling generator."""
        filled = self.size()
        return {
            "capacity": self.buffer_size * self.n_envs,  # transitions: storage holds n_envs per row
            "pos": self.pos,
            "full": self.full,
            "rng": self.rng.bit_generator.state,
            "arrays": {name: torch.tensor(getattr(self, name)[:filled]) for name in ARRAYS} if self.allocated else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.release()
        arrays = {name: stored.numpy() for name, stored in state["arrays"].items()}
        pos, full = int(state["pos"]), bool(state["full"])
        if arrays and arrays["rewards"].shape[1] != self.n_envs:  # saved with another number of env copies
            arrays, pos, full = self._relaid(arrays, pos, full, int(state["capacity"]))
        if state["capacity"]:
            self.allocate(int(state["capacity"]), "the size stored in the checkpoint")
            for name in ARRAYS:
                getattr(self, name)[: len(arrays[name])] = arrays[name]
        self.pos, self.full = pos, full
        if not 0 <= self.pos <= self.buffer_size:
            raise ValueError(f"replay position {self.pos} outside a buffer of {self.buffer_size}")
        self.rng.bit_generator.state = state["rng"]

    def _relaid(
        self, arrays: dict[str, np.ndarray], pos: int, full: bool, capacity: int
    ) -> tuple[dict[str, np.ndarray], int, bool]:
        """Transitions stored ``k`` per row (``k`` env copies) as ``n_envs`` per row, oldest first; the newest that
        fill whole rows are kept."""
        rows = max(capacity // self.n_envs, 1)
        relaid = {}
        for name, stored in arrays.items():
            ordered = np.roll(stored, -pos, axis=0) if full else stored  # oldest row first
            transitions = ordered.reshape(-1, *stored.shape[2:])
            kept = min(len(transitions) // self.n_envs, rows) * self.n_envs
            relaid[name] = transitions[len(transitions) - kept :].reshape(-1, self.n_envs, *stored.shape[2:])
        filled = len(relaid["rewards"])
        return relaid, filled % rows, filled == rows


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"
