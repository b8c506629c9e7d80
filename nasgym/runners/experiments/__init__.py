"""What users do after a search: compare agents, transfer a policy, train a found network longer, plot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nasgym.core.config import LOOKUP_SOURCES, EnvConfig
from nasgym.core.datasets import ImageData, load_dataset
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.lookup.source import shared_table_defaults
from nasgym.core.ray_backend import RayEvaluator
from nasgym.core.reward_sources import build_evaluator
from nasgym.core.training import TrainConfig
from nasgym.runners.envs import NAS_V0, configs


def trained_evaluator(
    config: EnvConfig, train_config: TrainConfig, data: ImageData | None = None
) -> TrainingEvaluator | RayEvaluator:
    """``build_evaluator`` for ``reward_source='trained'`` (the caller has checked it), typed as what it builds: the
    runners that train from scratch use its data, device and trainer."""
    evaluator = build_evaluator(config, train_config, data)
    if not isinstance(evaluator, (TrainingEvaluator, RayEvaluator)):
        raise ConfigError(f"reward_source={config.reward_source!r} trains no networks from scratch")
    return evaluator


def check_datasets(names: Iterable[str], env_options: dict[str, Any], env_id: str = NAS_V0) -> None:
    """Load every dataset an experiment needs before its first run, so that an unknown or unprepared one
    fails in seconds with its one-line error instead of after hours of runs on the others."""
    for name in dict.fromkeys(names):
        config, _ = configs(env_id, {**env_options, "dataset": name})  # bad options (or a missing table) fail here too
        if config.reward_source in LOOKUP_SOURCES:  # a table needs no images
            continue
        load_dataset(name, config.image_size, config.max_samples, config.data_dir, resize=config.resize)


def with_shared_tables(names: Iterable[str], env_options: dict[str, Any]) -> dict[str, Any]:
    """``env_options`` with the table keywords that suit every dataset at once (where rewards come from tables and the
    options leave them open), so that a policy carried from one dataset to the next keeps its observation shape."""
    source = env_options.get("reward_source")
    if source not in LOOKUP_SOURCES:
        return env_options
    shared = shared_table_defaults(list(dict.fromkeys(names)), env_options.get("table_path"), source)
    return {**shared, **env_options}
