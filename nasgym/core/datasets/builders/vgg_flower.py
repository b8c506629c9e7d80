"""Oxford 102 Flowers from ``102flowers.tgz`` (``jpg/image_NNNNN.jpg``), ``imagelabels.mat`` and ``setid.mat``."""

from __future__ import annotations

import re

import numpy as np
import scipy.io
import tensorflow_datasets as tfds

from nasgym.core.datasets.builders.base import ArchiveBuilder, checked_image, iter_archive, scan_archive
from nasgym.core.datasets.specs import builder_version
from nasgym.core.errors import DatasetError

IMAGE = re.compile(r"^jpg/image_(\d{5})\.jpg$")
# setid.mat's 1-based image ids per split, as tfds's oxford_flowers102 reads them.
SPLIT_KEYS = {"train": "trnid", "validation": "valid", "test": "tstid"}


def _load_mat(path, key: str) -> np.ndarray:
    try:
        return np.asarray(scipy.io.loadmat(path)[key]).ravel().astype(np.int64)
    except (KeyError, ValueError, OSError) as error:
        raise DatasetError(f"cannot read {key!r} from {path}: {error}; replace the file with a good copy") from error


class VggFlower(ArchiveBuilder):
    """Oxford 102 Flowers: 102 flower species; labels from imagelabels.mat, splits from setid.mat."""

    name = "nasgym_vgg_flower"
    VERSION = tfds.core.Version(builder_version(name))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        labels = _load_mat(self.archive("imagelabels.mat"), "labels")  # class 1..102 of image i+1
        n_classes = int(labels.max())
        names = self.spec.class_names if self.spec and self.spec.class_names else None
        self.set_class_names(names or [f"class_{k:03d}" for k in range(1, n_classes + 1)])
        split_of = {}
        for split, key in SPLIT_KEYS.items():
            split_of.update(dict.fromkeys(_load_mat(self.archive("setid.mat"), key).tolist(), split))
        path = self.archive("102flowers.tgz")
        members, _ = scan_archive(path)
        ids = {int(match[1]) for member in members if (match := IMAGE.match(member))}
        if ids != set(range(1, len(labels) + 1)) or ids != split_of.keys():
            raise DatasetError(
                f"{path} holds {len(ids)} images, imagelabels.mat labels {len(labels)} and setid.mat lists "
                f"{len(split_of)}: the three files must come from the same release"
            )
        return {split: self._generate_examples(path, split, split_of, labels) for split in SPLIT_KEYS}

    def _generate_examples(self, path, split, split_of, labels):
        for member, file in iter_archive(path):
            match = IMAGE.match(member)
            if match and split_of[image_id := int(match[1])] == split:
                image = checked_image(file.read(), f"{path}:{member}")
                yield member, {"image": image, "label": int(labels[image_id - 1]) - 1, "file_name": member}
