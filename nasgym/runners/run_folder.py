"""A search's folder: what each file is called, how it is read back, how it is locked and written safely.

``run.json`` the settings, ``episodes.csv`` every step, ``progress.csv`` the agent's training metrics,
``tensorboard/`` the same as TensorBoard events, ``agent.pt`` the checkpoint, ``summary.json`` the best
architectures, ``search.png`` the rewards over the search, ``.lock`` held by the search that writes the folder,
``retrained.json``/``retrained.csv`` the best networks trained from scratch after a cheap search (``--retrain-top``).
Every other module reaches these files through ``RunFolder``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import fcntl
import io
import json
import math
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
        """The typed row; a cell that does not hold its column's kind of number is a ValueError naming it."""

        def number(name: str, kind: type = float) -> Any:
            try:
                value = kind(row[name])
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                what = "whole number" if kind is int else "finite number"
                raise ValueError(f"{name} {row[name][:20]!r} is not a {what}")
            return value

        rewarded = row["accuracy"] not in ("", "None")
        return cls(
            step=number("step", int),
            episode=number("episode", int),
            episode_step=number("episode_step", int),
            action=number("action", int),
            architecture=row["architecture"],
            reward=number("reward"),
            terminated=row["terminated"] == "True",
            valid=row["valid"] == "True",
            accuracy=number("accuracy") if rewarded else None,
            from_cache=row["from_cache"] == "True",
            trained=row["trained"] == "True",
            train_seconds=number("train_seconds") if rewarded else 0.0,
            parameters=number("parameters", int) if rewarded else None,
            failure=row["failure"] if row["failure"] != "None" else "",
            best_reward=number("best_reward"),
            env=number("env", int) if row.get("env") else 0,
        )


class DamagedLogError(NasGymError):
    """A search's CSV log that is neither what nasgym wrote nor what a crash while writing leaves."""


def _damaged(path: Path, line: int, what: str) -> DamagedLogError:
    advice = (
        "delete it to resume without the agent's earlier metrics"
        if path.name == "progress.csv"
        else "restore it from a copy, or start a new search in another --out"
    )
    return DamagedLogError(f"{path} line {line}: {what}; {advice}")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the ``(line, row)`` pairs of a log; none when it does not exist.

    The logs are append-only, so what a crash (or a full disk) in the middle of a write leaves is a last line without
    its line end: that torn row is dropped, as a log-structured file recovers. Any other damage is a
    ``DamagedLogError`` naming the file and the line. A UTF-8 byte-order mark (an editor's) is read past.
    """
    if not path.exists():
        return [], []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    not_text = "not text (random bytes?)"
    try:
        text = data[:cut].decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _damaged(path, data[: error.start].count(b"\n") + 1, not_text) from None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data[cut:])  # the torn row may end inside a character
    except UnicodeDecodeError:
        raise _damaged(path, data.count(b"\n") + 1, not_text) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        header = next(reader, [])
        if header and "step" not in header:
            raise _damaged(path, 1, f"not the header nasgym writes (no 'step' column: {','.join(header)[:60]!r})")
        for cells in reader:
            if cells and len(cells) != len(header):
                raise _damaged(path, reader.line_num, f"{len(cells)} cells where the header has {len(header)}")
            if cells:
                rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    except csv.Error as error:
        raise _damaged(path, reader.line_num, f"not CSV ({error})") from None
    return header, rows


def _step(path: Path, line: int, row: dict[str, str]) -> int:
    try:
        return int(row["step"])
    except ValueError:
        raise _damaged(path, line, f"step {row['step'][:20]!r} is not a whole number") from None


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a search's CSV log (a torn last row dropped); none when it does not exist."""
    return [row for _, row in _read_rows(path)[1]]


def truncate_csv(path: Path, last_step: int) -> list[dict[str, str]]:
    """Keep only rows whose ``step`` is at most ``last_step`` (rewritten atomically, which also drops a torn last
    row); return them."""
    if not path.exists():
        return []
    fieldnames, lines = _read_rows(path)
    rows = [row for line, row in lines if _step(path, line, row) <= last_step]
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
        """The rows of ``episodes.csv``, checked: every cell readable, steps counting 1, 2, 3, ... (a row repeated by
        an editor or a copy is refused: which copy is right is the user's call, nasgym never writes one twice)."""
        path = self.episodes_file
        header, lines = _read_rows(path)
        missing = [name for name in EPISODE_COLUMNS if name not in header and name != "env"]
        if lines and missing:
            raise _damaged(path, 1, f"the header lacks {', '.join(missing)}")
        rows: list[EpisodeRow] = []
        for line, cells in lines:
            try:
                row = EpisodeRow.from_csv(cells)
            except ValueError as error:
                raise _damaged(path, line, str(error)) from None
            if row.step != len(rows) + 1:
                raise _damaged(path, line, f"step {row.step} where step {len(rows) + 1} belongs")
            rows.append(row)
        return rows

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
