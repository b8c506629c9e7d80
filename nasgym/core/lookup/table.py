"""A look-up table of NAS-v0's rewards: real trainings of a named set of networks, with their learning curves.

One file per table, JSON Lines, no pickle: the first line is the header (every setting the trainings ran with, the
dataset's fingerprint, the nasgym version and the plan of networks), each further line one training of one
network with one training seed::

    ["c3-m2", 0, [12, 40, ...], 57, [0.41, 0.80, ...], 0.02, 676520, 1234567, ""]

i.e. ``COLUMNS``: the network, the training seed, reward-split images classified correctly after each epoch, test
images correct after the last epoch, cumulative training seconds per epoch, seconds one scoring took, parameters,
multiply-accumulates per image and the failure (empty when training succeeded). Counts rather than fractions keep
the file small and exact; the header holds the split sizes. Lines are only ever appended, each flushed to disk, so a
build killed at any point leaves a file whose last line at worst is torn: ``TableFile`` drops it and the build
resumes.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import IO, Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one build per table file is then the user's care
    fcntl = None  # type: ignore[assignment]

from nasgym.core.errors import NasGymError
from nasgym.core.files import translate_disk_full
from nasgym.core.lookup.plan import TablePlan, of_depth
from nasgym.core.search_space import Architecture

TABLE_FORMAT = "nasgym-table"
TABLE_FORMAT_VERSION = 1
COLUMNS = (
    "network",
    "seed",
    "reward_correct",
    "test_correct",
    "seconds",
    "score_seconds",
    "parameters",
    "flops",
    "failure",
)


class TableError(NasGymError):
    """A look-up table file that cannot be used (damaged, foreign, from other settings), or a network it lacks."""


@dataclass(frozen=True)
class Entry:
    """One training of one network with one training seed, as the table records it."""

    network: str
    seed: int
    reward_correct: tuple[int, ...]
    test_correct: int
    seconds: tuple[float, ...]
    score_seconds: float
    parameters: int
    flops: int
    failure: str

    def row(self) -> list[Any]:
        return [
            self.network,
            self.seed,
            list(self.reward_correct),
            self.test_correct,
            [round(s, 3) for s in self.seconds],
            round(self.score_seconds, 4),
            self.parameters,
            self.flops,
            self.failure,
        ]

    @classmethod
    def from_row(cls, row: Any) -> Entry:
        if not isinstance(row, list) or len(row) != len(COLUMNS):
            raise ValueError(f"expected a list of {len(COLUMNS)} values ({', '.join(COLUMNS)})")
        network, seed, correct, test, seconds, score, parameters, flops, failure = row
        if not (isinstance(network, str) and isinstance(failure, str)):
            raise ValueError("network and failure must be strings")
        return cls(
            network,
            _int(seed),
            tuple(_int(c) for c in correct),
            _int(test),
            tuple(float(s) for s in seconds),
            float(score),
            _int(parameters),
            _int(flops),
            failure,
        )


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    return value


class TableFile:
    """A table file opened for reading, and for appending when ``writable`` (the builder)."""

    def __init__(self, path: str | os.PathLike, header: dict[str, Any] | None = None):
        """Open ``path``; with ``header`` a missing or empty file is created with it, and an existing one must
        have been built with the same header (apart from the nasgym version), else it is refused."""
        self.path = Path(path)
        self.entries: dict[tuple[str, int], Entry] = {}
        self._lock: IO[bytes] | None = None
        if header is not None:
            self._lock = _lock_for_writing(self.path)
        if header is not None and self.path.stat().st_size == 0:
            with translate_disk_full(self.path), open(self.path, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(header, sort_keys=True) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        self.header, torn_at = self._read()
        if header is not None:
            _check_same_build(self.path, self.header, header)
            if torn_at is not None:  # a killed build's half line: cut it so appends start on a fresh line
                with open(self.path, "r+b") as handle:
                    handle.truncate(torn_at)

    def _read(self) -> tuple[dict[str, Any], int | None]:
        """The header, with every entry read into ``self.entries``; and where a torn last line starts, if any."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise TableError(f"no look-up table at {self.path}; build one with 'nasgym table build'") from None
        lines = raw.split(b"\n")
        torn_at = None
        if lines and lines[-1]:  # no newline after the last line: a write the build did not finish
            torn_at = len(raw) - len(lines[-1])
        lines = lines[:-1]
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != TABLE_FORMAT:
            raise TableError(f"{self.path} is not a nasgym look-up table (no '{TABLE_FORMAT}' header line)")
        if header.get("format_version") != TABLE_FORMAT_VERSION:
            raise TableError(
                f"{self.path} is a version-{header.get('format_version')} table; this nasgym reads version "
                f"{TABLE_FORMAT_VERSION}: rebuild it with 'nasgym table build' or use a matching nasgym"
            )
        epochs = header["epochs"]
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = Entry.from_row(json.loads(line))
                if len(entry.reward_correct) > epochs or len(entry.seconds) != len(entry.reward_correct):
                    raise ValueError(f"a curve longer than the table's {epochs} epochs")
            except ValueError as error:
                raise TableError(
                    f"{self.path}, line {number} is damaged ({error}); delete that line and rebuild the rest with "
                    "'nasgym table build'"
                ) from None
            self.entries[(entry.network, entry.seed)] = entry
        return header, torn_at

    def append(self, entry: Entry) -> None:
        """Add one training, on disk before this returns (a kill afterwards keeps it)."""
        advice = "free space and rerun: the build resumes where it stopped"
        with translate_disk_full(self.path, advice), open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry.row(), separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.entries[(entry.network, entry.seed)] = entry


def _lock_for_writing(path: Path) -> IO[bytes]:
    """The table file opened and locked for this builder alone: two builds appending to one file would interleave
    lines and cut each other's torn ends. The lock goes with the process (a killed build leaves none behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with translate_disk_full(path):
        handle = open(path, "ab")  # noqa: SIM115  (held for the builder's life)
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise TableError(
                f"another 'nasgym table build' is writing {path}; wait for it to finish or stop it, then rerun"
            ) from None
    return handle


def _check_same_build(path: Path, found: dict[str, Any], wanted: dict[str, Any]) -> None:
    ignored = {"nasgym_version"}
    differ = sorted(k for k in (found.keys() | wanted.keys()) - ignored if found.get(k) != wanted.get(k))
    if differ:
        details = ", ".join(f"{k}: {found.get(k)!r} there, {wanted.get(k)!r} asked" for k in differ[:3])
        raise TableError(
            f"{path} was built with other settings ({details}); build into another file, or ask for the same settings"
        )


class Table:
    """A table read into arrays: what the environment's look-ups, the surrogate and the reports use."""

    def __init__(self, header: dict[str, Any], entries: Iterator[Entry] | list[Entry], source: str = ""):
        self.header = header
        self.source = source
        self.entries: dict[tuple[str, int], Entry] = {(e.network, e.seed): e for e in entries}
        self.seeds_of: dict[str, list[int]] = {}
        for network, seed in sorted(self.entries):
            self.seeds_of.setdefault(network, []).append(seed)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Table:
        table = TableFile(path)
        return cls(table.header, list(table.entries.values()), str(path))

    @classmethod
    def open(cls, name: str | os.PathLike) -> Table:
        """A table file, or the name of a dataset whose table ships with nasgym."""
        if Path(name).suffix or Path(name).exists():
            return cls.load(name)
        return shipped(str(name))

    # -- what the header says -----------------------------------------------------------------------------------
    @property
    def dataset(self) -> str:
        return self.header["dataset"]

    @property
    def epochs(self) -> int:
        return self.header["epochs"]

    @property
    def image_size(self) -> int:
        return self.header["image_size"]

    @property
    def reward_images(self) -> int:
        return self.header["reward_images"]

    @property
    def test_images(self) -> int:
        return self.header["test_images"]

    @property
    def seeds(self) -> list[int]:
        return sorted({seed for _, seed in self.entries})

    @property
    def networks(self) -> list[str]:
        return list(self.seeds_of)

    def complete_depth(self) -> int:
        """The largest depth up to which the table holds every valid network (a growing table's usable space)."""
        depth = 0
        while depth < self.header["max_layers"] and all(
            str(network) in self.seeds_of for network in of_depth(self.image_size, depth + 1)
        ):
            depth += 1
        return depth

    # -- answers ------------------------------------------------------------------------------------------------
    def entry(self, network: str, seed: int) -> Entry:
        try:
            return self.entries[(network, seed)]
        except KeyError:
            raise TableError(self.missing(network, seed)) from None

    def missing(self, network: str, seed: int | None = None) -> str:
        """The one-line message for a network (or a seed of it) the table does not hold, naming its coverage."""
        if network in self.seeds_of and seed is not None:
            return (
                f"the {self.dataset} table holds {network or '(empty)'} only for training seeds "
                f"{self.seeds_of[network]}, not {seed}"
            )
        plan = self.header.get("plan", {})
        return (
            f"the {self.dataset} look-up table ({self.source or 'shipped'}) has no training of "
            f"{network or 'the empty network'}: it holds {len(self.seeds_of):,} networks, every one of depth <= "
            f"{plan.get('depth', '?')} and a sample of deeper ones; use reward_source='surrogate' for any network, "
            "or 'trained' to train it"
        )

    def accuracy(self, entry: Entry, epochs: int, split: str = "reward") -> float:
        """The accuracy ``entry``'s training had after ``epochs`` (on the test split: after the last epoch only)."""
        if entry.failure and len(entry.reward_correct) < epochs:
            return 0.0
        if split == "test":
            return max(entry.test_correct, 0) / self.test_images
        return entry.reward_correct[epochs - 1] / self.reward_images

    def train_seconds(self, entry: Entry, epochs: int) -> float:
        """What a training of ``epochs`` took: the curve's training time to that epoch and one scoring."""
        if not entry.seconds:
            return 0.0
        return entry.seconds[min(epochs, len(entry.seconds)) - 1] + entry.score_seconds

    @cached_property
    def planned(self) -> list[tuple[str, int]]:
        """Every (network, seed) the table's build plan trains; a table that holds them all is complete."""
        plan = TablePlan(**{**self.header["plan"], "seeds": tuple(self.header["plan"]["seeds"])})
        return [(str(network), seed) for network, seed in plan.jobs(self.image_size, self.header["max_layers"])]

    @property
    def complete(self) -> bool:
        return all(job in self.entries for job in self.planned)

    @cached_property
    def final_rewards(self) -> dict[str, float]:
        """Each network's reward at the table's epochs, averaged over its recorded seeds."""
        return {
            network: float(np.mean([self.accuracy(self.entries[(network, s)], self.epochs) for s in seeds]))
            for network, seeds in self.seeds_of.items()
        }

    def seed_sd(self) -> float:
        """The standard deviation of a network's reward between training seeds, pooled over the networks recorded
        with more than one seed (NaN when none is)."""
        deviations = []
        for network, seeds in self.seeds_of.items():
            if len(seeds) > 1:
                values = [self.accuracy(self.entries[(network, s)], self.epochs) for s in seeds]
                deviations.append(np.var(values, ddof=1))
        return float(np.sqrt(np.mean(deviations))) if deviations else float("nan")


def complete_names() -> list[str]:
    """Datasets whose shipped table holds its whole plan: what an experiment uses by default (a table still being
    built would shrink the depth every dataset shares)."""
    return [name for name in shipped_names() if shipped(name).complete]


def shipped_names() -> list[str]:
    """Datasets whose tables ship inside the package (``envs_data/tables``)."""
    folder = resources.files("envs_data").joinpath("tables")
    return sorted(item.name.removesuffix(".jsonl") for item in folder.iterdir() if item.name.endswith(".jsonl"))


@functools.cache
def shipped(dataset: str) -> Table:
    """The table of ``dataset`` that ships with nasgym, read once per process."""
    if dataset not in shipped_names():
        raise TableError(
            f"no look-up table ships for dataset {dataset!r}; shipped: {', '.join(shipped_names()) or 'none'} "
            "(build one with 'nasgym table build' and pass table_path=)"
        )
    with resources.as_file(resources.files("envs_data").joinpath("tables").joinpath(f"{dataset}.jsonl")) as path:
        return Table.load(path)


def describe(table: Table) -> str:
    """A few lines on what ``table`` holds, as README's table of shipped tables reports it."""
    rewards = np.array(list(table.final_rewards.values())) if table.final_rewards else np.zeros(1)
    best = max(table.final_rewards, key=table.final_rewards.__getitem__) if table.final_rewards else "-"
    entries = list(table.entries.values())
    hours = sum(e.seconds[-1] + len(e.seconds) * e.score_seconds for e in entries if e.seconds) / 3600
    by_depth = np.bincount([len(Architecture.parse(n)) for n in table.networks])  # empty for no networks
    plan = table.header.get("plan", {})
    return "\n".join(
        [
            f"table {table.dataset} ({table.source or 'shipped'}): {table.header['image_size']} px, "
            f"{table.epochs} epochs, {table.reward_images} reward / {table.test_images} test images",
            f"  {len(table.networks):,} networks (per depth {list(map(int, by_depth))}; plan: every network up to "
            f"depth {plan.get('depth')}, {plan.get('deep_per_depth')} per deeper depth), {len(entries):,} trainings, "
            f"seeds {table.seeds}",
            f"  reward at {table.epochs} epochs: best {rewards.max():.4f} ({best or '(empty)'}), median "
            f"{np.median(rewards):.4f}; seed-to-seed sd {table.seed_sd():.4f}",
            f"  build time {hours:.2f} h of training (sum over trainings)",
            "  complete: every planned training is in it"
            if table.complete
            else f"  still being built: {sum(job in table.entries for job in table.planned):,} of "
            f"{len(table.planned):,} planned trainings (rerun 'nasgym table build' on it to go on)",
        ]
    )
