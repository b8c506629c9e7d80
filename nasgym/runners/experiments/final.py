"""Train a found architecture longer, beside a shortened VGG19, the way NasGym reports its best networks.

NasGym's final protocol, as this library runs it (the paper names its parts, not every constant):
filters doubling from one convolution to the next (32, 64, ... capped at 512), 100 epochs, and an
exponentially decaying learning rate (x0.95 after every epoch). Both networks are trained on the same
2/3 split and scored on the same held-out 1/3, with the reward cache answering a repeated run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tqdm.auto import tqdm

from nasgym.core.config import make_configs
from nasgym.core.errors import ArchitectureError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.search_space import Architecture

VGG19_SHORT = Architecture.parse("c3-c3-m2-c3-c3-m2-c3-c3-c3-c3-m2")
"""VGG19's first three blocks (2, 2 and 4 3x3 convolutions, each block closed by a 2x2 max-pool), in this
search space's layers (no padding), so it is built, trained and scored exactly like a found network."""

FINAL_PROTOCOL: dict[str, Any] = {"epochs": 100, "lr_decay_epochs": 1, "lr_decay_factor": 0.95, "filter_growth": 2.0}
"""The environment options that turn the search-time protocol into the final one."""


@dataclass(frozen=True)
class FinalResult:
    name: str
    evaluation: Evaluation
    spatial_sides: list[int]


def train_final(
    architecture: Architecture, dataset: str, env_options: dict[str, Any], baseline: bool = True, progress: bool = True
) -> list[FinalResult]:
    """Train ``architecture`` (and the VGG19 baseline) with ``env_options`` and return both results."""
    env_config, train_config = make_configs({**env_options, "dataset": dataset})
    evaluator = TrainingEvaluator.from_config(env_config, train_config)
    image_size = env_config.image_size
    networks = {"found": architecture.network}
    if baseline:
        networks["vgg19_short"] = VGG19_SHORT
    for name, network in networks.items():
        if not network.is_valid(image_size, max_layers=len(network)):
            raise ArchitectureError(
                f"{name} network {network} does not fit {image_size}x{image_size} images "
                f"(spatial sides {network.spatial_sizes(image_size)}); use a larger --image-size"
            )
    to_train = sum(evaluator.cached(network) is None for network in networks.values())
    epochs = train_config.epochs * to_train
    if to_train:
        evaluator.prepare()
    with tqdm(total=epochs, desc="final training", unit="epoch", disable=not progress) as bar:
        evaluations = evaluator.evaluate(list(networks.values()), on_epoch=lambda _epoch: bar.update())
    evaluator.close()
    return [
        FinalResult(name, evaluation, network.spatial_sizes(image_size))
        for (name, network), evaluation in zip(networks.items(), evaluations, strict=True)
    ]
