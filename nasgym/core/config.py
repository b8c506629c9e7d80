"""The settings of ``NAS-v0``: the environment's own (``EnvConfig``) and the child training's (``TrainConfig``,
which holds ``NetworkConfig``). Every ``gym.make`` keyword and every command-line flag of the environment is a
field of one of them, where its default is written once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from nasgym.core import settings
from nasgym.core.errors import ConfigError
from nasgym.core.lookup.source import table_defaults
from nasgym.core.search_space import DEFAULT_IMAGE_SIZE, DEFAULT_MAX_LAYERS
from nasgym.core.training import TrainConfig
from nasgym.core.weight_sharing import WeightSharingConfig

MAX_LAYERS = 1000
"""``max_layers`` at most: 100 times NasGym's 10, far beyond what a search reaches (every row is an episode step), yet
a bound: the observation holds max_layers rows, so 2**40 would exhaust memory instead of being refused in one line."""


@dataclass(frozen=True)
class BackendConfig:
    """Where children train: in this process, or as Ray tasks on a cluster. Nothing here changes a reward."""

    backend: Literal["local", "ray"] = "local"
    """`local`: children train in this process; `ray`: each child is a Ray task (`pip install nasgym[ray]`) on a
    Ray cluster or a local Ray instance; the reward cache stays with this process."""
    ray_address: str | None = None
    """With `backend='ray'`: the cluster to join (`auto`: the one `ray start` runs on this machine, or `HOST:PORT`);
    None starts a local Ray instance. A process already connected to Ray (a Ray task) uses that connection."""
    ray_task_cpus: float = 1.0
    """CPUs each training asks Ray for; it trains on that many threads."""
    ray_task_gpus: float = 0.0
    """GPUs each training asks Ray for; a fraction shares a GPU (0.25: four children at once). Above 0,
    `device='auto'` means CUDA even when this process has no GPU."""
    ray_max_retries: int = 3
    """How often Ray reruns a training whose worker process or node died."""

    def __post_init__(self) -> None:
        settings.check_fields(self)
        if self.ray_task_cpus < 0 or self.ray_task_gpus < 0 or self.ray_task_cpus + self.ray_task_gpus == 0:
            raise ConfigError(
                "ray_task_cpus and ray_task_gpus must be >= 0 and not both 0, got "
                f"{self.ray_task_cpus} and {self.ray_task_gpus}"
            )
        if self.ray_task_gpus > 1 and not self.ray_task_gpus.is_integer():
            raise ConfigError(f"ray_task_gpus above 1 must be a whole number (Ray's rule), got {self.ray_task_gpus}")
        if self.ray_max_retries < 0:
            raise ConfigError(f"ray_max_retries must be >= 0, got {self.ray_max_retries}")


@dataclass(frozen=True)
class EnvConfig:
    """The environment's own settings; the child-training ones are ``TrainConfig`` and ``NetworkConfig``."""

    dataset: str = "digits"
    """A registered dataset name (`nasgym data list`) or `folder:/path` (one subfolder per class)."""
    reward: Literal["per_step", "final"] = "per_step"
    """`per_step`: every step trains the network so far (NasGym); `final`: 0 until the episode ends (Zoph & Le)."""
    reward_source: Literal["trained", "weight_sharing", "table", "surrogate"] = "trained"
    """`trained`: each network is trained from scratch (NasGym); `weight_sharing`: scored with weights shared by all
    networks after k minibatches through it (ENAS; the `ws_*` keywords), far cheaper, never cached, and a ranking
    to trust only as far as `nasgym fidelity` measures; `table`: the recorded trainings of a look-up table (`nasgym
    table`), no training at all; unless given, `image_size` and `max_layers` are then the table's (its image size, and
    the depth up to which it holds every network); `surrogate`: a gradient-boosting model fitted on that table answers
    any network of the full space, with the table's seed noise."""
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
    table_path: str | None = None
    """With `reward_source='table'` or `'surrogate'`: the table file (`nasgym table build`); None: the table shipped for
    `dataset`."""
    table_seed: Literal["drawn", "train_seed"] = "drawn"
    """With `reward_source='table'`: `drawn` answers each network with one of its recorded training seeds, chosen by
    the network and `seed` (so every training seed sees its own draw); `train_seed`: always the training seed `seed`."""
    compute: BackendConfig = BackendConfig()
    """Where children train (`backend` and the `ray_*` keywords)."""
    weight_sharing: WeightSharingConfig = WeightSharingConfig()
    """The `ws_*` keywords, read with `reward_source='weight_sharing'`."""

    def __post_init__(self) -> None:
        if isinstance(self.dataset, os.PathLike):  # a path is a folder of images
            object.__setattr__(self, "dataset", f"folder:{os.fspath(self.dataset)}")
        settings.check_fields(self)
        if self.max_layers < 1:
            raise ConfigError(f"max_layers must be at least 1, got {self.max_layers}")
        if self.max_layers > MAX_LAYERS:
            raise ConfigError(f"max_layers must be at most {MAX_LAYERS}, got {self.max_layers:,}")
        if self.image_size < 1:
            raise ConfigError(f"image_size must be at least 1 pixel, got {self.image_size}")
        if self.max_samples is not None and self.max_samples < 2:
            raise ConfigError(f"max_samples must be at least 2 (or None for all images), got {self.max_samples}")
        if self.reward_source != "trained" and self.compute.backend != "local":
            raise ConfigError(
                f"reward_source={self.reward_source!r} runs in this process (only trained rewards go to Ray); "
                "use backend='local'"
            )


LOOKUP_SOURCES = ("table", "surrogate")
"""Reward sources that answer from a look-up table (`table_path`, `table_seed`) instead of training."""
SETTINGS_CLASSES = (EnvConfig, TrainConfig)
"""Every keyword of ``NAS-v0`` is a field of one of these (``TrainConfig`` holds ``NetworkConfig``)."""


def make_configs(options: dict[str, Any]) -> tuple[EnvConfig, TrainConfig]:
    """Split ``gym.make`` keywords into the environment's and the child training's settings, each checked."""
    env_names = {field.name for field in settings.settings_of(EnvConfig)}
    train_names = {field.name for field in settings.settings_of(TrainConfig)}
    for name in options:
        if name not in env_names | train_names:
            raise settings.unknown_name_error(name, env_names | train_names, "NAS-v0 keyword")
    env_options = {k: v for k, v in options.items() if k in env_names}
    if (
        source := env_options.get("reward_source")
    ) in LOOKUP_SOURCES:  # the table's image size (and depth) unless given
        defaults = table_defaults(env_options.get("dataset", EnvConfig.dataset), env_options.get("table_path"), source)
        env_options = {**defaults, **env_options}
    env_config = settings.build(EnvConfig, env_options)
    train_config = settings.build(TrainConfig, {k: v for k, v in options.items() if k in train_names})
    return env_config, train_config


def grouped_keywords(
    options: dict[str, Any], env_config: EnvConfig | None = None, train_config: TrainConfig | None = None
) -> dict[str, Any]:
    """Flat ``gym.make`` keywords with the grouped configs spread into them, so ``make_configs`` reads both forms.

    A config is taken whole (its defaults too: a table's image size is not filled in for it), so naming one of its
    settings again as a flat keyword is ambiguous and refused. ``dataset`` beside ``env_config`` is the exception
    where the config leaves it at its default: it says which data the config's settings search."""
    flat = dict(options)
    groups: tuple[tuple[str, Any, type], ...] = (
        ("env_config", env_config, EnvConfig),
        ("train_config", train_config, TrainConfig),
    )
    for keyword, config, kind in groups:
        if config is None:
            continue
        if not isinstance(config, kind):
            raise ConfigError(f"{keyword} must be a {kind.__name__}, got {type(config).__name__}")
        values = settings.flatten(config)
        if "dataset" in values and "dataset" in flat:
            if values["dataset"] not in (EnvConfig.dataset, flat["dataset"]):
                raise ConfigError(
                    f"dataset={flat['dataset']!r} and env_config.dataset={values['dataset']!r} disagree; give it once"
                )
            del values["dataset"]
        clash = sorted(set(values) & set(flat))
        if clash:
            raise ConfigError(f"{clash[0]} is given both as a keyword and in {keyword}; give it once")
        flat.update(values)
    return flat
