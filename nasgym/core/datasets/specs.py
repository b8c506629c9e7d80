"""What each Meta-Dataset image set is and where it comes from, read from ``envs_data/datasets.json``.

The specs are data, not code: source URLs, archive names, sizes, sha256 digests, class and image counts and
licence notes all live in the JSON file. This module only gives them types and says where a prepared copy
lives on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import envs_data
from nasgym.core.errors import DatasetError
from nasgym.core.paths import default_data_dir


@dataclass(frozen=True)
class ArchiveSpec:
    """One original file of a dataset; ``size``/``sha256`` are None where no trustworthy value is known."""

    name: str
    url: str
    size: int | None
    sha256: str | None
    note: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset that ``nasgym data prepare`` builds with one of our tensorflow-datasets builders."""

    name: str
    classes: int
    images: int
    builder: str
    config: str | None
    version: str
    archives: tuple[ArchiveSpec, ...]
    license: str
    homepage: str
    class_names: tuple[str, ...] | None = None

    @property
    def tfds_name(self) -> str:
        """The name ``tfds.data_source`` reads, e.g. ``nasgym_omniglot/small1:1.0.0``."""
        config = f"/{self.config}" if self.config else ""
        return f"{self.builder}{config}:{self.version}"

    def prepared_dir(self, data_dir: str | Path | None = None) -> Path:
        """Where the prepared tensorflow-datasets files live (tfds's own layout: builder/config/version)."""
        root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        return root.joinpath(self.builder, *([self.config] if self.config else []), self.version)

    def with_archives(self, changes: dict[str, dict[str, Any]]) -> DatasetSpec:
        """A copy with some archives' fields changed, ``{"a.zip": {"sha256": ...}}`` (for archives of your own)."""
        archives = tuple(replace(a, **changes[a.name]) if a.name in changes else a for a in self.archives)
        return replace(self, archives=archives)


_FIELDS = {"classes", "images", "builder", "config", "version", "license", "homepage"}


def _spec(name: str, entry: dict[str, Any]) -> DatasetSpec:
    archives = tuple(ArchiveSpec(**archive) for archive in entry["archives"])
    names = entry.get("class_names")
    return DatasetSpec(
        name=name,
        archives=archives,
        class_names=tuple(names) if names else None,
        **{key: entry[key] for key in _FIELDS},
    )


def spec_names() -> list[str]:
    """Names of the datasets that are prepared from original archives (``digits`` is built in)."""
    return sorted(name for name, entry in envs_data.load("datasets").items() if "builder" in entry)


def get_spec(name: str) -> DatasetSpec:
    entries = envs_data.load("datasets")
    if name not in entries or "builder" not in entries[name]:
        raise DatasetError(f"no dataset {name!r} to prepare; preparable datasets: {', '.join(spec_names())}")
    return _spec(name, entries[name])


def builder_version(builder: str) -> str:
    """The version of our tfds builder ``builder``; it is part of the prepared data's path."""
    versions = {entry["version"] for entry in envs_data.load("datasets").values() if entry.get("builder") == builder}
    if len(versions) != 1:
        raise ValueError(f"envs_data/datasets.json must give builder {builder!r} one version, found {versions}")
    return versions.pop()
