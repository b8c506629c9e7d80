"""The Meta-Dataset image sets by name: prepared tfds data, read once through ``tfds.data_source``, then cached.

The first load of a size reads every split with ``tfds.data_source`` (NumPy out, random access, no
TensorFlow), crops where the dataset says so (aircraft), resizes, and writes the memory-mapped cache
``<prepared folder>/nasgym_cache/<size>px``. Later loads open that cache and touch neither tfds nor the
images, which is why the second and later environments start in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasgym.core.datasets.base import DEFAULT_RESIZE, Dataset, ImageData
from nasgym.core.datasets.image_cache import cache_dir, parallel_batches, read_cache, resize_each, write_cache
from nasgym.core.datasets.prepare import data_root, is_prepared, prepare
from nasgym.core.datasets.specs import get_spec
from nasgym.core.errors import DatasetError

CACHE_FOLDER = "nasgym_cache"
BATCH = 256


def crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """``image[top:bottom, left:right]`` with the box clamped to the image (a box never empties it)."""
    height, width = image.shape[:2]
    top, left = min(max(int(box[0]), 0), height - 1), min(max(int(box[1]), 0), width - 1)
    bottom, right = max(min(int(box[2]), height), top + 1), max(min(int(box[3]), width), left + 1)
    return image[top:bottom, left:right]


class MetaDataset(Dataset):
    """One of the Meta-Dataset sets of ``envs_data/datasets.json`` (e.g. ``"dtd"``), prepared under ``data_dir``.

    Not prepared yet: it is prepared from archives already in the manual directory; if they are not
    there, the error says which files to put where (nothing is downloaded outside ``nasgym data prepare``).
    """

    def __init__(self, name: str, data_dir: str | Path | None = None):
        self.spec = get_spec(name)
        self.name = name
        self.n_classes = self.spec.classes
        self.n_images = self.spec.images
        self.data_dir = data_root(data_dir)

    def cache_root(self) -> Path:
        return self.spec.prepared_dir(self.data_dir) / CACHE_FOLDER

    def load(self, image_size: int, resize: str = DEFAULT_RESIZE) -> ImageData:
        directory = cache_dir(self.cache_root(), image_size, resize)
        if (data := read_cache(directory, self.name, self.spec.tfds_name)) is not None:
            return data
        if not is_prepared(self.spec, self.data_dir):
            prepare(self.spec, self.data_dir, download=False)
        return self._build_cache(directory, image_size, resize)

    def _build_cache(self, directory: Path, image_size: int, resize: str) -> ImageData:
        import tensorflow_datasets as tfds

        import nasgym.core.datasets.builders  # noqa: F401 (registers our builders, which tfds.data_source reads with)

        sources = tfds.data_source(self.spec.tfds_name, data_dir=self.data_dir, download=False)
        sources = [sources[split] for split in sorted(sources)]  # a fixed order: the fingerprint depends on it
        n_classes = sources[0].dataset_info.features["label"].num_classes
        jobs = [
            (source, range(start, min(start + BATCH, len(source))))
            for source in sources
            for start in range(0, len(source), BATCH)
        ]

        def decode(job: tuple) -> tuple[np.ndarray, np.ndarray]:
            source, indices = job
            records = source.__getitems__(list(indices))
            images = []
            for record in records:
                image = record["image"]
                images.append(crop(image, record["crop"]) if "crop" in record else image)
            return resize_each(images, image_size, resize), np.array([r["label"] for r in records], dtype=np.int64)

        total = sum(len(source) for source in sources)
        if total == 0:
            raise DatasetError(f"the prepared {self.name} in {self.spec.prepared_dir(self.data_dir)} has no images")
        batches = parallel_batches(jobs, decode, total, desc=f"{self.name} -> {image_size}px cache")
        return write_cache(directory, self.name, self.spec.tfds_name, image_size, total, n_classes, batches)
