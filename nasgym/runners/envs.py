"""The environments a search runs by name (``--env``), and what runners need to know that differs between them."""

from __future__ import annotations

from typing import Any

from nasgym.core import settings
from nasgym.core.config import EnvConfig, make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig
from nasgym.core.zophle import config as zophle_config
from nasgym.core.zophle.space import is_zophle_text

NAS_V0, ZOPHLE = "NAS-v0", "NAS-ZophLe-v0"
ENV_IDS = (NAS_V0, ZOPHLE)


def check_env_id(env_id: str) -> str:
    if env_id not in ENV_IDS:
        raise ConfigError(f"unknown environment {env_id!r}; known: {', '.join(ENV_IDS)}")
    return env_id


def configs(env_id: str, options: dict[str, Any]) -> tuple[EnvConfig, TrainConfig]:
    """The environment and child-training settings ``gym.make(env_id, **options)`` uses, checked."""
    if check_env_id(env_id) == ZOPHLE:
        _, env_config, train_config = zophle_config.make_configs(options)
        return env_config, train_config
    return make_configs(options)


def flat_settings(env_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """Every keyword of ``env_id`` with its default filled in, as one flat dictionary."""
    env_config, train_config = configs(env_id, options)
    values = {**settings.flatten(env_config), **settings.flatten(train_config)}
    if env_id == ZOPHLE:
        own, _, _ = zophle_config.make_configs(options)
        values = {key: value for key, value in values.items() if key not in zophle_config.CHAIN_ONLY}
        values.update(settings.flatten(own))
    return values


def own_settings(env_id: str) -> list[settings.Setting]:
    """The keywords only ``env_id`` has (none for NAS-v0)."""
    return settings.settings_of(zophle_config.ZophLeConfig) if env_id == ZOPHLE else []


def accepted(env_id: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without the keywords only the other environment has: a protocol written for NAS-v0 (its
    ``observation``, say) then serves NAS-ZophLe-v0 too, while keywords a user gives still reach the env and fail."""
    if env_id == ZOPHLE:
        return {k: v for k, v in options.items() if k not in zophle_config.CHAIN_ONLY}
    own = {s.name for s in own_settings(ZOPHLE)}
    return {k: v for k, v in options.items() if k not in own}


def network_name(architecture: str) -> str:
    """The network an architecture string's reward belongs to (a chain's terminal layer dropped)."""
    if is_zophle_text(architecture):
        return architecture
    return str(Architecture.parse(architecture).network)
