"""Writing under the data directory: folders nasgym may write, free space, and private staging folders.

Whatever nasgym writes there (prepared datasets, image caches, downloads) is first written under a private
name ``.incomplete-LABEL-PID-XXXXXXXX`` beside its place and renamed into place only when whole. A kill
leaves that name behind; the next writer in the same folder removes it once process PID no longer runs.
A full disk or a folder nasgym may not write is a one-line DatasetError that names the path.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from nasgym.core.errors import DatasetError

STAGING_PREFIX = ".incomplete-"
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_REFUSED = {errno.EACCES, errno.EPERM}
_REASONS = {errno.EROFS: "read-only file system", errno.EACCES: "permission denied", errno.EPERM: "not permitted"}
_ELSEWHERE = "or set NASGYM_HOME (or data_dir= / --data-dir) to a folder"


def folder_path(path: Path) -> Path:
    """``path``, where it exists, a folder, and where it does not, a place a folder can be made: a file in its way
    (the path itself or one above it) is a DatasetError."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise DatasetError(
            f"{existing} is a file, so nasgym cannot keep data in {path}; move the file away, {_ELSEWHERE}"
        )
    return path


def writable_dir(path: Path) -> Path:
    """``path``, created if needed; a file in its way or a folder nasgym may not write is a DatasetError."""
    folder_path(path)
    with disk_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
        raise _not_writable(path, _REASONS[errno.EROFS if _read_only(path) else errno.EACCES])
    return path


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(_nearest_existing(path)).free


def no_space(path: Path, amounts: str) -> DatasetError:
    return DatasetError(
        f"no space left on the device of {path} ({amounts}); free space there and run again, "
        f"{_ELSEWHERE} on a disk with room"
    )


def ensure_free(path: Path, needed: int) -> None:
    """Refuse before writing ``needed`` bytes under ``path`` where they cannot fit."""
    if (free := free_bytes(path)) < needed:
        raise no_space(path, f"{needed:,} bytes needed, {free:,} bytes free")


@contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """Turn a full disk, or a write refused under ``path``, into a one-line DatasetError naming ``path``.

    A full disk is reported with the space that was free when the block began, which did not suffice.
    """
    free = free_bytes(path)
    try:
        yield
    except OSError as error:
        if error.errno in _FULL:
            raise no_space(path, f"{free:,} bytes free, more needed") from error
        if error.errno == errno.EROFS or (error.errno in _REFUSED and _inside(error.filename, path)):
            raise _not_writable(path, _REASONS[error.errno]) from error  # EROFS, EACCES or EPERM: all named
        raise
    except RuntimeError as error:  # tensorflow-datasets' writers report a failed write() this way
        if os.strerror(errno.ENOSPC) in str(error):
            raise no_space(path, f"{free:,} bytes free, more needed") from error
        raise


def staging_path(parent: Path, label: str) -> Path:
    """A private name in ``parent`` for something being written by this process (not created here)."""
    return parent / f"{STAGING_PREFIX}{label}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def new_staging_dir(parent: Path, label: str) -> Path:
    path = staging_path(parent, label)
    path.mkdir()
    return path


def remove_abandoned_staging(parent: Path) -> list[Path]:
    """Delete what killed writers left in ``parent`` under staging names (their process no longer runs)."""
    removed = []
    for path in sorted(parent.glob(f"{STAGING_PREFIX}*")):
        try:
            pid = int(path.name[len(STAGING_PREFIX) :].rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if psutil.pid_exists(pid):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _nearest_existing(path: Path) -> Path:
    return next(place for place in (path, *path.parents) if place.exists())


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs on Windows
        return False


def _inside(filename: str | bytes | None, path: Path) -> bool:
    if not isinstance(filename, str):
        return False
    return Path(filename).resolve().is_relative_to(path.resolve())


def _not_writable(path: Path, reason: str) -> DatasetError:
    return DatasetError(f"cannot write to {path} ({reason}); make it writable, {_ELSEWHERE} you can write")
