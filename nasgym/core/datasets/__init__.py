"""Datasets by name: ``get_dataset("digits")``, and the registry that loaders add themselves to."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from nasgym.core.datasets.base import (
    DEFAULT_RESIZE,
    RESIZES,
    Dataset,
    ImageData,
    check_image_size,
    check_max_samples,
    fingerprint_arrays,
    resize_images,
    subsample,
)
from nasgym.core.datasets.digits import DigitsDataset
from nasgym.core.datasets.folder import FOLDER_PREFIX, FolderDataset
from nasgym.core.datasets.meta_dataset import MetaDataset
from nasgym.core.datasets.specs import spec_names
from nasgym.core.errors import ConfigError, DatasetError

__all__ = [
    "Dataset",
    "ImageData",
    "dataset_names",
    "fingerprint_arrays",
    "get_dataset",
    "load_dataset",
    "register_dataset",
    "resize_images",
    "subsample",
]

DatasetFactory = Callable[..., Dataset]
_REGISTRY: dict[str, DatasetFactory] = {}


def register_dataset(name: str, factory: DatasetFactory) -> None:
    """Make ``name`` usable in ``gym.make("NAS-v0", dataset=name)``; ``factory(data_dir=...)`` builds it."""
    _REGISTRY[name] = factory


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


def get_dataset(name: str | os.PathLike[str], data_dir: str | Path | None = None) -> Dataset:
    """The dataset called ``name``, or the folder ``folder:/path`` or a ``Path`` (one subfolder per class)."""
    if isinstance(name, os.PathLike):
        return FolderDataset(name, data_dir=data_dir)
    if not isinstance(name, str):
        raise ConfigError(
            f"dataset must be a name ({', '.join(dataset_names())}) or a folder of images, "
            f"'{FOLDER_PREFIX}/path/to/images' or a pathlib.Path; got {name!r} of type {type(name).__name__}"
        )
    if name.startswith(FOLDER_PREFIX):
        return FolderDataset(name[len(FOLDER_PREFIX) :], data_dir=data_dir)
    if name not in _REGISTRY:
        raise DatasetError(
            f"unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}, "
            f"or {FOLDER_PREFIX}/path/to/images (one subfolder per class)"
        )
    return _REGISTRY[name](data_dir=data_dir)


def load_dataset(
    name: str | os.PathLike[str],
    image_size: int,
    max_samples: int | None = None,
    data_dir: str | Path | None = None,
    resize: str = DEFAULT_RESIZE,
) -> ImageData:
    """Load ``name`` at ``image_size`` resized as ``resize`` says, optionally cut to a fixed subset of ``max_samples``
    images.

    Settings that cannot work (an image size whose arrays would not fit in memory, a ``max_samples``
    below 2) are a ConfigError before anything is decoded.
    """
    check_max_samples(max_samples)
    if resize not in RESIZES:
        raise ConfigError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")
    dataset = get_dataset(name, data_dir)
    image_size = check_image_size(image_size, dataset.n_images, dataset.name)
    return subsample(dataset.load(image_size, resize=resize), max_samples)


register_dataset("digits", lambda data_dir=None: DigitsDataset())
for _name in spec_names():
    register_dataset(_name, partial(MetaDataset, _name))
