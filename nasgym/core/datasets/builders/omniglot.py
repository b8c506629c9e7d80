"""Omniglot from its original zip archives (``ROOT/<Alphabet>/characterNN/<id>_<drawer>.png``)."""

from __future__ import annotations

from pathlib import PurePosixPath

import tensorflow_datasets as tfds

from nasgym.core.datasets.builders.base import ArchiveBuilder, checked_image, is_image, iter_archive, scan_archive
from nasgym.core.datasets.specs import builder_version
from nasgym.core.errors import DatasetError

# Which split each archive becomes (tfds's omniglot: background = train, evaluation = test).
SPLITS = {
    "images_background.zip": "train",
    "images_evaluation.zip": "test",
    "images_background_small1.zip": "train",
    "images_background_small2.zip": "train",
}


def character(member: str) -> str:
    """The class of an image: ``Alphabet/characterNN`` (character numbers restart in every alphabet)."""
    parts = PurePosixPath(member).parts
    if len(parts) != 4 or not parts[2].startswith("character"):
        raise DatasetError(f"unexpected Omniglot path {member!r}: expected ROOT/Alphabet/characterNN/ID.png")
    return f"{parts[1]}/{parts[2]}"


class Omniglot(ArchiveBuilder):
    """Omniglot: handwritten characters of 50 alphabets; the label is the character within its alphabet."""

    name = "nasgym_omniglot"
    VERSION = tfds.core.Version(builder_version(name))
    BUILDER_CONFIGS = [  # noqa: RUF012 (tfds reads this class attribute)
        tfds.core.BuilderConfig(name="full", description="background + evaluation: 1623 characters"),
        tfds.core.BuilderConfig(name="small1", description="images_background_small1: 136 characters"),
        tfds.core.BuilderConfig(name="small2", description="images_background_small2: 156 characters"),
    ]

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        paths = {name: self.archive(name) for name in self.archives}
        classes: set[str] = set()
        for path in paths.values():
            members, _ = scan_archive(path)
            classes.update(character(member) for member in members if is_image(member))
        self.set_class_names(sorted(classes))
        return {SPLITS[name]: self._generate_examples(path) for name, path in paths.items()}

    def _generate_examples(self, path):
        for member, file in iter_archive(path):
            if is_image(member):
                image = checked_image(file.read(), f"{path}:{member}")
                yield member, {"image": image, "label": character(member), "file_name": member}
