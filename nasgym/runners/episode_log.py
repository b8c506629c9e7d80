"""What a search writes while it runs: every step to ``episodes.csv``, the agent's metrics to ``progress.csv`` and
TensorBoard. Rows are flushed one by one, so an interrupted run loses nothing it had written."""

from __future__ import annotations

import csv
import math
from typing import Any

import gymnasium as gym

from nasgym.core.files import atomic_path, translate_disk_full
from nasgym.runners.envs import network_name
from nasgym.runners.run_folder import EPISODE_COLUMNS, RESUME_ADVICE, RunFolder, truncate_csv

REWARD_COLUMNS = ("accuracy", "from_cache", "train_seconds", "parameters", "failure")
"""Left empty on steps without a reward."""


class EpisodeLogger(gym.Wrapper):
    """Appends one row per step to the folder's ``episodes.csv``; ``resume_step`` first drops rows after it.

    The file is opened at the first reset, so a search that fails before it acts leaves no log behind.
    """

    def __init__(self, env: gym.Env, folder: RunFolder, resume_step: int = 0):
        super().__init__(env)
        self.folder = folder
        self.resume_step = resume_step
        self.step_count, self.episode, self.episode_step, self.best_reward = 0, 0, 0, -math.inf
        self._rewarded: set[str] = set()
        self._handle = None
        self._writer: csv.DictWriter | None = None
        self._started = False

    def _open(self) -> None:
        path = self.folder.episodes_file
        with translate_disk_full(path, RESUME_ADVICE):
            if self.resume_step:
                truncate_csv(path, self.resume_step)
            kept = self.folder.episodes() if self.resume_step else []
            self._rewarded = {row.network for row in kept if row.rewarded}
            if kept:
                self.step_count = kept[-1].step
                self.episode = kept[-1].episode + 1  # a resumed run starts a new episode
                self.best_reward = max(row.reward for row in kept)
            self._handle = open(path, "a" if kept else "w", newline="")  # noqa: SIM115 (open while wrapped)
            self._writer = csv.DictWriter(self._handle, EPISODE_COLUMNS)
            if not kept:
                self._writer.writeheader()
                self._handle.flush()

    def reset(self, **kwargs: Any):
        if self._writer is None:
            self._open()
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
        if info["rewarded"]:  # first sight of a network not answered by the cache: trained in this session
            network = network_name(info["architecture"])
            trained = not info["from_cache"] and network not in self._rewarded
            self._rewarded.add(network)
        row = {key: info[key] for key in EPISODE_COLUMNS if key in info}
        if not info["rewarded"]:
            row.update(dict.fromkeys(REWARD_COLUMNS, ""))
        row.update(
            step=self.step_count,
            episode=self.episode,
            episode_step=self.episode_step,
            action=int(action),
            reward=reward,
            terminated=terminated,
            best_reward=self.best_reward,
            trained=trained,
        )
        with translate_disk_full(self.folder.episodes_file, RESUME_ADVICE):
            self._writer.writerow(row)
            self._handle.flush()
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        super().close()


class ProgressLog:
    """progress.csv and TensorBoard: agent metrics per update, reward and best reward per step."""

    def __init__(self, folder: RunFolder, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter  # imported late: TensorBoard is slow to import

        self.path = folder.progress_file
        with translate_disk_full(self.path, RESUME_ADVICE):
            self.rows = truncate_csv(self.path, resume_step) if resume_step else []
            if not self.rows:  # an agent without updates (random search) still leaves the file
                self.path.write_text("step\n")
        self.fieldnames = list(self.rows[0]) if self.rows else ["step"]
        self.tensorboard = SummaryWriter(str(folder.tensorboard_dir), purge_step=resume_step + 1)

    def update(self, metrics: dict[str, float]) -> None:
        self.rows.append(metrics)
        new_columns = [name for name in metrics if name not in self.fieldnames]
        self.fieldnames += new_columns
        if new_columns:  # a metric appeared (e.g. the first loss): rewrite the file with the wider header
            with atomic_path(self.path, RESUME_ADVICE) as temporary, open(temporary, "w", newline="") as handle:
                writer = csv.DictWriter(handle, self.fieldnames)
                writer.writeheader()
                writer.writerows(self.rows)
        else:
            with translate_disk_full(self.path, RESUME_ADVICE), open(self.path, "a", newline="") as handle:
                csv.DictWriter(handle, self.fieldnames).writerow(metrics)
        for name, value in metrics.items():
            if name != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                self.tensorboard.add_scalar(f"agent/{name}", value, metrics["step"])

    def step(self, step: int, reward: float, best: float) -> None:
        self.tensorboard.add_scalar("search/reward", reward, step)
        self.tensorboard.add_scalar("search/best_reward", best, step)

    def close(self) -> None:
        self.tensorboard.close()
