"""``folder:/path/to/images``: a user's own images, one subfolder per class, through the same image cache.

The cache lives in ``DATA_DIR/folders/<folder name>-<hash of its path>/<size>px``; it is rebuilt when a file
is added, removed or changed (the listing of paths, sizes and modification times is its ``source``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

from nasgym.core.datasets.base import DEFAULT_RESIZE, Dataset, ImageData
from nasgym.core.datasets.image_cache import cache_dir, parallel_batches, read_cache, resize_each, write_cache
from nasgym.core.datasets.prepare import data_root
from nasgym.core.errors import DatasetError

FOLDER_PREFIX = "folder:"
BATCH = 128


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB; a file that cannot be read or decoded is reported by its path."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (PermissionError, FileNotFoundError) as error:
        reason = error.strerror
        raise DatasetError(f"image {path} cannot be read ({reason}); fix its permissions or remove it") from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"corrupt image {path}: {error}; delete or replace it") from error


def image_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """The image files anywhere below ``folder``, sorted; a subfolder that cannot be listed is an error."""

    def unreadable(error: OSError) -> None:
        raise DatasetError(
            f"class folder {folder} cannot be read ({error.filename}: {error.strerror}); "
            "fix its permissions or remove it"
        ) from error

    found = []
    for parent, _, files in os.walk(folder, onerror=unreadable):
        for name in files:
            file = Path(parent) / name
            if file.suffix.lower() in suffixes and not name.startswith(".") and file.is_file():
                found.append(file)
    return sorted(found)


class FolderDataset(Dataset):
    """Images under ``path/<class>/`` (any depth below the class folder); classes in sorted order."""

    def __init__(self, path: str | os.PathLike[str], data_dir: str | Path | None = None):
        if not str(path):
            raise DatasetError("folder: needs a path, e.g. dataset='folder:/data/my_images'")
        self.path = Path(path).expanduser().resolve()
        self.name = f"{FOLDER_PREFIX}{self.path}"
        if not self.path.is_dir():
            raise DatasetError(f"{self.path} is not a folder; folder:PATH needs a folder with one subfolder per class")
        suffixes = {suffix for suffix, kind in Image.registered_extensions().items() if kind in Image.OPEN}
        try:
            self.classes = sorted(d.name for d in self.path.iterdir() if d.is_dir() and not d.name.startswith("."))
        except OSError as error:
            raise DatasetError(f"folder {self.path} cannot be read ({error.strerror}); fix its permissions") from error
        self.files: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            found = image_files(self.path / name, suffixes)
            if not found:
                raise DatasetError(f"class folder {self.path / name} holds no images; add some or remove it")
            self.files.extend((file, label) for file in found)
        if len(self.classes) < 2:
            raise DatasetError(
                f"{self.path} has {len(self.classes)} class folder(s); put each class's images in its own subfolder"
            )
        self.n_classes = len(self.classes)
        self.n_images = len(self.files)
        self.data_dir = data_root(data_dir)

    def listing(self) -> str:
        """A digest of every file's path, size and modification time: changes when the folder's images do."""
        digest = hashlib.sha256()
        for file, label in self.files:
            stat = file.stat()
            digest.update(f"{file.relative_to(self.path)}\t{label}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def cache_root(self) -> Path:
        key = hashlib.sha256(str(self.path).encode()).hexdigest()[:12]
        return self.data_dir / "folders" / f"{self.path.name}-{key}"

    def load(self, image_size: int, resize: str = DEFAULT_RESIZE) -> ImageData:
        source = self.listing()
        directory = cache_dir(self.cache_root(), image_size, resize)
        if (data := read_cache(directory, self.name, source)) is not None:
            return data
        jobs = [self.files[start : start + BATCH] for start in range(0, len(self.files), BATCH)]

        def decode(job: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
            images = resize_each([read_image(file) for file, _ in job], image_size, resize)
            return images, np.array([label for _, label in job], dtype=np.int64)

        batches = parallel_batches(jobs, decode, len(self.files), desc=f"{self.path.name} -> {image_size}px cache")
        return write_cache(directory, self.name, source, image_size, len(self.files), self.n_classes, batches)
