"""What a search writes while it runs: every step to ``episodes.csv``, the agent's metrics to ``progress.csv`` and
TensorBoard. Rows are flushed one by one, so an interrupted run loses nothing it had written."""

from __future__ import annotations

import csv
import math
from typing import Any, TextIO

import gymnasium as gym
import numpy as np

from nasgym.core.errors import ConfigError
from nasgym.core.files import atomic_path, translate_disk_full
from nasgym.core.vector_env import HOLD, copy_info
from nasgym.runners.envs import network_name
from nasgym.runners.run_folder import EPISODE_COLUMNS, RESUME_ADVICE, RunFolder, truncate_csv

REWARD_COLUMNS = ("accuracy", "from_cache", "train_seconds", "parameters", "failure")
"""Left empty on steps without a reward."""


class _Log:
    """The rows of one search's ``episodes.csv``, written by one environment or by the copies of a vector env.

    An episode gets its number at its first step, so copies whose episodes interleave still number them in the order
    they began. ``resume_step`` first drops the rows after it; the episodes those rows leave unfinished, per copy,
    are in ``unfinished`` (a vector env puts them back; a single env starts a new episode, as its agent does).
    """

    def __init__(self, folder: RunFolder, resume_step: int, num_envs: int):
        self.folder, self.resume_step = folder, resume_step
        self.step_count, self.next_episode, self.best_reward = 0, 0, -math.inf
        self.current: list[list[int] | None] = [None] * num_envs
        """Per copy: [episode, steps so far] of its running episode; None: its next step starts one."""
        self.unfinished: list[list[int]] = [[] for _ in range(num_envs)]
        self._rewarded: set[str] = set()
        self._last_best: dict[int, float] = {}
        self._handle: TextIO | None = None
        self._writer: csv.DictWriter | None = None

    @property
    def opened(self) -> bool:
        return self._writer is not None

    def open(self) -> None:
        path = self.folder.episodes_file
        with translate_disk_full(path, RESUME_ADVICE):
            if self.resume_step:
                truncate_csv(path, self.resume_step)
            kept = self.folder.episodes() if self.resume_step else []
            self._rewarded = {row.network for row in kept if row.rewarded}
            if kept:
                self.step_count = kept[-1].step
                self.next_episode = max(row.episode for row in kept) + 1
                self.best_reward = max(row.reward for row in kept)
                self._add_missing_columns(path)
                last = {row.env: row for row in kept}
                for copy, row in last.items():
                    if not row.terminated and copy < len(self.current):
                        self.current[copy] = [row.episode, row.episode_step]
                        # the episode's own actions, which every space's unfinished network is (a partial network
                        # of Zoph & Le's space has no text to parse)
                        self.unfinished[copy] = [r.action for r in kept if r.env == copy and r.episode == row.episode]
            self._handle = handle = open(path, "a" if kept else "w", newline="")  # noqa: SIM115 (open while wrapped)
            self._writer = writer = csv.DictWriter(handle, EPISODE_COLUMNS)
            if not kept:
                writer.writeheader()
                handle.flush()

    @staticmethod
    def _add_missing_columns(path) -> None:
        """A log written before a column existed (``env``) gets it, so appended rows line up with the header."""
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
            header = list(rows[0]) if rows else []
        if header and header != list(EPISODE_COLUMNS):
            with atomic_path(path, RESUME_ADVICE) as temporary, open(temporary, "w", newline="") as handle:
                writer = csv.DictWriter(handle, EPISODE_COLUMNS, restval="0")
                writer.writeheader()
                writer.writerows(rows)

    def end_episodes(self) -> None:
        """Every copy's next step starts a new episode (the environment was reset)."""
        self.current = [None] * len(self.current)

    def row(self, copy: int, action: int, reward: float, terminated: bool, info: dict[str, Any]) -> dict[str, Any]:
        current = self.current[copy]
        if current is None:
            current = self.current[copy] = [self.next_episode, 0]
            self.next_episode += 1
        current[1] += 1
        episode, episode_step = current
        if terminated:
            self.current[copy] = None
        self.step_count += 1
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
            episode=episode,
            env=copy,
            episode_step=episode_step,
            action=int(action),
            reward=reward,
            terminated=terminated,
            best_reward=self.best_reward,
            trained=trained,
        )
        return row

    def best_at(self, step: int) -> float:
        """The best reward as of row ``step`` of the last write (the latest best for any other step)."""
        return self._last_best.get(step, self.best_reward)

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._last_best = {row["step"]: row["best_reward"] for row in rows}
        if self._writer is None or self._handle is None:
            raise RuntimeError("the episode log is written to before it was opened (at the first reset)")
        with translate_disk_full(self.folder.episodes_file, RESUME_ADVICE):
            self._writer.writerows(rows)
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()


class EpisodeLogger(gym.Wrapper):
    """Appends one row per step to the folder's ``episodes.csv``; ``resume_step`` first drops rows after it.

    The file is opened at the first reset, so a search that fails before it acts leaves no log behind. A resumed
    search starts a new episode.
    """

    def __init__(self, env: gym.Env, folder: RunFolder, resume_step: int = 0):
        super().__init__(env)
        self.folder = folder
        self.log = _Log(folder, resume_step, num_envs=1)

    step_count = property(lambda self: self.log.step_count)
    best_reward = property(lambda self: self.log.best_reward)
    best_at = property(lambda self: self.log.best_at)

    def reset(self, **kwargs: Any):
        if not self.log.opened:
            self.log.open()
        self.log.end_episodes()
        return self.env.reset(**kwargs)

    def step(self, action: int):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.log.write([self.log.row(0, action, float(reward), terminated, info)])
        return observation, reward, terminated, truncated, info

    def close(self) -> None:
        self.log.close()
        super().close()


class VectorEpisodeLogger(gym.vector.VectorWrapper):
    """``EpisodeLogger`` for a vector env of NAS-v0 copies (``AutoresetMode.SAME_STEP``): one row per copy that
    stepped (``HOLD`` writes none), in copy order, with the copy in the ``env`` column.

    A resumed search continues the episodes the kept rows leave unfinished: the first reset puts them back in their
    copies (``NASVectorEnv.reset(options={"episodes": ...})``), as the agent's checkpoint, taken at the same step,
    expects.
    """

    def __init__(self, env: gym.vector.VectorEnv, folder: RunFolder, resume_step: int = 0):
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode")
        if mode != gym.vector.AutoresetMode.SAME_STEP:
            raise ConfigError(f"a search logs vector envs in AutoresetMode.SAME_STEP, this one resets in {mode}")
        self.folder = folder
        self.log = _Log(folder, resume_step, num_envs=env.num_envs)
        self._restore = False

    step_count = property(lambda self: self.log.step_count)
    best_reward = property(lambda self: self.log.best_reward)
    best_at = property(lambda self: self.log.best_at)

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None):
        if not self.log.opened:
            self.log.open()
            self._restore = any(self.log.unfinished)
        if self._restore:  # the first reset of a resumed search: continue the unfinished episodes
            self._restore = False
            options = {**(options or {}), "episodes": self.log.unfinished}
        else:
            self.log.end_episodes()
        return self.env.reset(seed=seed, options=options)

    def step(self, actions: Any):
        observations, rewards, terminated, truncated, infos = self.env.step(actions)
        rows = [
            self.log.row(copy, int(action), float(rewards[copy]), bool(terminated[copy]), copy_info(infos, copy))
            for copy, action in enumerate(np.asarray(actions).reshape(-1))
            if int(action) != HOLD
        ]
        self.log.write(rows)
        return observations, rewards, terminated, truncated, infos

    def close(self, **kwargs: Any) -> None:
        self.log.close()
        super().close(**kwargs)


class ProgressLog:
    """progress.csv and TensorBoard: agent metrics per update, reward and best reward per step."""

    def __init__(self, folder: RunFolder, resume_step: int):
        from torch.utils.tensorboard import SummaryWriter  # imported late: TensorBoard is slow to import

        self.path = folder.progress_file
        with translate_disk_full(self.path, RESUME_ADVICE):
            self.rows: list[dict[str, Any]] = truncate_csv(self.path, resume_step) if resume_step else []
            """progress.csv's rows: the kept ones read back (text), then each update's metrics (numbers)."""
            if not self.rows:  # an agent without updates (random search) still leaves the file
                self.path.write_text("step\n")
        self.fieldnames = list(self.rows[0]) if self.rows else ["step"]
        # flush_secs bounds how long close() may wait: Ctrl-C or SIGTERM landing inside the writer's queue.put can
        # lose the wake-up of its thread, which then sleeps until its next flush (PyTorch's default: 120 s).
        self.tensorboard = SummaryWriter(str(folder.tensorboard_dir), purge_step=resume_step + 1, flush_secs=5)

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
