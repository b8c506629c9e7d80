"""Search spaces behind one interface, found by name: the rest of nasgym never asks which space a network is of.

``SearchSpace`` says what a space provides: its networks as reward-cache payloads, as torch modules and as
parameter counts, parsed from text and drawn at random; its agents' view (``space_model``: action masks and
observation encodings); its environment id and keywords. The chain space of ``NAS-v0`` (``"chain"``) and Zoph &
Le's (``"zophle"``) implement it. A network names its space (``network.space``, a class attribute), so the
evaluator and the trainer find the space from the network alone.

The registry holds entry points (``"module:attribute"``), loaded on first use as Gymnasium's ``register`` does, so
the space packages import this module and never the other way round. A third space is one package implementing
``SearchSpace`` plus one ``register`` call (or a line in ``_ENTRY_POINTS``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.reward_cache import reward_key

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from nasgym.core import settings
    from nasgym.core.network import NetworkConfig
    from nasgym.core.space_model import SpaceModel
    from nasgym.core.training.config import TrainConfig

DEFAULT = "chain"
"""The space a text claimed by no space is read in (its parse error then says what a chain network looks like)."""


@runtime_checkable
class SearchSpace(Protocol):
    """What nasgym needs of a search space. Networks are the space's own immutable objects with a ``space`` class
    attribute naming it, a ``network`` property (what the reward belongs to) and a ``str`` that ``parse`` reads."""

    name: str
    """Registry name, also the ``name`` of its ``SpaceModel`` and each network's ``space``."""
    env_id: str
    """The Gymnasium id of its environment."""
    key_space: str | None
    """The reward key's ``space`` field; None for the chain space, whose keys predate a second space."""
    refused_keywords: Mapping[str, str]
    """``NAS-v0`` keywords its environment refuses, and why."""
    fixed_keywords: Mapping[str, Any]
    """Keywords its environment takes with one value only (a command line's other default is dropped)."""
    has_curriculum: bool
    """Whether its environment's depth can grow during a search (``set_depth``)."""
    has_vector_env: bool
    """Whether ``gym.make_vec`` runs copies of its environment as one batch."""
    reward_sources: frozenset[str]
    """The ``reward_source`` values its environment serves (weight sharing needs a supernet of the space)."""
    action_tokens: tuple[str, ...] | None
    """A name per action when each action is one fixed layer (reports show the share of each); None otherwise."""

    def key_payload(self, network: Any) -> Any:
        """The JSON-able encoding of ``network`` in its reward key (the key's ``nsc`` field)."""
        ...

    def build(
        self,
        network: Any,
        n_classes: int,
        image_size: int,
        config: NetworkConfig,
        in_channels: int = 3,
        dropout_generator: torch.Generator | None = None,
    ) -> nn.Module:
        """The child network as a torch module for ``in_channels`` x ``image_size`` x ``image_size`` images."""
        ...

    def parameter_count(self, network: Any, n_classes: int, image_size: int, config: NetworkConfig) -> int:
        """Trainable parameters of ``build``'s module, computed without building it."""
        ...

    def parse(self, text: str) -> Any:
        """The network ``str(network)`` wrote."""
        ...

    def claims_text(self, text: str) -> bool:
        """Whether an architecture string (a logged row) is written in this space."""
        ...

    def network_name(self, text: str) -> str:
        """The name of the network an architecture string's reward belongs to."""
        ...

    def make_configs(self, options: dict[str, Any]) -> tuple[Any, Any, TrainConfig]:
        """``gym.make`` keywords split and checked: the space's own config (None without one), the environment's
        ``EnvConfig`` and the child training's. (``EnvConfig`` is not named here: ``nasgym.core.config`` reaches the
        trainer, which imports this module.)"""
        ...

    def own_settings(self) -> list[settings.Setting]:
        """The keywords only this space's environment has."""
        ...

    def space_model(self, options: dict[str, Any]) -> SpaceModel:
        """The agents' view of the space ``gym.make(env_id, **options)`` searches: masks, encodings, progress."""
        ...

    def sample(self, rng: np.random.Generator, model: SpaceModel) -> Any:
        """A valid network of ``model``'s space drawn at random (a network a reward belongs to: the weight-sharing
        warm-up and ``nasgym fidelity`` draw them)."""
        ...


class Network(Protocol):
    """A network of a registered search space (``Architecture``, ``ZophLeArchitecture``): immutable and hashable,
    its ``space`` a class attribute naming the space, ``network`` what its reward belongs to, ``str`` what the
    space's ``parse`` reads."""

    space: ClassVar[str]

    @property
    def network(self) -> Network: ...

    def __hash__(self) -> int: ...


_ENTRY_POINTS: dict[str, str] = {
    "chain": "nasgym.core.chain_space:SPACE",
    "zophle": "nasgym.core.zophle.search_space:SPACE",
}
_LOADED: dict[str, SearchSpace] = {}


def register(name: str, space: SearchSpace | str) -> None:
    """Make ``space`` (or its entry point ``"module:attribute"``) known as ``name``; a name registers once."""
    if name in _ENTRY_POINTS or name in _LOADED:
        raise ConfigError(f"a search space named {name!r} is registered already")
    if isinstance(space, str):
        _ENTRY_POINTS[name] = space
    else:
        _check(name, space)
        _LOADED[name] = space


def unregister(name: str) -> None:
    """Forget ``name`` (a space registered for a test)."""
    _ENTRY_POINTS.pop(name, None)
    _LOADED.pop(name, None)


def names() -> tuple[str, ...]:
    """Every registered space, in registration order."""
    return tuple(dict.fromkeys([*_ENTRY_POINTS, *_LOADED]))


def get(name: str) -> SearchSpace:
    """The space registered as ``name``."""
    if name not in _LOADED:
        if name not in _ENTRY_POINTS:
            raise ConfigError(f"unknown search space {name!r}; known: {', '.join(names())}")
        module, _, attribute = _ENTRY_POINTS[name].partition(":")
        _LOADED[name] = _check(name, getattr(importlib.import_module(module), attribute))
    return _LOADED[name]


def _check(name: str, space: Any) -> SearchSpace:
    if not isinstance(space, SearchSpace) or space.name != name:
        raise ConfigError(f"{space!r} registered as {name!r} is no SearchSpace of that name")
    return space


def of(network: Any) -> SearchSpace:
    """The space ``network`` belongs to (its ``space`` class attribute)."""
    if not is_network(network):
        raise ArchitectureError(
            f"expected a network of a search space, got {type(network).__name__} {network!r}; parse text with "
            "Architecture.parse('c3-m2')"
        )
    return get(type(network).space)


def is_network(item: Any) -> bool:
    """Whether ``item`` is a network of a registered space."""
    name = getattr(type(item), "space", None)
    return isinstance(name, str) and name in names()


def of_env(env_id: str) -> SearchSpace:
    """The space environment ``env_id`` searches."""
    for name in names():
        if get(name).env_id == env_id:
            return get(name)
    raise ConfigError(f"unknown environment {env_id!r}; known: {', '.join(env_ids())}")


def env_ids() -> tuple[str, ...]:
    """Every space's environment id, in registration order."""
    return tuple(get(name).env_id for name in names())


def of_text(text: str) -> SearchSpace:
    """The space an architecture string is written in (``DEFAULT`` when none claims it)."""
    return next((get(name) for name in names() if get(name).claims_text(text)), get(DEFAULT))


def network_key(dataset_fingerprint: str, network: Any, settings: dict) -> str:
    """The reward cache key of a network of any space: its space's ``key_payload`` in the key's ``nsc`` field and its
    ``key_space``, so each space's keys are what they have always been."""
    space = of(network)
    return reward_key(dataset_fingerprint, space.key_payload(network), settings, space=space.key_space)
