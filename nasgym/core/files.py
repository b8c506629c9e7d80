"""Writing files so that a kill or a full disk never leaves one half written.

``atomic_path(path)`` yields a temporary path beside ``path`` to write; on success it replaces ``path`` in one
rename, on any failure it is removed and ``path`` keeps its old content. A full disk becomes a ``DiskFullError``
that says how much space is left and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from nasgym.core.errors import NasGymError


class DiskFullError(NasGymError, OSError):
    """No space left where nasgym writes; what was written before is intact."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()  # the message alone, without OSError's "[Errno 28]"


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that holds ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def disk_full_error(path: Path, advice: str = "free space and rerun") -> DiskFullError:
    return DiskFullError(
        errno.ENOSPC, f"no space left on the device of {path} ({free_bytes(path):,} bytes free); {advice}"
    )


@contextlib.contextmanager
def translate_disk_full(path: Path, advice: str = "free space and rerun") -> Iterator[None]:
    """Turn an ENOSPC (or EDQUOT) raised inside the block into a ``DiskFullError`` about ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full_error(path, advice) from error
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, advice: str = "free space and rerun") -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; published by one rename when the block succeeds."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with translate_disk_full(path, advice):
            yield temporary
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str, advice: str = "free space and rerun") -> None:
    with atomic_path(path, advice) as temporary:
        temporary.write_text(text, encoding="utf-8")
