"""scikit-learn's bundled 8x8 digits: the offline default dataset (1,797 images, 10 classes)."""

from __future__ import annotations

import numpy as np

import envs_data
from nasgym.core.datasets.base import DEFAULT_RESIZE, Dataset, ImageData, fingerprint_arrays, resize_images


class DigitsDataset(Dataset):
    """Handwritten digits shipped inside scikit-learn, upsampled to the configured image size."""

    name = "digits"
    n_classes = envs_data.load("datasets")["digits"]["classes"]
    n_images = envs_data.load("datasets")["digits"]["images"]

    def load(self, image_size: int, resize: str = DEFAULT_RESIZE) -> ImageData:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        grey = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # pixel values are 0..16
        images = resize_images(grey, image_size, resize=resize)
        labels = bunch.target.astype(np.int64)
        return ImageData(self.name, images, labels, self.n_classes, fingerprint_arrays(images, labels))
