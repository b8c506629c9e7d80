"""A search's folder: what each file is called, how it is read back, how it is locked and written safely.

``run.json`` the settings, ``episodes.csv`` every step, ``progress.csv`` the agent's training metrics,
``tensorboard/`` the same as TensorBoard events, ``agent.pt`` the checkpoint, ``summary.json`` the best
architectures, ``search.png`` the rewards over the search, ``.lock`` held by the search that writes the folder,
``retrained.json``/``retrained.csv`` the best networks trained from scratch after a cheap search (``--retrain-top``).
Every other module reaches these files through ``RunFolder``.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import agents
from nasgym.core.errors import NasGymError
from nasgym.core.files import atomic_path, atomic_write_text
from nasgym.runners.envs import network_name

EPISODE_COLUMNS = (
    "step",
    "episode",
    "env",
    "episode_step",
    "action",
    "architecture",
    "reward",
    "terminated",
    "valid",
    "accuracy",
    "from_cache",
    "trained",
    "train_seconds",
    "parameters",
    "failure",
    "best_reward",
)
"""``env``: the environment copy the step was taken in (0..num_envs-1; episodes of several copies interleave, each
keeping its own ``episode`` number); ``trained``: this step's network was trained in this session, not answered by
the reward cache or a repeat (the first step that needs it is credited, even when an agent had the evaluator train a
batch ahead of time);
``best_reward``: the best reward so far. The reward columns are empty on steps without a reward."""
RESUME_ADVICE = "free space and continue with --resume"


@dataclass(frozen=True)
class EpisodeRow:
    """One row of ``episodes.csv``, typed. ``accuracy`` is None on steps without a reward."""

    step: int
    episode: int
    episode_step: int
    action: int
    architecture: str
    reward: float
    terminated: bool
    valid: bool
    accuracy: float | None
    from_cache: bool
    trained: bool
    train_seconds: float
    parameters: int | None
    failure: str
    best_reward: float
    env: int = 0
    """The environment copy (``nasgym search --num-envs``); 0 in logs written before copies existed."""

    @property
    def rewarded(self) -> bool:
        return self.accuracy is not None

    @property
    def network(self) -> str:
        """The computing layers: the reward belongs to them, with or without the terminal layer."""
        return network_name(self.architecture)

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> EpisodeRow:
        rewarded = row["accuracy"] not in ("", "None")
        return cls(
            step=int(row["step"]),
            episode=int(row["episode"]),
            episode_step=int(row["episode_step"]),
            action=int(row["action"]),
            architecture=row["architecture"],
            reward=float(row["reward"]),
            terminated=row["terminated"] == "True",
            valid=row["valid"] == "True",
            accuracy=float(row["accuracy"]) if rewarded else None,
            from_cache=row["from_cache"] == "True",
            trained=row["trained"] == "True",
            train_seconds=float(row["train_seconds"]) if rewarded else 0.0,
            parameters=int(row["parameters"]) if rewarded else None,
            failure=row["failure"] if row["failure"] != "None" else "",
            best_reward=float(row["best_reward"]),
            env=int(row.get("env") or 0),
        )


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file; none when it does not exist."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def truncate_csv(path: Path, last_step: int) -> list[dict[str, str]]:
    """Keep only rows whose ``step`` is at most ``last_step`` (rewritten atomically); return them."""
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        fieldnames = reader.fieldnames or []
        rows = [row for row in reader if int(row["step"]) <= last_step]
    with atomic_path(path, RESUME_ADVICE) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return rows


class RunFolder:
    """The files of one search, by name."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    run_file = property(lambda self: self.path / "run.json")
    episodes_file = property(lambda self: self.path / "episodes.csv")
    progress_file = property(lambda self: self.path / "progress.csv")
    checkpoint = property(lambda self: self.path / "agent.pt")
    summary_file = property(lambda self: self.path / "summary.json")
    plot_file = property(lambda self: self.path / "search.png")
    tensorboard_dir = property(lambda self: self.path / "tensorboard")
    lock_file = property(lambda self: self.path / ".lock")
    retrained_json = property(lambda self: self.path / "retrained.json")
    retrained_csv = property(lambda self: self.path / "retrained.csv")

    def __str__(self) -> str:
        return str(self.path)

    # -- reading --------------------------------------------------------------------------------------
    def holds_search(self) -> bool:
        return self.episodes_file.exists() or self.run_file.exists()

    def settings(self) -> dict[str, Any] | None:
        """What ``run.json`` says, or None when there is none."""
        if not self.run_file.exists():
            return None
        try:
            return json.loads(self.run_file.read_text())
        except ValueError as error:
            raise NasGymError(f"{self.run_file} is damaged ({error}); start a new search in another --out") from error

    def episodes(self) -> list[EpisodeRow]:
        return [EpisodeRow.from_csv(row) for row in read_csv(self.episodes_file)]

    def progress(self) -> list[dict[str, str]]:
        return read_csv(self.progress_file)

    def completed_steps(self) -> int:
        """Steps of the finished summary, -1 when the search never wrote one."""
        if not self.summary_file.exists():
            return -1
        return int(json.loads(self.summary_file.read_text())["steps"])

    def checkpoint_steps(self) -> int:
        """Steps of this search the checkpoint has seen (0 without a checkpoint). Not the agent's lifetime count:
        the agent may come from an earlier search, as in transfer experiments."""
        if not self.checkpoint.exists():
            return 0
        info = agents.checkpoint_info(self.checkpoint)  # read as tensors and plain data only: runs no code
        return int(info["metadata"].get("search_steps", info["num_timesteps"]))

    # -- writing --------------------------------------------------------------------------------------
    def write_settings(self, settings: dict[str, Any]) -> None:
        atomic_write_text(self.run_file, json.dumps(settings, indent=2), RESUME_ADVICE)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_text(self.summary_file, json.dumps(summary, indent=2), RESUME_ADVICE)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock while a search writes it. The OS releases it when the process ends, however it
        ends, so a crash never leaves the folder locked; a second search on the folder gets a clean error."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.lock_file, "a+")  # noqa: SIM115 (held open for the whole search)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise NasGymError(
                    f"{self.path} is in use by another search ({holder}); wait for it to finish, or choose "
                    "another --out"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            handle.flush()
            yield
        finally:
            handle.close()
