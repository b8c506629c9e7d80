"""The keywords of ``NAS-ZophLe-v0``: its own (``ZophLeConfig``), NAS-v0's environment keywords that mean the same
here, and every child-training keyword (``TrainConfig``). Defaults are the fields' own, written once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasgym.core import settings
from nasgym.core.config import EnvConfig
from nasgym.core.errors import ConfigError
from nasgym.core.training import TrainConfig

CHAIN_ONLY = {
    "observation": "the observation is always the flat token vector",
    "max_layers": "the depth is `layers`",
}
"""NAS-v0 keywords this environment refuses, and why."""
MAX_LAYERS = 100
"""``layers`` at most: several times the depth Zoph & Le's curriculum searched (a few dozen layers at most). The anchor
tokens make an episode and the observation grow with the square of the depth and the action masks with its cube, so
100 layers already take a second to set up; a bound refuses a typo in one line instead of exhausting memory."""


@dataclass(frozen=True)
class ZophLeConfig:
    """What shapes Zoph & Le's space."""

    layers: int = 6
    """Layers per network; the observation has room for this many (a curriculum may start lower, `set_depth`)."""
    strides: bool = True
    """Search a stride {1, 2, 3} per layer (Zoph & Le searched with and without); False: every stride is 1."""

    def __post_init__(self) -> None:
        settings.check_fields(self)
        if self.layers < 1:
            raise ConfigError(f"layers must be at least 1, got {self.layers}")
        if self.layers > MAX_LAYERS:
            raise ConfigError(f"layers must be at most {MAX_LAYERS}, got {self.layers:,}")


def env_settings() -> list[settings.Setting]:
    """The EnvConfig keywords that apply here (``reward`` only takes 'final')."""
    return [s for s in settings.settings_of(EnvConfig) if s.name not in CHAIN_ONLY]


def all_settings() -> list[settings.Setting]:
    """Every ``NAS-ZophLe-v0`` keyword, for the docstring's table."""
    return [*settings.settings_of(ZophLeConfig), *env_settings(), *settings.settings_of(TrainConfig)]


def make_configs(options: dict[str, Any]) -> tuple[ZophLeConfig, EnvConfig, TrainConfig]:
    """Split ``gym.make`` keywords into the space's, the environment's and the child training's, each checked."""
    own = {s.name for s in settings.settings_of(ZophLeConfig)}
    env = {s.name for s in env_settings()}
    train = {s.name for s in settings.settings_of(TrainConfig)}
    for name in options:
        if name in CHAIN_ONLY:
            raise ConfigError(f"NAS-ZophLe-v0 has no {name!r} keyword: {CHAIN_ONLY[name]}")
        if name not in own | env | train:
            raise settings.unknown_name_error(name, own | env | train, "NAS-ZophLe-v0 keyword")
    if options.get("reward", "final") != "final":
        raise ConfigError(
            f"NAS-ZophLe-v0 rewards only the finished network (reward='final'), got reward={options['reward']!r}: "
            "a layer's tokens alone are no network to train"
        )
    if options.get("reward_source", "trained") != "trained":
        raise ConfigError(
            f"NAS-ZophLe-v0 trains each network from scratch (reward_source='trained'), got "
            f"reward_source={options['reward_source']!r}: weight sharing serves NAS-v0's chain space only"
        )
    zophle = settings.build(ZophLeConfig, {k: v for k, v in options.items() if k in own})
    env_config = settings.build(EnvConfig, {**{k: v for k, v in options.items() if k in env}, "reward": "final"})
    train_config = settings.build(TrainConfig, {k: v for k, v in options.items() if k in train})
    return zophle, env_config, train_config
