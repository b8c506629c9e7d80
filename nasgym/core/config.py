"""The settings of ``NAS-v0``: the environment's own (``EnvConfig``) and the child training's (``TrainConfig``,
which holds ``NetworkConfig``). Every ``gym.make`` keyword and every command-line flag of the environment is a
field of one of them, where its default is written once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from nasgym.core import settings
from nasgym.core.errors import ConfigError
from nasgym.core.search_space import DEFAULT_IMAGE_SIZE, DEFAULT_MAX_LAYERS
from nasgym.core.training import TrainConfig


@dataclass(frozen=True)
class EnvConfig:
    """The environment's own settings; the child-training ones are ``TrainConfig`` and ``NetworkConfig``."""

    dataset: str = "digits"
    """A registered dataset name (`nasgym data list`) or `folder:/path` (one subfolder per class)."""
    reward: Literal["per_step", "final"] = "per_step"
    """`per_step`: every step trains the network so far (NasGym); `final`: 0 until the episode ends (Zoph & Le)."""
    max_layers: int = DEFAULT_MAX_LAYERS
    """Rows per episode, the terminal row included."""
    image_size: int = DEFAULT_IMAGE_SIZE
    """Images are resized to this side, 3 channels, scaled to [0, 1]; it decides which layers fit."""
    resize: Literal["antialias", "bilinear_align_corners"] = "antialias"
    """`antialias`: bilinear with a filter that widens when shrinking (PIL; torch for digits); `bilinear_align_corners`:
    TF1's `resize_images(BILINEAR, align_corners=True)` that NasGym used, which samples 4 pixels and aliases when
    shrinking. It changes the pixels, so the image cache and the reward cache keep the two apart."""
    observation: Literal["nsc", "onehot", "nasgym"] = "nsc"
    """`nsc`: the NSC matrix, int64 (max_layers, 5); `onehot`: a flat float32 vector (a one-hot layer per row) that
    every RL library takes without wrappers; `nasgym`: NasGym's float32 (max_layers, 25) matrix, each row's type,
    kernel and predecessor one-hot, newest layer last (agents then read it as their features)."""
    max_samples: int | None = None
    """Train and score on a fixed random subset of this many images (None: all)."""
    device: str = "auto"
    """Where children train: `cuda`, `cpu` or `auto` (CUDA when there is a GPU)."""
    data_dir: str | None = None
    """Where prepared datasets live (default ~/.cache/nasgym/data, or $NASGYM_DATA_DIR)."""
    cache: bool = True
    """Answer networks trained before from the persistent reward cache, and store new rewards in it."""
    cache_path: str | None = None
    """The reward cache file (default ~/.cache/nasgym/rewards.sqlite, or $NASGYM_HOME/rewards.sqlite)."""

    def __post_init__(self) -> None:
        if isinstance(self.dataset, os.PathLike):  # a path is a folder of images
            object.__setattr__(self, "dataset", f"folder:{os.fspath(self.dataset)}")
        settings.check_fields(self)
        if self.max_layers < 1:
            raise ConfigError(f"max_layers must be at least 1, got {self.max_layers}")
        if self.image_size < 1:
            raise ConfigError(f"image_size must be at least 1 pixel, got {self.image_size}")
        if self.max_samples is not None and self.max_samples < 2:
            raise ConfigError(f"max_samples must be at least 2 (or None for all images), got {self.max_samples}")


SETTINGS_CLASSES = (EnvConfig, TrainConfig)
"""Every keyword of ``NAS-v0`` is a field of one of these (``TrainConfig`` holds ``NetworkConfig``)."""


def make_configs(options: dict[str, Any]) -> tuple[EnvConfig, TrainConfig]:
    """Split ``gym.make`` keywords into the environment's and the child training's settings, each checked."""
    env_names = {field.name for field in settings.settings_of(EnvConfig)}
    train_names = {field.name for field in settings.settings_of(TrainConfig)}
    for name in options:
        if name not in env_names | train_names:
            raise settings.unknown_name_error(name, env_names | train_names, "NAS-v0 keyword")
    env_config = settings.build(EnvConfig, {k: v for k, v in options.items() if k in env_names})
    train_config = settings.build(TrainConfig, {k: v for k, v in options.items() if k in train_names})
    return env_config, train_config
