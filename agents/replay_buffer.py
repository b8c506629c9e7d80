"""DQN's replay buffer: SB3's, with its own sampling generator, storage allocated once its size is known, and a
state of plain arrays for checkpoints (never a pickled object)."""

from __future__ import annotations

from typing import Any

import numpy as np
import psutil
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from nasgym.core.errors import ConfigError

ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
"""SB3's storage, one row per transition."""


class SeededReplayBuffer(ReplayBuffer):
    """SB3's replay buffer, sampling with its own generator (saved with it) instead of NumPy's global one.

    SB3 builds the buffer with the model, before NasGym's capacity (half of a trial's first learn call) is
    known, so it starts without storage: ``allocate`` gives it one, ``release`` drops it for the next trial.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: torch.device | str = "cpu",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        seed: int = 0,
    ):
        if optimize_memory_usage:
            raise ValueError("SeededReplayBuffer stores next observations apart")
        BaseBuffer.__init__(self, 0, observation_space, action_space, device, n_envs)  # no storage yet: size 0
        self.rng = np.random.default_rng(seed)

    @property
    def allocated(self) -> bool:
        return self.buffer_size > 0

    def bytes_needed(self, capacity: int) -> int:
        """Memory that storage for ``capacity`` transitions takes (what ``ReplayBuffer`` allocates)."""
        observation = int(np.prod(self.obs_shape)) * np.dtype(self.observation_space.dtype).itemsize
        action = self.action_dim * np.dtype(self._maybe_cast_dtype(self.action_space.dtype)).itemsize
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
        self.release()
        ReplayBuffer.__init__(self, capacity, self.observation_space, self.action_space, self.device, self.n_envs)

    def release(self) -> None:
        """Drop the transitions and their storage."""
        for name in ARRAYS:
            self.__dict__.pop(name, None)
        self.buffer_size, self.pos, self.full = 0, 0, False

    def sample(self, batch_size: int, env: Any = None):
        upper_bound = self.buffer_size if self.full else self.pos
        rows = self.rng.integers(0, upper_bound, size=batch_size)
        if self.n_envs == 1:
            return self._get_samples(rows, env=env)
        copies = self.rng.integers(0, self.n_envs, size=batch_size)  # SB3 draws these from NumPy's global generator
        data = (
            self._normalize_obs(self.observations[rows, copies, :], env),
            self.actions[rows, copies, :],
            self._normalize_obs(self.next_observations[rows, copies, :], env),
            (self.dones[rows, copies] * (1 - self.timeouts[rows, copies])).reshape(-1, 1),
            self._normalize_reward(self.rewards[rows, copies].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions as tensors, the write position and the sampling generator."""
        filled = self.size() if self.allocated else 0
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
        rows = capacity // self.n_envs
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
