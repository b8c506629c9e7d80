"""Zoph & Le's space as a ``nasgym.core.spaces.SearchSpace`` named ``"zophle"``: what the evaluator, the trainer
and the runners use of it, so none of them imports this package."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from nasgym.core import settings
from nasgym.core.config import EnvConfig
from nasgym.core.errors import ConfigError
from nasgym.core.network import NetworkConfig
from nasgym.core.space_model import SpaceModel
from nasgym.core.spaces import SearchSpace
from nasgym.core.training import TrainConfig
from nasgym.core.zophle.config import CHAIN_ONLY, ZophLeConfig, make_configs
from nasgym.core.zophle.network import ZophLeNetwork, parameter_count
from nasgym.core.zophle.space import ZophLeArchitecture, is_zophle_text, schedule
from nasgym.core.zophle.space_model import ZophLeSpaceModel


class ZophLeSpace(SearchSpace):
    """Networks written token by token (``ZophLeArchitecture``), trained as ``ZophLeNetwork``."""

    name = ZophLeSpaceModel.name
    env_id = "NAS-ZophLe-v0"
    key_space = ZophLeArchitecture.space
    refused_keywords: Mapping[str, str] = CHAIN_ONLY
    fixed_keywords: Mapping[str, Any] = {"reward": "final"}  # a layer's tokens alone are no network to reward
    has_curriculum = True
    has_vector_env = False
    reward_sources = frozenset({"trained"})  # no supernet, no tables of this space
    action_tokens: tuple[str, ...] | None = None  # an action is one token of a layer, not a layer

    def key_payload(self, network: ZophLeArchitecture) -> list[list[int]]:
        """Per layer ``[height, width, filters, stride, *inputs]`` (``ZophLeArchitecture.encoding``)."""
        return network.encoding()

    def build(
        self,
        network: ZophLeArchitecture,
        n_classes: int,
        image_size: int,
        config: NetworkConfig,
        in_channels: int = 3,
        dropout_generator: torch.Generator | None = None,
    ) -> nn.Module:
        """No dropout layer, so no generator for one."""
        return ZophLeNetwork(network.layers, n_classes, image_size, config, in_channels)

    def parameter_count(
        self, network: ZophLeArchitecture, n_classes: int, image_size: int, config: NetworkConfig
    ) -> int:
        """Independent of the image size ("same" padding, global pooling) and of ``config`` (no dense layer)."""
        return parameter_count(network.layers, n_classes)

    def parse(self, text: str) -> ZophLeArchitecture:
        return ZophLeArchitecture.parse(text)

    def claims_text(self, text: str) -> bool:
        return is_zophle_text(text)

    def network_name(self, text: str) -> str:
        """The text itself: a network has no terminal token here."""
        return text

    def make_configs(self, options: dict[str, Any]) -> tuple[ZophLeConfig, EnvConfig, TrainConfig]:
        return make_configs(options)

    def own_settings(self) -> list[settings.Setting]:
        return settings.settings_of(ZophLeConfig)

    def space_model(self, options: dict[str, Any]) -> ZophLeSpaceModel:
        own, _, _ = make_configs(options)
        return ZophLeSpaceModel(own.layers, own.layers, own.strides)

    def sample(self, rng: np.random.Generator, model: SpaceModel) -> ZophLeArchitecture:
        """Every token of the current depth uniform among its choices (each choice is valid here)."""
        if not isinstance(model, ZophLeSpaceModel):
            raise ConfigError(f"the zophle space samples with its own space model, not {model.name!r}'s")
        tokens = schedule(model.layers, model.strides)
        return model.architecture([int(rng.integers(token.choices)) for token in tokens])


SPACE = ZophLeSpace()
