"""The environments a search runs by name (``--env``), and what runners need to know that differs between them.

Every answer comes from the environment's search space (``nasgym.core.spaces``), so a new space's environment
is known here once its space is registered."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from nasgym.core import settings, spaces
from nasgym.core.config import EnvConfig
from nasgym.core.training import TrainConfig

NAS_V0 = spaces.get(spaces.DEFAULT).env_id
"""The default environment (the chain space's)."""
ZOPHLE = spaces.get("zophle").env_id
"""Zoph & Le's environment, which the command line's ``--layers``/``--strides`` group names."""
ENV_IDS = spaces.env_ids()
"""The environments of the spaces registered when this module was imported (``check_env_id`` asks the registry)."""


def check_env_id(env_id: str) -> str:
    spaces.of_env(env_id)  # a ConfigError naming the known ones
    return env_id


@dataclass(frozen=True)
class EnvSettings:
    """The settings ``gym.make(env_id, **options)`` runs with, parsed and checked once: runners read these, and keep
    the keyword dictionary only as what run.json stores."""

    env_id: str
    env: EnvConfig
    train: TrainConfig
    own: Any = None
    """The space's own config (``NAS-ZophLe-v0``'s layers and strides); None for NAS-v0."""

    @classmethod
    def parse(cls, env_id: str, options: dict[str, Any]) -> EnvSettings:
        own, env_config, train_config = spaces.of_env(env_id).make_configs(options)
        return cls(env_id, env_config, train_config, own)

    @property
    def configs(self) -> tuple[EnvConfig, TrainConfig]:
        return self.env, self.train

    def flat(self) -> dict[str, Any]:
        """Every keyword of the environment with its value (defaults filled in), as one flat dictionary."""
        space = spaces.of_env(self.env_id)
        values = {**settings.flatten(self.env), **settings.flatten(self.train)}
        values = {key: value for key, value in values.items() if key not in space.refused_keywords}
        if self.own is not None:
            values.update(settings.flatten(self.own))
        return values


def configs(env_id: str, options: dict[str, Any]) -> tuple[EnvConfig, TrainConfig]:
    """The environment and child-training settings ``gym.make(env_id, **options)`` uses, checked."""
    return EnvSettings.parse(env_id, options).configs


def flat_settings(env_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every keyword of ``env_id`` with its default filled in, as one flat dictionary."""
    return EnvSettings.parse(env_id, options).flat()


def own_settings(env_id: str) -> list[settings.Setting]:
    """The keywords only ``env_id`` has (none for NAS-v0)."""
    return spaces.of_env(env_id).own_settings()


def _foreign(env_id: str) -> set[str]:
    """Keywords ``env_id`` refuses: NAS-v0's that its space has no use for, and the other spaces' own."""
    space = spaces.of_env(env_id)
    mine = {s.name for s in space.own_settings()}
    others = {s.name for name in spaces.names() if name != space.name for s in spaces.get(name).own_settings()}
    return set(space.refused_keywords) | (others - mine)


def accepted(env_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the keywords only another environment has: a protocol written for NAS-v0 (its
    ``observation``, say) then serves NAS-ZophLe-v0 too, while keywords a user gives still reach the env and fail."""
    foreign = _foreign(env_id)
    return {k: v for k, v in options.items() if k not in foreign}


def command_line_options(env_id: str, values: dict[str, Any], typed: Collection[str]) -> dict[str, Any]:
    """The flags' ``values`` that ``env_id`` takes: ``accepted``'s, and a default that the env fixes to another
    value dropped (NAS-v0's ``reward``); a flag the user ``typed`` always reaches the env, which may say no."""
    foreign = _foreign(env_id)
    values = {k: v for k, v in values.items() if k in typed or k not in foreign}
    for name, value in spaces.of_env(env_id).fixed_keywords.items():
        if name in values and name not in typed and values[name] != value:
            del values[name]
    return values


def has_curriculum(env_id: str) -> bool:
    """Whether ``env_id``'s depth can grow during a search (``set_depth``)."""
    return spaces.of_env(env_id).has_curriculum


def curriculum_env_ids() -> tuple[str, ...]:
    """The environments a curriculum applies to."""
    return tuple(env_id for env_id in spaces.env_ids() if has_curriculum(env_id))


def has_vector_env(env_id: str) -> bool:
    """Whether ``env_id`` runs ``num_envs`` copies as one batched vector env."""
    return spaces.of_env(env_id).has_vector_env


def network_name(architecture: str) -> str:
    """The network an architecture string's reward belongs to (a chain's terminal layer dropped)."""
    return spaces.of_text(architecture).network_name(architecture)
