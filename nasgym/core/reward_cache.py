"""A persistent reward cache in SQLite, shared by runs and by processes writing at once.

Identical architectures are never trained twice. The key covers everything that changes a reward
(dataset fingerprint, split, training settings, seed, NSC, reward-code version), so a changed setting
can never return a stale reward. A process about to train a network first claims its key (a lease row that
expires unless renewed while the training runs), so other processes on the same file wait for that reward
instead of training it too; the claim of a process that died expires and another takes the work over.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard, TypeVar

from nasgym.core.errors import RewardCacheError, warn
from nasgym.core.evaluation import Evaluation

CACHE_FORMAT = "nasgym-reward-cache"
CACHE_FORMAT_VERSION = 2
"""2: rewards record where and how they were trained (``node``, ``execution``), and the ``claims`` table exists.
A writable version-1 file is upgraded in place, its rewards kept (nasgym versions that read 1 then refuse it,
saying so); a read-only one is read as it is."""
CLAIM_SECONDS = 60.0
"""How long a claim lasts unless renewed; the claimant renews it every third of this while it trains, so only a
claimant that died (or stalled this long) loses its claim, and others wait at most this long to take it over."""
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
    created REAL NOT NULL,
    node TEXT,
    execution TEXT
);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
"""
_V1_UPGRADE = (
    "ALTER TABLE rewards ADD COLUMN node TEXT",
    "ALTER TABLE rewards ADD COLUMN execution TEXT",
    "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)",
    "UPDATE meta SET value = '2' WHERE name = 'format_version'",
)
_REWARD_COLUMNS = "architecture, accuracy, train_seconds, parameters, failure"
T = TypeVar("T")


def reward_key(dataset_fingerprint: str, nsc: list[list[int]], settings: dict, space: str | None = None) -> str:
    """sha256 over the dataset fingerprint, the network's encoding, every training setting and the code version.

    ``space`` names a search space other than NAS-v0's chain (whose keys have no space, so caches written before a
    second space existed still answer); ``nsc`` is then that space's encoding of the network."""
    payload = {
        "dataset": dataset_fingerprint,
        "nsc": nsc,
        "settings": settings,
        "reward_code_version": REWARD_CODE_VERSION,
    }
    if space is not None:
        payload["space"] = space
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class _Claims:
    """This process's claims on one cache file, and the thread that renews them while they are held."""

    owner: str
    held: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    renewer: threading.Thread | None = None


class RewardCache:
    """SQLite in WAL mode; each process opens its own connection; busy writers wait and retry.

    A cache file (or folder) this process may not write is opened read-only, with a warning: its rewards are
    still answered, new ones are not stored, and nothing is claimed. The object pickles and forks without its
    connections or its claims (a new connection is opened where it is next used).
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 60.0, claim_seconds: float = CLAIM_SECONDS):
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self.claim_seconds = claim_seconds
        self._connections: dict[int, sqlite3.Connection] = {}  # one per thread of this process
        self._pid = -1
        self._claims: _Claims | None = None
        self._claims_pid = -1
        self._check_file_kind()
        self.read_only = not self._writable()
        if self.read_only:
            warn(
                f"the reward cache {self.path} is read-only here: its rewards are used, new ones will not be "
                "stored (choose a writable cache path to keep them)"
            )
        self.format_version = CACHE_FORMAT_VERSION
        self._retry(self._initialise)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_connections": {}, "_pid": -1, "_claims": None, "_claims_pid": -1}

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

    def _open(self) -> sqlite3.Connection:
        if self.read_only:  # immutable: SQLite creates no journal files beside it
            uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro&immutable=1"
            return sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        return connection

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection: threads never share one (their transactions would mix), nor do processes
        (a connection must not cross a fork)."""
        if self._pid != os.getpid():
            self._connections, self._pid = {}, os.getpid()
        thread = threading.get_ident()
        if thread not in self._connections:
            self._connections[thread] = self._open()
        return self._connections[thread]

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
            self._transaction(db, self._create_schema)
        meta = dict(db.execute("SELECT name, value FROM meta")) if "meta" in tables or not self.read_only else {}
        if meta.get("format") != CACHE_FORMAT:
            raise RewardCacheError(f"{self.path} is not a nasgym reward cache; choose another cache path")
        version = meta.get("format_version")
        if version == "1" and not self.read_only:
            self._transaction(db, self._upgrade_v1)
        elif version == "1":
            self.format_version = 1  # read as it is: no provenance columns, no claims
        elif version != str(CACHE_FORMAT_VERSION):
            raise RewardCacheError(
                f"{self.path} has reward-cache format {version}, this nasgym reads 1 and "
                f"{CACHE_FORMAT_VERSION}; use a matching nasgym or another cache path"
            )

    @staticmethod
    def _transaction(db: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body`` inside BEGIN IMMEDIATE (the write lock taken up front, so readers never have to upgrade)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body(db)
            db.execute("COMMIT")
            return result
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _create_schema(db: sqlite3.Connection) -> None:
        for statement in _SCHEMA.strip().split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (CACHE_FORMAT,))
        db.execute("INSERT OR IGNORE INTO meta VALUES ('format_version', ?)", (str(CACHE_FORMAT_VERSION),))

    @staticmethod
    def _upgrade_v1(db: sqlite3.Connection) -> None:
        if db.execute("SELECT value FROM meta WHERE name = 'format_version'").fetchone()[0] != "1":
            return  # another process upgraded it first
        for statement in _V1_UPGRADE:
            db.execute(statement)

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

    # -- rewards ----------------------------------------------------------------------------------
    @property
    def _columns(self) -> str:
        return _REWARD_COLUMNS + (", node, execution" if self.format_version >= 2 else "")

    def _evaluation(self, key: str, row: tuple) -> Evaluation:
        """The stored row as an Evaluation; a row nasgym cannot have written (text or inf where a number belongs:
        the file was edited) is a RewardCacheError that says how to remove it, never a reward."""
        architecture, accuracy, train_seconds, parameters, failure, *provenance = row
        if problem := _bad_numbers(accuracy, train_seconds, parameters):
            raise RewardCacheError(
                f"{self.path}: the stored reward of {str(architecture)[:40]!r} holds {problem}, which nasgym never "
                f"writes; delete it (sqlite3 {self.path} \"DELETE FROM rewards WHERE key = '{key}'\") or move "
                "the file away"
            )
        node, execution = [*provenance, None, None][:2]
        return Evaluation(
            architecture,
            accuracy,
            train_seconds,
            parameters,
            failure or "",
            from_cache=True,
            execution=execution or "",
            node=node or "",
        )

    def get(self, key: str) -> Evaluation | None:
        """The stored reward (``from_cache=True``), or None."""
        query = f"SELECT {self._columns} FROM rewards WHERE key = ?"
        row = self._retry(lambda: self._connect().execute(query, (key,)).fetchone())
        return None if row is None else self._evaluation(key, row)

    def put(self, key: str, evaluation: Evaluation, dataset: str, settings: dict) -> None:
        """Store a reward and drop this process's claim on it; when another process stored the same key first, its
        row is kept. A read-only cache stores nothing."""
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
            evaluation.node or None,
            evaluation.execution or None,
        )
        owner = self._claim_state().owner

        def store(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR IGNORE INTO rewards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

        self._retry(lambda: self._transaction(self._connect(), store))
        self._forget([key])

    def __len__(self) -> int:
        return self._retry(lambda: self._connect().execute("SELECT COUNT(*) FROM rewards").fetchone()[0])

    # -- claims -----------------------------------------------------------------------------------
    def claim(self, keys: Iterable[str]) -> tuple[set[str], dict[str, Evaluation]]:
        """Claim the keys that have no reward and no live claim of another process: ``(claimed, stored)``, where
        ``stored`` holds the rewards already there. A key in neither is being trained elsewhere: ask again later.

        Claims are renewed in the background until ``put`` or ``release``; a read-only cache claims every key
        without a reward (it cannot coordinate, and stores nothing)."""
        keys = list(dict.fromkeys(keys))
        if self.read_only:
            stored = {key: value for key in keys if (value := self.get(key)) is not None}
            return {key for key in keys if key not in stored}, stored
        state = self._claim_state()
        select = f"SELECT {self._columns} FROM rewards WHERE key = ?"

        def claim_all(db: sqlite3.Connection) -> tuple[set[str], dict[str, Evaluation]]:
            now, claimed, stored = time.time(), set(), {}
            for key in keys:
                if (row := db.execute(select, (key,)).fetchone()) is not None:
                    stored[key] = self._evaluation(key, row)
                    continue
                holder = db.execute("SELECT owner, expires FROM claims WHERE key = ?", (key,)).fetchone()
                if holder is None or holder[0] == state.owner or holder[1] <= now:
                    db.execute(
                        "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (key, state.owner, now + self.claim_seconds)
                    )
                    claimed.add(key)
            return claimed, stored

        claimed, stored = self._retry(lambda: self._transaction(self._connect(), claim_all))
        if claimed:
            with state.lock:
                state.held |= claimed
                if state.renewer is None:
                    state.renewer = threading.Thread(
                        target=self._renew, args=(state,), daemon=True, name="nasgym-claims"
                    )
                    state.renewer.start()
        return claimed, stored

    def release(self, keys: Iterable[str]) -> None:
        """Give up this process's claims on ``keys`` (a training that did not finish), so others may take them."""
        keys = list(keys)
        if self.read_only or not keys:
            return
        owner = self._claim_state().owner
        self._retry(
            lambda: self._connect().executemany(
                "DELETE FROM claims WHERE key = ? AND owner = ?", [(key, owner) for key in keys]
            )
        )
        self._forget(keys)

    def claims(self) -> dict[str, tuple[str, float]]:
        """Every claim in the file: key -> (owner 'host:pid:id', expiry as a Unix time), to see who trains what."""
        if self.format_version < 2:
            return {}
        rows = self._retry(lambda: self._connect().execute("SELECT key, owner, expires FROM claims").fetchall())
        return {key: (owner, expires) for key, owner, expires in rows}

    def _claim_state(self) -> _Claims:
        """This process's claims; a forked child starts with none (its parent's stay its parent's)."""
        if self._claims is None or self._claims_pid != os.getpid():
            self._claims = _Claims(f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
            self._claims_pid = os.getpid()
        return self._claims

    def _forget(self, keys: Iterable[str]) -> None:
        state = self._claim_state()
        with state.lock:
            state.held.difference_update(keys)

    def _renew(self, state: _Claims) -> None:
        """Extend the held claims every third of their lifetime; stop when none are held."""
        db = None
        try:
            while True:
                time.sleep(self.claim_seconds / 3)
                with state.lock:
                    if not state.held:
                        state.renewer = None
                        return
                    held = list(state.held)
                try:
                    db = db or self._open()
                    expires = time.time() + self.claim_seconds
                    db.executemany(
                        "UPDATE claims SET expires = ? WHERE key = ? AND owner = ?",
                        [(expires, key, state.owner) for key in held],
                    )
                except sqlite3.Error:  # busy or gone: the claims last two more rounds, try again next round
                    continue
        finally:
            if db is not None:
                db.close()

    def close(self) -> None:
        if self._pid == os.getpid():
            for connection in list(self._connections.values()):
                connection.close()
        self._connections = {}


def _bad_numbers(accuracy: object, train_seconds: object, parameters: object) -> str:
    """What in a stored row is not a reward's number ('' when all are): accuracy in [0, 1], finite seconds >= 0,
    a whole number of parameters (-1: none counted)."""

    def number(value: object) -> TypeGuard[int | float]:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    if not (number(accuracy) and 0 <= accuracy <= 1):  # NaN and inf fail too
        return f"accuracy {accuracy!r}"
    if not (number(train_seconds) and 0 <= train_seconds < math.inf):
        return f"train_seconds {train_seconds!r}"
    if not (isinstance(parameters, int) and parameters >= -1):
        return f"parameters {parameters!r}"
    return ""


def _is_busy(error: sqlite3.Error) -> bool:
    message = str(error).lower()
    return "locked" in message or "busy" in message
