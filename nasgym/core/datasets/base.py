"""The dataset interface the environment trains on, and the array helpers every loader shares."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


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
    """A named image-classification source. Loaders of the Meta-Dataset sets and of folders plug in here."""

    name: str
    n_classes: int

    @abstractmethod
    def load(self, image_size: int) -> ImageData:
        """All images, resized to ``image_size`` x ``image_size`` x 3, uint8."""


def fingerprint_arrays(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the arrays' shapes and bytes (a few hundred MB/s; loaders with big data store it)."""
    digest = hashlib.sha256()
    digest.update(repr((images.shape, str(images.dtype), labels.shape, str(labels.dtype))).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update(np.ascontiguousarray(labels).data)
    return digest.hexdigest()


def resize_images(images: np.ndarray, size: int, chunk: int = 512) -> np.ndarray:
    """Resize uint8 ``(N, H, W, C)`` to ``(N, size, size, 3)`` uint8; grey images are repeated to 3 channels."""
    if images.ndim == 3:
        images = images[..., None]
    n, height, width, channels = images.shape
    if channels not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got {channels}")
    out = np.empty((n, size, size, 3), dtype=np.uint8)
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
    return out


def subsample(data: ImageData, max_samples: int | None, seed: int = 0) -> ImageData:
    """A fixed random subset of ``max_samples`` images (for quick tests and small budgets)."""
    if max_samples is None or max_samples >= len(data):
        return data
    if max_samples < 2:
        raise ValueError(f"max_samples must be at least 2, got {max_samples}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(data))[:max_samples])
    images, labels = data.images[keep], data.labels[keep]
    return ImageData(data.name, images, labels, data.n_classes, fingerprint_arrays(images, labels))
