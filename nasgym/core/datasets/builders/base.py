"""What our tensorflow-datasets builders share: features, reading archives without TensorFlow, image checks.

tensorflow-datasets' own builders call TensorFlow (``tf.io.gfile``) to download and extract. Ours are
handed the verified archive paths and read them with ``tfds.download.iter_archive`` on an ordinary open
file, and they yield images as encoded bytes (encoding a NumPy array would need TensorFlow), so preparing
needs no TensorFlow. Every image is fully decoded once here, so a corrupt file is reported by its path in
the archive before anything is published.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import tensorflow_datasets as tfds
from PIL import Image

from nasgym.core.datasets.specs import DatasetSpec
from nasgym.core.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class ArchiveBuilder(tfds.core.GeneratorBasedBuilder):
    """Base of our builders: made with the spec and the archives when preparing, with neither when reading."""

    name = "nasgym_archive_builder"
    # tfds finds a builder's checksums file next to its code; ours verify archives themselves (archives.py).
    # Saying so also avoids tfds 4.9.10's lookup, which needs importlib_resources without declaring it.
    code_path = None

    def __init__(self, *, spec: DatasetSpec | None = None, archives: dict[str, Path] | None = None, **kwargs: Any):
        self.spec = spec
        self.archives = archives or {}
        super().__init__(**kwargs)

    def _features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(),  # names are set once the archives have been read
            "file_name": tfds.features.Text(doc="the image's path inside its archive"),
        }

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(self._features()),
            supervised_keys=("image", "label"),
            homepage=self.spec.homepage if self.spec else None,
        )

    def archive(self, name: str) -> Path:
        if name not in self.archives:
            raise DatasetError(f"{self.name} needs the archive {name}, which it was not given")
        return self.archives[name]

    def set_class_names(self, names: Iterable[str]) -> None:
        self.info.features["label"].names = list(names)


def iter_archive(path: Path) -> Iterator[tuple[str, BinaryIO]]:
    """``(path inside, file)`` for each member of a zip or (compressed or not) tar archive, read as a stream."""
    with open(path, "rb") as file:
        is_zip = zipfile.is_zipfile(file)
        file.seek(0)
        method = tfds.download.ExtractMethod.ZIP if is_zip else tfds.download.ExtractMethod.TAR_STREAM
        try:
            yield from tfds.download.iter_archive(file, method)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise DatasetError(f"cannot read the archive {path}: {error}; replace it with a good copy") from error


def scan_archive(path: Path, wanted: Iterable[str] = ()) -> tuple[list[str], dict[str, bytes]]:
    """Every member's path, and the contents of the ``wanted`` (small) members; a missing one is an error."""
    wanted = set(wanted)
    members: list[str] = []
    contents: dict[str, bytes] = {}
    for member, file in iter_archive(path):
        members.append(member)
        if member in wanted:
            contents[member] = file.read()
    if missing := sorted(wanted - contents.keys()):
        raise DatasetError(f"{path} lacks {', '.join(missing)}: is it the original archive?")
    return members, contents


def text_lines(data: bytes) -> list[list[str]]:
    """The non-blank lines of a text file, split into fields on whitespace."""
    return [line.split() for line in data.decode("utf-8").splitlines() if line.strip()]


def is_image(member: str) -> bool:
    return member.lower().endswith(IMAGE_SUFFIXES)


def checked_image(data: bytes, where: str) -> bytes:
    """Decode once to prove the image whole; keep the original bytes where tfds decodes them the same way.

    JPEG and PNG in RGB or greyscale pass unchanged. Other modes are converted, because tfds's NumPy decoder
    would misread them: 1-bit PNGs (Omniglot) would come out as 0/1 instead of 0/255, palette PNGs as
    indices, CMYK JPEGs with four channels.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format in ("JPEG", "PNG") and image.mode in ("RGB", "L"):
                return data
            converted = image.convert("L" if image.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"corrupt image {where}: {error}; replace the archive with a good copy") from error
    out = io.BytesIO()
    converted.save(out, format="PNG")
    return out.getvalue()
