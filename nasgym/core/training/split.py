"""How a dataset's images are split: a held-out test part (no seed moves it), then a seeded train/reward shuffle."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from nasgym.core.datasets import ImageData
from nasgym.core.errors import ConfigError
from nasgym.core.training.config import TrainConfig

TEST_SPLIT_SEED = 2019
"""Seeds the shuffle that holds the test split out; no setting changes it, so every search of a dataset (any seed,
any split seed) leaves out the same images."""


class Split(NamedTuple):
    """Row indices of the three parts of a dataset, each sorted in the order it is used."""

    train: np.ndarray
    reward: np.ndarray
    test: np.ndarray


def split_indices(
    labels: np.ndarray,
    train_fraction: float,
    seed: int,
    n_classes: int,
    test_fraction: float = 0.0,
    rounding: str = "round",
) -> Split:
    """Hold out ``test_fraction`` of the images by a fixed shuffle; shuffle the rest with ``seed``: the first
    ``train_fraction`` of it (rounded as ``rounding`` says) trains, the remainder is the reward split.

    With ``test_fraction=0`` the train/reward split is the one a plain seeded shuffle of all images gives. A split
    with fewer images than classes on the train or reward side measures nothing (two images gave accuracy 1.0 from
    one reward image), so it is refused.
    """
    n = len(labels)
    held_out = np.random.default_rng(TEST_SPLIT_SEED).permutation(n)
    n_test = round(n * test_fraction)
    test, rest = np.sort(held_out[:n_test]), np.sort(held_out[n_test:])
    order = rest[np.random.default_rng(seed).permutation(len(rest))]
    share = len(rest) * train_fraction
    n_train = math.floor(share) if rounding == "floor" else round(share)
    if min(n_train, len(rest) - n_train) < n_classes:
        raise ConfigError(
            f"{len(rest)} images split {train_fraction:.3f} : {1 - train_fraction:.3f} give {n_train} to train and "
            f"{len(rest) - n_train} to score, fewer than the {n_classes} classes on one side; use more images "
            "(max_samples) or another train_fraction"
        )
    return Split(order[:n_train], order[n_train:], test)


def split_for(data: ImageData, config: TrainConfig) -> Split:
    """The split ``config`` gives ``data``, checked: every part a training scores on holds at least one image per
    class."""
    split = split_indices(
        data.labels,
        config.train_fraction,
        config.shuffle_seed,
        data.n_classes,
        config.test_fraction,
        config.split_rounding,
    )
    if config.score_split == "test" and len(split.test) < data.n_classes:
        raise ConfigError(
            f"a test split of {len(split.test)} images is smaller than the {data.n_classes} classes; "
            "raise test_fraction or use more images"
        )
    return split
