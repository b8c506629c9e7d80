"""What users do after a search: compare agents, transfer a policy, train a found network longer, plot."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nasgym.core.config import LOOKUP_SOURCES, EnvConfig
from nasgym.core.datasets import ImageData, load_dataset
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.lookup.source import shared_table_defaults
from nasgym.core.ray_backend import RayEvaluator
from nasgym.core.reward_sources import build_evaluator
from nasgym.core.training import TrainConfig
from nasgym.runners.envs import EnvSettings


def trained_evaluator(
    config: EnvConfig, train_config: TrainConfig, data: ImageData | None = None
) -> TrainingEvaluator | RayEvaluator:
    """``build_evaluator`` for ``reward_source='trained'`` (the caller has checked it), typed as what it builds: the
    runners that train from scratch use its data, device and trainer."""
    evaluator = build_evaluator(config, train_config, data)
    if not isinstance(evaluator, (TrainingEvaluator, RayEvaluator)):
        raise ConfigError(f"reward_source={config.reward_source!r} trains no networks from scratch")
    return evaluator


def uses_tables(options: Mapping[str, Any]) -> bool:
    """Whether ``gym.make`` keywords take their rewards (and, unless given, image size and depth) from a table."""
    return options.get("reward_source") in LOOKUP_SOURCES


class ParsedOptions(Mapping[str, EnvSettings]):
    """``gym.make`` keywords per name (a dataset, an agent), each parsed once into ``EnvSettings``.

    Keywords that read a look-up table are checked without it when made (every keyword known and well typed) and
    parsed on first use: the table fills in image size and depth, may not be there until the experiment runs, and the
    runner first shares one depth and image size across the datasets (``with_shared_tables``)."""

    def __init__(self, env_id: str, keywords: dict[str, dict[str, Any]]) -> None:
        self.env_id = env_id
        self._keywords = keywords
        self._parsed: dict[str, EnvSettings] = {}
        for name, options in keywords.items():
            if uses_tables(options):
                EnvSettings.parse(env_id, {**options, "reward_source": "trained"})
            else:
                self._parsed[name] = EnvSettings.parse(env_id, options)

    def __getitem__(self, name: str) -> EnvSettings:
        if name not in self._parsed:
            self._parsed[name] = EnvSettings.parse(self.env_id, self._keywords[name])
        return self._parsed[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keywords)

    def __len__(self) -> int:
        return len(self._keywords)


def checked_options(env_id: str, options: Any) -> dict[str, Any]:
    """``options`` if they are a keyword dictionary (settings read from JSON may hold anything)."""
    if not isinstance(options, dict):
        raise ConfigError(f"env_options must be a dict of {env_id} keywords, got {type(options).__name__}")
    return options


class ExperimentEnv:
    """An experiment's environment options, checked when its settings are made and parsed once: on each dataset it
    runs, and each agent's (its own keywords on top) for the reward its report names."""

    def __init__(self, env_id: str, options: Any, datasets: Iterable[str], agents: dict[str, dict[str, Any]]) -> None:
        options = checked_options(env_id, options)
        self.uses_tables = uses_tables(options)
        """Whether rewards come from look-up tables (``reward_source`` 'table' or 'surrogate')."""
        self.datasets = ParsedOptions(env_id, {name: {**options, "dataset": name} for name in dict.fromkeys(datasets)})
        self.agents = ParsedOptions(env_id, agents)


class ParsedOnce:
    """A mutable settings dataclass whose cached ``typed`` is dropped when a field gets a new value, so the next read
    parses what the runner changed (``run_bench`` rewrites ``env_options`` with the shared table keywords).
    Change fields by assignment or ``dataclasses.replace``, not in place. The options are parsed when the settings
    are made, so a bad one fails there rather than when the experiment runs."""

    typed: Any

    def __post_init__(self) -> None:
        self.typed  # noqa: B018 -- parse now

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "typed" and (name not in self.__dict__ or self.__dict__[name] != value):
            self.__dict__.pop("typed", None)
        super().__setattr__(name, value)


def check_datasets(datasets: Iterable[EnvSettings]) -> None:
    """Load every dataset an experiment needs before its first run, so that an unknown or unprepared one
    fails in seconds with its one-line error instead of after hours of runs on the others."""
    for typed in datasets:  # parsing a table's keywords (a missing table) has failed by now
        config = typed.env
        if config.reward_source in LOOKUP_SOURCES:  # a table needs no images
            continue
        load_dataset(config.dataset, config.image_size, config.max_samples, config.data_dir, resize=config.resize)


def with_shared_tables(names: Iterable[str], env_options: dict[str, Any]) -> dict[str, Any]:
    """``env_options`` with the table keywords that suit every dataset at once (where rewards come from tables and the
    options leave them open), so that a policy carried from one dataset to the next keeps its observation shape."""
    if not uses_tables(env_options):
        return env_options
    source = env_options["reward_source"]
    shared = shared_table_defaults(list(dict.fromkeys(names)), env_options.get("table_path"), source)
    return {**shared, **env_options}
