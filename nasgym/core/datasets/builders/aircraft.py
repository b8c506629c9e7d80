"""FGVC-Aircraft 2013b from ``fgvc-aircraft-2013b.tar.gz``: variants from ``data/images_variant_*.txt``.

As in Meta-Dataset, each image is used cropped to the aircraft's bounding box (``data/images_box.txt``),
which also cuts off the photographer's banner at the bottom. The original JPEG is stored unchanged with
the box as a ``crop`` feature ``[top, left, bottom, right]`` (NumPy slice bounds); readers apply it.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from nasgym.core.datasets.builders.base import ArchiveBuilder, checked_image, iter_archive, scan_archive, text_lines
from nasgym.core.datasets.specs import builder_version
from nasgym.core.errors import DatasetError

DATA = "fgvc-aircraft-2013b/data/"
SPLIT_FILES = {
    "train": "images_variant_train.txt",
    "validation": "images_variant_val.txt",
    "test": "images_variant_test.txt",
}
METADATA = [DATA + name for name in (*SPLIT_FILES.values(), "variants.txt", "images_box.txt")]


def _variants(data: bytes) -> dict[str, str]:
    """``image id -> variant`` from lines ``ID VARIANT NAME`` (variant names contain spaces)."""
    return dict(line.split(" ", 1) for line in data.decode("utf-8").splitlines() if line.strip())


class Aircraft(ArchiveBuilder):
    """FGVC-Aircraft: 100 aircraft model variants, cropped to the aircraft's bounding box."""

    name = "nasgym_aircraft"
    VERSION = tfds.core.Version(builder_version(name))

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {
            **super()._features(),
            "crop": tfds.features.Tensor(shape=(4,), dtype=np.int64, doc="[top, left, bottom, right] of the box"),
        }

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        (path,) = self.archives.values()
        members, contents = scan_archive(path, METADATA)
        names = [line.strip() for line in contents[DATA + "variants.txt"].decode("utf-8").splitlines() if line.strip()]
        self.set_class_names(names)
        boxes = {}
        for image_id, *box in text_lines(contents[DATA + "images_box.txt"]):
            xmin, ymin, xmax, ymax = map(int, box)  # 1-based, inclusive
            boxes[image_id] = np.array([ymin - 1, xmin - 1, ymax, xmax], dtype=np.int64)
        examples = {}  # archive member -> (variant, split, crop)
        for split, split_file in SPLIT_FILES.items():
            for image_id, variant in _variants(contents[DATA + split_file]).items():
                if variant.strip() not in names or image_id not in boxes:
                    raise DatasetError(f"{path}: image {image_id} in {split_file} has an unknown variant or no box")
                examples[f"{DATA}images/{image_id}.jpg"] = (variant.strip(), split, boxes[image_id])
        if absent := sorted(examples.keys() - set(members)):
            raise DatasetError(f"{path}: the variant lists name {len(absent)} images it lacks, e.g. {absent[0]}")
        return {split: self._generate_examples(path, split, examples) for split in SPLIT_FILES}

    def _generate_examples(self, path, split, examples):
        for member, file in iter_archive(path):
            variant, image_split, crop = examples.get(member, (None, None, None))
            if image_split == split:
                image = checked_image(file.read(), f"{path}:{member}")
                yield member, {"image": image, "label": variant, "file_name": member, "crop": crop}
