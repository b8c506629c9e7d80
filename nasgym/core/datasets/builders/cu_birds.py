"""Caltech-UCSD Birds-200-2011 from ``CUB_200_2011.tgz`` and its ``images.txt`` / ``image_class_labels.txt``."""

from __future__ import annotations

import tensorflow_datasets as tfds

from nasgym.core.datasets.builders.base import ArchiveBuilder, checked_image, iter_archive, scan_archive, text_lines
from nasgym.core.datasets.specs import builder_version
from nasgym.core.errors import DatasetError

ROOT = "CUB_200_2011/"
FILES = {name: ROOT + name for name in ("images.txt", "image_class_labels.txt", "classes.txt", "train_test_split.txt")}


class CuBirds(ArchiveBuilder):
    """CUB-200-2011: 200 bird species; image ids, classes and splits from the archive's text files."""

    name = "nasgym_cu_birds"
    VERSION = tfds.core.Version(builder_version(name))

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        (path,) = self.archives.values()
        members, contents = scan_archive(path, FILES.values())
        tables = {name: dict(text_lines(contents[member])) for name, member in FILES.items()}
        class_names = [name for _, name in sorted(tables["classes.txt"].items(), key=lambda item: int(item[0]))]
        self.set_class_names(class_names)
        examples = {}  # archive member -> (label, split)
        for image_id, relative in tables["images.txt"].items():
            if image_id not in tables["image_class_labels.txt"] or image_id not in tables["train_test_split.txt"]:
                raise DatasetError(f"{path}: image {image_id} ({relative}) has no class or no split")
            label = int(tables["image_class_labels.txt"][image_id]) - 1
            split = "train" if tables["train_test_split.txt"][image_id] == "1" else "test"
            examples[ROOT + "images/" + relative] = (label, split)
        if absent := sorted(examples.keys() - set(members)):
            raise DatasetError(f"{path}: images.txt lists {len(absent)} images the archive lacks, e.g. {absent[0]}")
        return {split: self._generate_examples(path, split, examples) for split in ("train", "test")}

    def _generate_examples(self, path, split, examples):
        for member, file in iter_archive(path):
            label, image_split = examples.get(member, (None, None))
            if image_split == split:
                image = checked_image(file.read(), f"{path}:{member}")
                yield member, {"image": image, "label": label, "file_name": member}
