"""The dataset interface the environment trains on, the checks of its settings, and the shared array helpers."""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import numpy.typing as npt
import psutil
import torch
import torch.nn.functional as F

from nasgym.core.errors import ConfigError
from nasgym.core.threads import single_threaded

_RESIZE_BYTES = 256 << 20  # float32 working memory of one resize batch
DEFAULT_RESIZE = "antialias"
RESIZES = ("antialias", "bilinear_align_corners")
"""How images reach the configured side (``EnvConfig.resize``)."""


@dataclass(frozen=True)
class ImageData:
    """Images ready for training: uint8 ``(N, H, W, 3)``, labels int64 ``(N,)`` in ``0..n_classes-1``.

    ``fingerprint`` identifies the exact arrays, so the reward cache never mixes two versions of a dataset.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    n_classes: int
    fingerprint: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, H, W, 3), got {self.images.dtype} {self.images.shape}")
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])


class Dataset(ABC):
    """A named image-classification source. Loaders of the Meta-Dataset sets and of folders plug in here.

    ``n_images`` is known before loading, so an image size whose arrays would not fit is refused up front.
    """

    name: str
    n_classes: int
    n_images: int

    @abstractmethod
    def load(self, image_size: int, resize: str = DEFAULT_RESIZE) -> ImageData:
        """All images, resized to ``image_size`` x ``image_size`` x 3 (uint8) the way ``resize`` names."""


def check_image_size(image_size: object, n_images: int, name: str) -> int:
    """``image_size`` as an int; refused before anything is allocated where ``n_images`` would not fit in memory."""
    available = psutil.virtual_memory().available
    largest = math.isqrt(available // (3 * max(n_images, 1)))
    size = int(image_size) if isinstance(image_size, Integral) and not isinstance(image_size, bool) else None
    if size is None or not 1 <= size <= largest:
        need = ""
        if size is not None and size > largest:
            need = (
                f" ({n_images:,} images x {size} x {size} x 3 = {n_images * 3 * size**2:,} bytes, "
                f"{available:,} of memory available)"
            )
        raise ConfigError(
            f"image_size must be a whole number of pixels from 1 to {largest} for {name}, got {image_size!r}{need}"
        )
    return size


def check_max_samples(max_samples: object) -> int | None:
    """None (every image) or an int of at least 2: the trainer needs a training and a validation image."""
    if max_samples is None:
        return None
    if isinstance(max_samples, bool) or not isinstance(max_samples, Integral) or max_samples < 2:
        raise ConfigError(f"max_samples must be an int of at least 2, or None for every image; got {max_samples!r}")
    return int(max_samples)


class Fingerprint:
    """The sha256 of ``fingerprint_arrays`` taken piece by piece: the images' bytes in order, then the labels'."""

    def __init__(
        self,
        images_shape: tuple[int, ...],
        images_dtype: npt.DTypeLike,
        labels_shape: tuple[int, ...],
        labels_dtype: npt.DTypeLike,
    ):
        header = (tuple(images_shape), str(np.dtype(images_dtype)), tuple(labels_shape), str(np.dtype(labels_dtype)))
        self._digest = hashlib.sha256(repr(header).encode())

    def update(self, array: np.ndarray) -> None:
        self._digest.update(np.ascontiguousarray(array).data)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def fingerprint_arrays(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the arrays' shapes and bytes (a few hundred MB/s; loaders with big data store it)."""
    fingerprint = Fingerprint(images.shape, images.dtype, labels.shape, labels.dtype)
    fingerprint.update(images)
    fingerprint.update(labels)
    return fingerprint.hexdigest()


def bilinear_align_corners(images: np.ndarray, size: int) -> np.ndarray:
    """TF1's ``resize_images(method=BILINEAR, align_corners=True)`` of uint8 ``(..., H, W, C)`` images, rounded to
    uint8: output pixel ``i`` samples input position ``i * (H - 1) / (size - 1)`` between its two neighbours, with no
    filter, so shrinking aliases. NumPy only, so the decoding threads never start torch's thread pool."""
    result = images.astype(np.float32)
    for axis in (-3, -2):
        length = result.shape[axis]
        position = np.arange(size, dtype=np.float64) * ((length - 1) / (size - 1) if size > 1 else 0.0)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, length - 1)
        weight = (position - low).astype(np.float32).reshape((-1,) + (1,) * (-axis - 1))
        result = np.take(result, low, axis=axis) * (1 - weight) + np.take(result, high, axis=axis) * weight
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)


def resize_images(images: np.ndarray, size: int, chunk: int = 512, resize: str = DEFAULT_RESIZE) -> np.ndarray:
    """Resize uint8 ``(N, H, W, C)`` to ``(N, size, size, 3)`` uint8; grey images are repeated to 3 channels.

    At most ``chunk`` images at a time, fewer for big sizes so a batch's float copy stays near 256 MB.
    """
    if images.ndim == 3:
        images = images[..., None]
    n, _, _, channels = images.shape
    if channels not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {channels}")
    if resize == "bilinear_align_corners":
        return np.repeat(bilinear_align_corners(images, size), 3 // channels, axis=-1)
    chunk = max(1, min(chunk, _RESIZE_BYTES // (4 * channels * size * size)))
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    with single_threaded():  # building an env must not start OpenMP's pool: workers forked later would hang
        _resize_into(out, images, size, chunk)
    return out


def _resize_into(out: np.ndarray, images: np.ndarray, size: int, chunk: int) -> None:
    n, height, width, _ = images.shape
    for start in range(0, n, chunk):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk])).permute(0, 3, 1, 2)
        if (height, width) != (size, size):
            # Antialiased bilinear: faithful when shrinking, smooth when enlarging (digits are 8x8).
            batch = (
                F.interpolate(batch.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
                .round_()
                .clamp_(0, 255)
                .to(torch.uint8)
            )
        out[start : start + chunk] = batch.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()


def subsample(data: ImageData, max_samples: int | None, seed: int = 0) -> ImageData:
    """A fixed random subset of ``max_samples`` images (for quick tests and small budgets)."""
    max_samples = check_max_samples(max_samples)
    if max_samples is None or max_samples >= len(data):
        return data
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:max_samples])
    images, labels = data.images[keep], data.labels[keep]
    return ImageData(data.name, images, labels, data.n_classes, fingerprint_arrays(images, labels))
