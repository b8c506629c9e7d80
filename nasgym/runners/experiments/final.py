"""Train a found architecture longer, beside a VGG baseline, and score both on the held-out test split.

Each network is trained ``repeats`` times with training seeds ``seed, seed + 1, ...`` (same train split, the
search's) and scored on the test split that no search trains or scores on; results are the mean +- 2 sd over the
repeats, as NasGym reported its final networks. Selecting a network on the reward split and scoring it there too
would favour it over the baseline, which was never selected; the test split removes that bias.

The training itself comes from the protocol (``envs_data/protocols.json``): ``modern`` doubles the filters from
one convolution to the next (32, 64, ... capped at 512) for 100 epochs with the rate x0.95 after every epoch;
``nasgym2019`` is NasGym's ``net_eval.py``: filters 16, 32, 64, ... uncapped, a 4096-unit dense layer, 100 epochs
at 1e-3 x 0.9^(step / 100). Both compare with NasGym's two-block VGG baseline by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from nasgym.core.datasets import ImageData
from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import TrainingEvaluator, load_data
from nasgym.core.network import NetworkConfig, glorot_init
from nasgym.core.ray_backend import RayEvaluator
from nasgym.core.search_space import Architecture
from nasgym.runners.envs import NAS_V0, EnvSettings
from nasgym.runners.experiments import trained_evaluator

VGG19_SHORT = Architecture.parse("c3-c3-m2-c3-c3-m2-c3-c3-c3-c3-m2")
"""VGG19's first three blocks (2, 2 and 4 3x3 convolutions, each block closed by a 2x2 max-pool), in this
search space's layers (no padding), so it is built, trained and scored exactly like a found network."""
BASELINES = ("vgg_two_blocks", "vgg19_short", "none")
"""``vgg_two_blocks``: NasGym's baseline of VGG19's first two blocks, padded 3x3 convolutions of 64, 64, 128, 128
filters, each followed by ReLU, no BatchNorm, then two 4096-unit dense layers (nas-env's net_benchmark.py); it
fits any image of at least 4x4. ``vgg19_short`` (above): three blocks in this space's layers, from 52x52 up.
``none``: no baseline."""


@dataclass(frozen=True)
class FinalResult:
    name: str
    architecture: str
    evaluations: list[Evaluation]
    spatial_sides: list[int] = field(default_factory=list)

    @property
    def accuracies(self) -> list[float]:
        return [evaluation.accuracy for evaluation in self.evaluations]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def sd(self) -> float:
        """Sample standard deviation over the repeats (NaN for one)."""
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else math.nan


def vgg_two_blocks(n_classes: int, image_size: int, config: NetworkConfig) -> nn.Module:
    """NasGym's two-block VGG baseline (see ``BASELINES``); ``config`` gives only its initialisation."""
    layers: list[nn.Module] = []
    channels = 3
    for filters in (64, 128):
        for _ in range(2):
            layers += [nn.Conv2d(channels, filters, 3, padding=1), nn.ReLU()]
            channels = filters
        layers.append(nn.MaxPool2d(2, stride=2))
    side = image_size // 4
    layers += [
        nn.Flatten(),
        nn.Linear(channels * side * side, 4096),
        nn.ReLU(),
        nn.Linear(4096, 4096),
        nn.ReLU(),
        nn.Linear(4096, n_classes),  # no dropout in NasGym's baseline
    ]
    model = nn.Sequential(*layers)
    return glorot_init(model) if config.init == "glorot" else model


def _parameters(build: Callable[[], nn.Module]) -> int:
    with torch.device("meta"):  # shapes only: nothing is allocated
        return sum(parameter.numel() for parameter in build().parameters())


def train_final(
    architecture: Architecture,
    dataset: str,
    env_options: dict[str, Any],
    baseline: str = "vgg_two_blocks",
    repeats: int = 5,
    progress: bool = True,
) -> list[FinalResult]:
    """Train ``architecture`` (and the baseline) ``repeats`` times each with ``env_options`` and score each
    training on the split ``score_split`` names (``nasgym final`` gives ``test``). The options are parsed once here;
    each repeat is the parsed training with its own seed."""
    env_config, base = EnvSettings.parse(NAS_V0, {**env_options, "dataset": dataset}).configs
    image_size = env_config.image_size
    networks = {"found": architecture.network}
    if baseline == "vgg19_short":
        networks["vgg19_short"] = VGG19_SHORT
    for name, network in networks.items():
        if not network.is_valid(image_size, max_layers=len(network)):
            raise ArchitectureError(
                f"{name} network {network} does not fit {image_size}x{image_size} images "
                f"(spatial sides {network.spatial_sizes(image_size)}); use a larger --image-size"
            )
    if baseline == "vgg_two_blocks" and image_size < 4:
        raise ArchitectureError(f"the vgg_two_blocks baseline needs images of at least 4x4, got {image_size}")
    if env_config.reward_source != "trained":
        raise ConfigError(
            "nasgym final trains networks from scratch; drop --reward-source (weight sharing is for searches)"
        )
    data = load_data(env_config)
    # The same train split in every repeat: only the training's randomness changes.
    repeat_configs = [replace(base, seed=base.seed + r, split_seed=base.shuffle_seed) for r in range(repeats)]
    evaluators = [trained_evaluator(env_config, config, data) for config in repeat_configs]  # local, or on Ray
    to_train = sum(evaluator.cached(network) is None for evaluator in evaluators for network in networks.values())
    to_train += repeats if baseline == "vgg_two_blocks" else 0
    results: dict[str, list[Evaluation]] = {name: [] for name in networks}
    with tqdm(total=base.epochs * to_train, desc="final training", unit="epoch", disable=not progress) as bar:
        for evaluator in evaluators:
            evaluations = evaluator.evaluate(list(networks.values()), on_epoch=lambda _epoch: bar.update())
            for name, evaluation in zip(networks, evaluations, strict=True):
                results[name].append(evaluation)
            if baseline == "vgg_two_blocks":
                results.setdefault("vgg_two_blocks", []).append(_train_vgg_two_blocks(evaluator, data, bar))
            evaluator.close()
    final = [
        FinalResult(name, str(network), results[name], network.spatial_sizes(image_size))
        for name, network in networks.items()
    ]
    if baseline == "vgg_two_blocks":
        final.append(FinalResult("vgg_two_blocks", "VGG19 blocks 1-2, dense 4096-4096", results["vgg_two_blocks"]))
    return final


def _train_vgg_two_blocks(evaluator: TrainingEvaluator | RayEvaluator, data: ImageData, bar: tqdm) -> Evaluation:
    """NasGym's VGG is no architecture of the space, so the reward cache (keyed by NSC) does not hold it: it is
    trained by the evaluator's trainer directly, every time."""
    config = evaluator.config.network

    def build(_dropout_generator: torch.Generator | None = None) -> nn.Module:
        return vgg_two_blocks(data.n_classes, data.image_size, config)

    return evaluator.trainer.train_model("vgg_two_blocks", build, _parameters(build), on_epoch=lambda _: bar.update())
