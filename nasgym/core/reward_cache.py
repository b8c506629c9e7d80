"""A persistent reward cache in SQLite, shared by runs and by processes writing at once.

Identical architectures are never trained twice. The key covers everything that changes a reward
(dataset fingerprint, split, training settings, seed, NSC, reward-code version), so a changed setting
can never return a stale reward.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from nasgym.core.errors import RewardCacheError
from nasgym.core.evaluation import Evaluation

CACHE_FORMAT = "nasgym-reward-cache"
CACHE_FORMAT_VERSION = 1
# Bump when the network builder or the trainer changes what a reward means; old entries then miss.
REWARD_CODE_VERSION = 2  # 2: every training draws from its own generators

_SQLITE_HEADER = b"SQLite format 3\x00"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rewards (
    key TEXT PRIMARY KEY,
    architecture TEXT NOT NULL,
    dataset TEXT NOT NULL,
    accuracy REAL NOT NULL,
    train_seconds REAL NOT NULL,
    parameters INTEGER NOT NULL,
    failure TEXT,
    settings TEXT NOT NULL,
    created REAL NOT NULL
);
"""
T = TypeVar("T")


def reward_key(dataset_fingerprint: str, nsc: list[list[int]], settings: dict) -> str:
    """sha256 over the dataset fingerprint, the NSC, every training setting and the code version."""
    payload = {
        "dataset": dataset_fingerprint,
        "nsc": nsc,
        "settings": settings,
        "reward_code_version": REWARD_CODE_VERSION,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class RewardCache:
    """SQLite in WAL mode; each process opens its own connection; busy writers wait and retry.

    A cache file (or folder) this process may not write is opened read-only, with a warning: its rewards are
    still answered, new ones are not stored. The object pickles and forks without its connection (a new one is
    opened where it is next used).
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0):
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        self._check_file_kind()
        self.read_only = not self._writable()
        if self.read_only:
            warnings.warn(
                f"the reward cache {self.path} is read-only here: its rewards are used, new ones will not be "
                "stored (choose a writable cache path to keep them)",
                stacklevel=2,
            )
        self._retry(self._initialise)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_connection": None, "_pid": -1}

    # -- opening ----------------------------------------------------------------------------------
    def _check_file_kind(self) -> None:
        if self.path.is_dir():
            raise RewardCacheError(f"reward cache path {self.path} is a directory; give a file path")
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as handle:
                if handle.read(16) != _SQLITE_HEADER:
                    raise RewardCacheError(
                        f"{self.path} is not a nasgym reward cache (not an SQLite file); "
                        "move it away or choose another cache path"
                    )

    def _writable(self) -> bool:
        """Whether rewards can be stored: the folder can hold SQLite's journal files and the file can be written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            if not self.path.exists():
                raise RewardCacheError(
                    f"cannot create the reward cache {self.path} ({error.strerror or error}); "
                    "choose another cache path, or turn the cache off"
                ) from error
        folder_ok = os.access(self.path.parent, os.W_OK | os.X_OK)
        if self.path.exists():
            return folder_ok and os.access(self.path, os.W_OK)
        if not folder_ok:
            raise RewardCacheError(
                f"cannot create the reward cache {self.path}: {self.path.parent} is not writable; "
                "choose another cache path, or turn the cache off"
            )
        return True

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # never share a connection across fork
            if self.read_only:  # immutable: SQLite creates no journal files beside it
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro&immutable=1"
                self._connection = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None)
            else:
                self._connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
                self._connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._pid = os.getpid()
        return self._connection

    def _initialise(self) -> None:
        db = self._connect()
        try:
            if not self.read_only:
                db.execute("PRAGMA journal_mode = WAL")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            if _is_busy(error):
                raise
            raise RewardCacheError(f"{self.path} is not a usable reward cache ({error}); move it away") from error
        if tables and not {"meta", "rewards"} <= tables:
            raise RewardCacheError(
                f"{self.path} is an SQLite database of something else (tables: {', '.join(sorted(tables))}); "
                "choose another cache path"
            )
        if not self.read_only:
            self._create_schema(db)
        meta = dict(db.execute("SELECT name, value FROM meta")) if "meta" in tables or not self.read_only else {}
        if meta.get("format") != CACHE_FORMAT:
            raise RewardCacheError(f"{self.path} is not a nasgym reward cache; choose another cache path")
        if meta.get("format_version") != str(CACHE_FORMAT_VERSION):
            raise RewardCacheError(
                f"{self.path} has reward-cache format {meta.get('format_version')}, this nasgym reads "
                f"{CACHE_FORMAT_VERSION}; use a matching nasgym or another cache path"
            )

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (CACHE_FORMAT,))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format_version', ?)", (str(CACHE_FORMAT_VERSION),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _retry(self, operation: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() > deadline:
                    raise RewardCacheError(f"reward cache {self.path}: {error}") from error
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
            except sqlite3.DatabaseError as error:
                raise RewardCacheError(f"reward cache {self.path} is corrupt ({error}); move it away") from error

    # -- use --------------------------------------------------------------------------------------
    def get(self, key: str) -> Evaluation | None:
        """The stored reward (``from_cache=True``), or None."""
        row = self._retry(
            lambda: (
                self._connect()
                .execute(
                    "SELECT architecture, accuracy, train_seconds, parameters, failure FROM rewards WHERE key = ?",
                    (key,),
                )
                .fetchone()
            )
        )
        if row is None:
            return None
        architecture, accuracy, train_seconds, parameters, failure = row
        return Evaluation(architecture, accuracy, train_seconds, parameters, failure or "", from_cache=True)

    def put(self, key: str, evaluation: Evaluation, dataset: str, settings: dict) -> None:
        """Store a reward; when another process stored the same key first, its row is kept. A read-only cache
        stores nothing."""
        if self.read_only:
            return
        values = (
            key,
            evaluation.architecture,
            dataset,
            evaluation.accuracy,
            evaluation.train_seconds,
            evaluation.parameters,
            evaluation.failure or None,
            json.dumps(settings, sort_keys=True),
            time.time(),
        )
        self._retry(
            lambda: self._connect().execute("INSERT OR IGNORE INTO rewards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        )

    def __len__(self) -> int:
        return self._retry(lambda: self._connect().execute("SELECT COUNT(*) FROM rewards").fetchone()[0])

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None


def _is_busy(error: sqlite3.Error) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message
