"""``build_table``: train a plan's networks with the environment's own trainer and append each learning curve to a
table file, resuming what a killed build left.

A table entry is the environment's live reward for the same network, settings and training seed: the same
``ChildTrainer`` on the same split trains it, and the accuracy after epoch e is what a training of ``epochs=e``
returns (``ChildTrainer.learning_curve``). The header records everything the reward cache keys on (the dataset's
fingerprint, every training setting and the reward-code version), so a look-up answers only the settings it was
built with.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from tqdm.auto import tqdm

from nasgym import __version__
from nasgym.core import ray_backend
from nasgym.core.config import EnvConfig
from nasgym.core.datasets import ImageData
from nasgym.core.evaluator import load_data
from nasgym.core.lookup.plan import TablePlan
from nasgym.core.lookup.source import table_settings
from nasgym.core.lookup.table import COLUMNS, TABLE_FORMAT, TABLE_FORMAT_VERSION, Entry, TableFile
from nasgym.core.network import flops
from nasgym.core.reward_cache import REWARD_CODE_VERSION
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer, LearningCurve, TrainConfig
from nasgym.core.training.trainer import split_for


def table_header(data: ImageData, config: EnvConfig, train_config: TrainConfig, plan: TablePlan) -> dict[str, Any]:
    split = split_for(data, train_config)
    return {
        "format": TABLE_FORMAT,
        "format_version": TABLE_FORMAT_VERSION,
        "nasgym_version": __version__,
        "reward_code_version": REWARD_CODE_VERSION,
        "columns": list(COLUMNS),
        "dataset": data.name,
        "dataset_fingerprint": data.fingerprint,
        "n_classes": data.n_classes,
        "images": len(data.labels),
        "image_size": config.image_size,
        "resize": config.resize,
        "max_samples": config.max_samples,
        "max_layers": config.max_layers,
        "epochs": train_config.epochs,
        "settings": table_settings(train_config, config.device),
        "reward_images": len(split.reward),
        "test_images": len(split.test),
        "plan": plan.header(),
    }


def entry_of(network: Architecture, seed: int, curve: LearningCurve, data: ImageData, config: TrainConfig) -> Entry:
    evaluation = curve.evaluation
    return Entry(
        str(network),
        seed,
        curve.reward_correct,
        curve.test_correct,
        curve.seconds,
        curve.score_seconds,
        evaluation.parameters,
        flops(network, data.n_classes, data.image_size, config.network),
        evaluation.failure,
    )


def build_table(
    path: str | os.PathLike,
    config: EnvConfig,
    train_config: TrainConfig,
    plan: TablePlan | None = None,
    *,
    limit: int | None = None,
    progress: bool = True,
    data: ImageData | None = None,
) -> TableFile:
    """Train the plan's networks not in ``path`` yet (at most ``limit`` of them) and append each as it finishes.

    The file is created with its header; an existing one must have the same header and is resumed. With
    ``config.compute.backend == 'ray'`` the trainings run as Ray tasks (``ray_*`` settings), appended as they come.
    """
    plan = plan or TablePlan()
    data = data or load_data(config)
    table = TableFile(path, table_header(data, config, train_config, plan))
    jobs = [(n, s) for n, s in plan.jobs(config.image_size, config.max_layers) if (str(n), s) not in table.entries]
    jobs = jobs[:limit] if limit is not None else jobs
    runs = _ray_curves if config.compute.backend == "ray" else _local_curves
    best = max((e.reward_correct[-1] for e in table.entries.values() if e.reward_correct), default=0)
    with tqdm(total=len(jobs), desc=f"table {data.name}", unit="net", disable=not progress or None) as bar:
        for network, seed, curve in runs(jobs, data, config, train_config):
            entry = entry_of(network, seed, curve, data, train_config)
            table.append(entry)
            if entry.reward_correct:
                best = max(best, entry.reward_correct[-1])
            bar.set_postfix(best=f"{best / table.header['reward_images']:.3f}", last=str(network)[:24])
            bar.update()
    return table


def _local_curves(
    jobs: list[tuple[Architecture, int]], data: ImageData, config: EnvConfig, train_config: TrainConfig
) -> Iterator[tuple[Architecture, int, LearningCurve]]:
    trainers: dict[int, ChildTrainer] = {}
    for network, seed in jobs:
        if seed not in trainers:  # the training seed also seeds the split, so each seed has its own trainer
            trainers[seed] = ChildTrainer(data, dataclasses.replace(train_config, seed=seed), config.device)
        yield network, seed, trainers[seed].learning_curve(network)


def _ray_curves(
    jobs: list[tuple[Architecture, int]], data: ImageData, config: EnvConfig, train_config: TrainConfig
) -> Iterator[tuple[Architecture, int, LearningCurve]]:
    yield from ray_backend.learning_curves(jobs, data, config, train_config)
