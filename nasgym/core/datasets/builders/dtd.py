"""Describable Textures from ``dtd-r1.0.1.tar.gz``: ``dtd/images/<class>/*.jpg`` and ``dtd/labels/*1.txt``."""

from __future__ import annotations

from pathlib import PurePosixPath

import tensorflow_datasets as tfds

from nasgym.core.datasets.builders.base import ArchiveBuilder, checked_image, is_image, iter_archive, scan_archive
from nasgym.core.datasets.specs import builder_version
from nasgym.core.errors import DatasetError

IMAGES = "dtd/images/"
# tfds's dtd uses the first of DTD's ten folds; the three files of a fold cover every image once.
SPLIT_FILES = {"train": "dtd/labels/train1.txt", "validation": "dtd/labels/val1.txt", "test": "dtd/labels/test1.txt"}


class Dtd(ArchiveBuilder):
    """Describable Textures Dataset: 47 texture categories; the label is the image's folder."""

    name = "nasgym_dtd"
    VERSION = tfds.core.Version(builder_version(name))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        (path,) = self.archives.values()
        members, contents = scan_archive(path, SPLIT_FILES.values())
        images = {member[len(IMAGES) :] for member in members if member.startswith(IMAGES) and is_image(member)}
        split_of: dict[str, str] = {}
        for split, split_file in SPLIT_FILES.items():
            for line in contents[split_file].decode("utf-8").split():
                if line not in images:
                    raise DatasetError(f"{path}: {split_file} lists {line}, which is not under {IMAGES}")
                split_of[line] = split
        if unlisted := sorted(images - split_of.keys()):
            raise DatasetError(f"{path}: {len(unlisted)} images are in no split file, e.g. {IMAGES}{unlisted[0]}")
        self.set_class_names(sorted({PurePosixPath(image).parts[0] for image in images}))
        return {split: self._generate_examples(path, split, split_of) for split in SPLIT_FILES}

    def _generate_examples(self, path, split, split_of):
        for member, file in iter_archive(path):
            relative = member[len(IMAGES) :]
            if member.startswith(IMAGES) and split_of.get(relative) == split:
                image = checked_image(file.read(), f"{path}:{member}")
                yield member, {"image": image, "label": PurePosixPath(relative).parts[0], "file_name": member}
