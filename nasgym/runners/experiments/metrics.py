"""Numbers that describe a search run, read back from the files it wrote (episodes.csv, progress.csv).

Every figure in a benchmark report is computed here from those files, so a report can always be checked
against the CSV it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from nasgym.core.errors import NasGymError
from nasgym.core.search_space import ACTION_TOKENS, N_ACTIONS
from nasgym.runners.run_folder import RunFolder

WINDOW_EPISODES = 50
"""NasGym's window: its spread within a run is over windows of 50 consecutive episodes."""
RUN_METRICS = (
    "best_reward",
    "mean_reward_last10",
    "window_sd",
    "invalid_episodes",
    "episode_length",
    "entropy",
    "unique_networks",
    "cache_hit_rate",
    "train_seconds",
)
METRIC_DIGITS = {"episode_length": 2, "unique_networks": 1, "train_seconds": 1, "invalid_episodes": 2}
"""Decimals shown in reports (3 where not listed)."""
METRIC_LABELS = {
    "best_reward": "best reward",
    "mean_reward_last10": "mean reward, last 10% of steps",
    "window_sd": f"within-run sd of episode reward ({WINDOW_EPISODES}-episode windows)",
    "invalid_episodes": "share of episodes ended by an invalid layer",
    "episode_length": "mean episode length (layers)",
    "entropy": "policy entropy (nats), last 10% of updates",
    "unique_networks": "unique networks evaluated",
    "cache_hit_rate": "evaluations answered without training",
    "train_seconds": "training seconds spent",
}


@dataclass
class RunData:
    """The columns of one search run that the metrics and plots use, as arrays."""

    steps: np.ndarray
    rewards: np.ndarray
    actions: np.ndarray
    episode_lengths: np.ndarray
    episode_valid: np.ndarray
    """Per finished episode: whether its last layer was valid (False: an invalid layer ended it with reward 0)."""
    episode_rewards: np.ndarray
    """Per finished episode: the sum of its steps' rewards."""
    evaluated: list[tuple[str, bool]]  # (network, trained now) for every rewarded step
    train_seconds: float
    entropy_steps: np.ndarray
    entropy: np.ndarray

    @classmethod
    def load(cls, run_dir: str | Path) -> RunData:
        folder = RunFolder(run_dir)
        rows = folder.episodes()
        if not rows:
            raise NasGymError(f"{folder.episodes_file} is missing or empty; run the search (again) first")
        progress = [row for row in folder.progress() if row.get("entropy") not in (None, "")]
        return cls(
            steps=np.array([row.step for row in rows]),
            rewards=np.array([row.reward for row in rows]),
            actions=np.array([row.action for row in rows]),
            episode_lengths=np.array([row.episode_step for row in rows if row.terminated], dtype=float),
            episode_valid=np.array([row.valid for row in rows if row.terminated], dtype=bool),
            episode_rewards=_episode_sums(rows),
            evaluated=[(row.network, row.trained) for row in rows if row.rewarded],
            train_seconds=math.fsum(row.train_seconds for row in rows if row.trained),
            entropy_steps=np.array([int(row["step"]) for row in progress]),
            entropy=np.array([float(row["entropy"]) for row in progress]),
        )

    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate(self.rewards)

    def action_proportions(self) -> np.ndarray:
        return np.bincount(self.actions, minlength=N_ACTIONS) / max(len(self.actions), 1)

    def window_sd(self, window: int = WINDOW_EPISODES) -> float:
        """The sd of the episode rewards within each full window of ``window`` consecutive episodes, averaged over
        the windows (a run's own spread, as NasGym reported it); NaN for a run shorter than one window."""
        full = len(self.episode_rewards) // window
        if full == 0:
            return math.nan
        windows = self.episode_rewards[: full * window].reshape(full, window)
        return float(windows.std(axis=1, ddof=1).mean())

    def metrics(self) -> dict[str, float]:
        tail = max(1, math.ceil(0.1 * len(self.rewards)))
        entropy_tail = max(1, math.ceil(0.1 * len(self.entropy)))
        finished = len(self.episode_valid)
        return {
            "best_reward": float(self.rewards.max()),
            "mean_reward_last10": float(self.rewards[-tail:].mean()),
            "window_sd": self.window_sd(),
            "invalid_episodes": float((~self.episode_valid).sum() / finished) if finished else math.nan,
            "episode_length": float(self.episode_lengths.mean()) if len(self.episode_lengths) else math.nan,
            "entropy": float(self.entropy[-entropy_tail:].mean()) if len(self.entropy) else math.nan,
            "unique_networks": float(len({network for network, _ in self.evaluated})),
            "cache_hit_rate": (
                sum(not trained for _, trained in self.evaluated) / len(self.evaluated) if self.evaluated else math.nan
            ),
            "train_seconds": self.train_seconds,
            **{f"action_{token}": float(p) for token, p in zip(ACTION_TOKENS, self.action_proportions(), strict=True)},
        }


def _episode_sums(rows: list) -> np.ndarray:
    """The summed reward of every finished episode, in order."""
    sums, running = [], 0.0
    for row in rows:
        running += row.reward
        if row.terminated:
            sums.append(running)
            running = 0.0
    return np.array(sums, dtype=float)


def mean_and_interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval (NaN for fewer than two finite values)."""
    finite = np.array([v for v in values if not math.isnan(v)], dtype=float)
    if len(finite) == 0:
        return math.nan, math.nan
    if len(finite) < 2:
        return float(finite.mean()), math.nan
    half = stats.t.ppf(0.975, len(finite) - 1) * finite.std(ddof=1) / math.sqrt(len(finite))
    return float(finite.mean()), float(half)
