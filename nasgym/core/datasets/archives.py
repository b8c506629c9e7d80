"""A dataset's original files: found in the manual directory or downloaded, then checked by size and sha256.

Downloading and hashing go through pooch. Its ``retrieve`` is not used: with a digest it deletes a mismatched
download and reports it in its own words, without the file's size or path; without one it hashes the whole
file again only to log the digest. So pooch's downloader writes to a private name, and the size and sha256
are checked here before the file takes its real name: a cut download never looks like a whole archive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import pooch
from tqdm.auto import tqdm

from nasgym.core.datasets.specs import ArchiveSpec, DatasetSpec
from nasgym.core.datasets.storage import (
    disk_errors,
    ensure_free,
    remove_abandoned_staging,
    staging_path,
    writable_dir,
)
from nasgym.core.errors import DatasetError, warn
from nasgym.core.paths import default_data_dir
from nasgym.core.progress import bars_disabled

_CHUNK = 1 << 20
_TIMEOUT = 30  # seconds without data before a download is given up


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


def verify_archive(path: Path, archive: ArchiveSpec, downloaded: bool = False) -> VerifiedArchive:
    """Check ``path`` against the archive's known size and sha256; say which file and both values if not."""
    what = f"the download of {archive.url}" if downloaded else str(path)
    fix = (
        "it was not kept; try again later, or fetch the file by hand and pass --manual-dir"
        if downloaded
        else f"replace it with {archive.name} from {archive.url}"
    )
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise DatasetError(
            f"size mismatch for {what}: expected {archive.size:,} bytes, got {size:,}; the file is incomplete or "
            f"another version: {fix}"
        )
    digest = pooch.file_hash(str(path))
    if archive.sha256 is not None and digest != archive.sha256:
        raise DatasetError(
            f"checksum mismatch for {what}: expected sha256 {archive.sha256}, got {digest}; the file is damaged "
            f"or another version: {fix}"
        )
    if archive.sha256 is None:
        warn(
            f"{archive.name}: no trustworthy sha256 is known for this archive, so its content is not verified "
            f"(its sha256 is {digest}); the class and image counts are checked after preparation instead"
        )
    return VerifiedArchive(archive, path, digest, verified=archive.sha256 is not None)


def _where_to_get(archive: ArchiveSpec) -> str:
    size = f"{archive.size:,} bytes, " if archive.size is not None else ""
    return f"{archive.name} ({size}from {archive.url})"


def _download(archive: ArchiveSpec, directory: Path) -> VerifiedArchive:
    """Download to a private name, verify it, then rename: a cut or damaged download is never kept."""
    writable_dir(directory)
    remove_abandoned_staging(directory)
    if archive.size is not None:
        ensure_free(directory, archive.size)
    target = directory / archive.name
    part = staging_path(directory, archive.name)
    # pooch sets the bar's total from Content-Length, after testing the bar's truth, which tqdm ties to a total.
    bar = tqdm(
        total=archive.size or 1, unit="B", unit_scale=True, desc=f"download {archive.name}", disable=bars_disabled()
    )
    try:
        with disk_errors(directory), bar:
            downloader = pooch.HTTPDownloader(
                progressbar=bar, chunk_size=_CHUNK, timeout=_TIMEOUT, headers={"User-Agent": "nasgym"}
            )
            downloader(archive.url, str(part), None)
        verified = verify_archive(part, archive, downloaded=True)
        with disk_errors(directory):
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
            except OSError as error:  # requests' connection, timeout and HTTP errors are OSErrors
                reasons.append(f"{archive.name}: {error}")
    if missing:
        files = ", ".join(_where_to_get(archive) for archive in missing)
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
