"""A dataset's original files: found in the manual directory or downloaded, then checked by size and sha256."""

from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from nasgym.core.datasets.specs import ArchiveSpec, DatasetSpec
from nasgym.core.errors import DatasetError
from nasgym.core.paths import default_data_dir

_CHUNK = 1 << 20
_QUIET_BELOW = 64 << 20  # files smaller than this are hashed without a progress bar


@dataclass(frozen=True)
class VerifiedArchive:
    """An original file on disk and what was checked: ``verified`` is False where no digest is published."""

    spec: ArchiveSpec
    path: Path
    sha256: str
    verified: bool


def downloads_dir(data_dir: str | Path | None = None) -> Path:
    return (Path(data_dir).expanduser() if data_dir is not None else default_data_dir()) / "downloads"


def default_manual_dir(data_dir: str | Path | None = None) -> Path:
    """Where archives a user fetched by hand go when no ``--manual-dir`` is given (tfds's convention)."""
    return downloads_dir(data_dir) / "manual"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as file, tqdm(
        total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", disable=size < _QUIET_BELOW, leave=False
    ) as bar:  # fmt: skip
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify_archive(path: Path, archive: ArchiveSpec) -> VerifiedArchive:
    """Check ``path`` against the archive's known size and sha256; say which file and both values if not."""
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise DatasetError(
            f"size mismatch for {path}: expected {archive.size:,} bytes, got {size:,}; the file is incomplete or "
            f"another version: replace it with {archive.name} from {archive.url}"
        )
    digest = sha256_file(path)
    if archive.sha256 is not None and digest != archive.sha256:
        raise DatasetError(
            f"checksum mismatch for {path}: expected sha256 {archive.sha256}, got {digest}; the file is damaged "
            f"or another version: replace it with {archive.name} from {archive.url}"
        )
    if archive.sha256 is None:
        warnings.warn(
            f"{archive.name}: no trustworthy sha256 is known for this archive, so its content is not verified "
            f"(its sha256 is {digest}); the class and image counts are checked after preparation instead",
            stacklevel=2,
        )
    return VerifiedArchive(archive, path, digest, verified=archive.sha256 is not None)


def _describe(archive: ArchiveSpec) -> str:
    size = f"{archive.size:,} bytes, " if archive.size is not None else ""
    return f"{archive.name} ({size}from {archive.url})"


def _download(archive: ArchiveSpec, directory: Path) -> VerifiedArchive:
    """Download to a ``.part`` file, verify it, then rename: a cut download never looks like a whole archive."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / archive.name
    part = directory / f".{archive.name}.{uuid.uuid4().hex[:8]}.part"
    request = urllib.request.Request(archive.url, headers={"User-Agent": "nasgym"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response, open(part, "wb") as file:
            total = int(response.headers.get("Content-Length") or 0) or archive.size
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {archive.name}") as bar:
                while chunk := response.read(_CHUNK):
                    file.write(chunk)
                    bar.update(len(chunk))
        verified = verify_archive(part, archive)
        os.replace(part, target)
        return replace(verified, path=target)
    finally:
        part.unlink(missing_ok=True)


def fetch_archives(
    spec: DatasetSpec, data_dir: str | Path | None = None, manual_dir: str | Path | None = None, download: bool = True
) -> list[VerifiedArchive]:
    """Every original file of ``spec``, verified: from ``manual_dir``, earlier downloads, or the network."""
    manual = Path(manual_dir).expanduser() if manual_dir is not None else default_manual_dir(data_dir)
    places = [manual, default_manual_dir(data_dir), downloads_dir(data_dir)]
    found: dict[str, Path] = {}
    for archive in spec.archives:
        for place in places:
            if (place / archive.name).is_file():
                found[archive.name] = place / archive.name
                break
    missing = [archive for archive in spec.archives if archive.name not in found]
    downloaded: dict[str, VerifiedArchive] = {}
    reasons: list[str] = []
    if download:
        for archive in list(missing):
            try:
                downloaded[archive.name] = _download(archive, downloads_dir(data_dir))
                missing.remove(archive)
            except OSError as error:  # URLError, timeouts and HTTP errors are all OSErrors
                reasons.append(f"{archive.name}: {error}")
    if missing:
        files = ", ".join(_describe(archive) for archive in missing)
        command = f"`nasgym data prepare {spec.name}" + ("" if manual == places[1] else f" --manual-dir {manual}") + "`"
        if reasons:
            raise DatasetError(
                f"dataset {spec.name!r} is not prepared and downloading failed ({'; '.join(reasons)}): "
                f"put {files} into {manual}/ and run {command}"
            )
        raise DatasetError(
            f"dataset {spec.name!r} is not prepared and its files are not in {manual}/: put {files} there and "
            f"run {command}, or let `nasgym data prepare {spec.name}` download them"
        )
    return [downloaded.get(a.name) or verify_archive(found[a.name], a) for a in spec.archives]
