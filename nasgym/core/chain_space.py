"""``NAS-v0``'s chain space as a ``nasgym.core.spaces.SearchSpace``: the one place that ties its architectures
(``search_space``), child networks (``network``), agents' view (``space_model``), sampler (``sampling``) and
keywords (``config``) together under the name ``"chain"``."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from nasgym.core import settings
from nasgym.core.config import EnvConfig, make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.network import NetworkConfig, build_network, parameter_count
from nasgym.core.sampling import random_network
from nasgym.core.search_space import ACTION_TOKENS, Architecture
from nasgym.core.space_model import ChainSpaceModel, SpaceModel
from nasgym.core.spaces import SearchSpace
from nasgym.core.training import TrainConfig

_TOKEN_STARTS = frozenset("cmat")


class ChainSpace(SearchSpace):
    """NasGym's chain-structured networks (``Architecture``)."""

    name = ChainSpaceModel.name
    env_id = "NAS-v0"
    key_space = None  # keys written before a second space existed carry no space, and still answer
    refused_keywords: Mapping[str, str] = {}
    fixed_keywords: Mapping[str, Any] = {}
    has_curriculum = False
    has_vector_env = True
    reward_sources = frozenset(typing.get_args(typing.get_type_hints(EnvConfig)["reward_source"]))  # all NAS-v0 has
    action_tokens: tuple[str, ...] | None = ACTION_TOKENS

    def key_payload(self, network: Architecture) -> list[list[int]]:
        """The NSC matrix, unpadded: what NAS-v0's keys have always held."""
        return network.nsc().tolist()

    def build(
        self,
        network: Architecture,
        n_classes: int,
        image_size: int,
        config: NetworkConfig,
        in_channels: int = 3,
        dropout_generator: torch.Generator | None = None,
    ) -> nn.Module:
        return build_network(network, n_classes, image_size, config, in_channels, dropout_generator)

    def parameter_count(self, network: Architecture, n_classes: int, image_size: int, config: NetworkConfig) -> int:
        return parameter_count(network, n_classes, image_size, config)

    def parse(self, text: str) -> Architecture:
        return Architecture.parse(text)

    def claims_text(self, text: str) -> bool:
        """Empty, or starting (after separators) with a layer token's letter."""
        stripped = text.replace(",", " ").replace("-", " ").strip().lower()
        return not stripped or stripped[0] in _TOKEN_STARTS

    def network_name(self, text: str) -> str:
        """The terminal layer dropped: 'c3-m2' and 'c3-m2-t' are one network with one reward."""
        return str(Architecture.parse(text).network)

    def make_configs(self, options: dict[str, Any]) -> tuple[None, EnvConfig, TrainConfig]:
        return None, *make_configs(options)

    def own_settings(self) -> list[settings.Setting]:
        """None: every keyword of NAS-v0 is an ``EnvConfig`` or ``TrainConfig`` field."""
        return []

    def space_model(self, options: dict[str, Any]) -> ChainSpaceModel:
        _, env_config, _ = self.make_configs(options)
        return ChainSpaceModel(env_config.image_size, env_config.max_layers, env_config.observation)

    def sample(self, rng: np.random.Generator, model: SpaceModel) -> Architecture:
        """``sampling.random_network``: a uniform depth, then layers uniform among the valid ones."""
        if not isinstance(model, ChainSpaceModel):
            raise ConfigError(f"the chain space samples with its own space model, not {model.name!r}'s")
        return random_network(rng, model.image_size, model.max_steps)


SPACE = ChainSpace()
