"""Record every step of a search in a CSV file, flushed per row so an interrupted run loses nothing."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import gymnasium as gym

from nasgym.core.evaluator import network_of
from nasgym.core.search_space import Architecture

EPISODE_COLUMNS = (
    "step", "episode", "episode_step", "action", "architecture", "reward", "terminated", "valid",
    "accuracy", "from_cache", "trained", "train_seconds", "parameters", "failure", "best_reward",
)  # fmt: skip
"""``trained``: this step's network was trained in this session, not answered by the reward cache or a repeat (the
first step that needs it is credited, even when an agent had the evaluator train a batch ahead of time);
``best_reward``: the best reward so far."""


def truncate_csv(path: Path, last_step: int) -> list[dict[str, str]]:
    """Keep only rows whose ``step`` is at most ``last_step`` (rewritten atomically); return them."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fieldnames = reader.fieldnames or []
        rows = [row for row in reader if int(row["step"]) <= last_step]
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)
    return rows


class EpisodeLogger(gym.Wrapper):
    """Appends one row per step to ``path``; with ``resume_step`` it first drops rows after that step."""

    def __init__(self, env: gym.Env, path: str | Path, resume_step: int | None = None):
        super().__init__(env)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.step_count, self.episode, self.episode_step, self.best_reward = 0, 0, 0, -math.inf
        kept = truncate_csv(self.path, resume_step) if resume_step is not None else []
        self._rewarded = {_network(row["architecture"]) for row in kept if row["accuracy"] not in ("", "None")}
        if kept:
            last = kept[-1]
            self.step_count = int(last["step"])
            self.episode = int(last["episode"]) + 1  # a resumed run starts a new episode
            self.best_reward = max(float(row["reward"]) for row in kept)
        new_file = not kept
        self._handle = open(self.path, "w" if new_file else "a", newline="")  # noqa: SIM115 (open while wrapped)
        self._writer = csv.DictWriter(self._handle, EPISODE_COLUMNS)
        if new_file:
            self._writer.writeheader()
            self._handle.flush()
        self._started = False

    def reset(self, **kwargs: Any):
        if self._started and self.episode_step > 0:
            self.episode += 1
        self._started = True
        self.episode_step = 0
        return self.env.reset(**kwargs)

    def step(self, action: int):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.step_count += 1
        self.episode_step += 1
        self.best_reward = max(self.best_reward, reward)
        trained = False
        if info.get("accuracy") is not None:  # rewarded: first sight of a network not from the cache = trained
            network = _network(info["architecture"])
            trained = not info.get("from_cache") and network not in self._rewarded
            self._rewarded.add(network)
        row = {key: info.get(key) for key in EPISODE_COLUMNS if key in info}
        row.update(
            step=self.step_count, episode=self.episode, episode_step=self.episode_step, action=int(action),
            reward=reward, terminated=terminated, best_reward=self.best_reward, trained=trained,
        )  # fmt: skip
        self._writer.writerow(row)
        self._handle.flush()
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        super().close()


def _network(architecture: str) -> str:
    return str(network_of(Architecture.parse(architecture)))
