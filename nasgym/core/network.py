"""The child network NasGym builds from an architecture: per convolution ReLU -> Conv2d(no padding) -> BatchNorm,
pooling with stride = window, then Flatten -> Linear(dense_units) -> ReLU -> Dropout -> Linear(classes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeVar

import torch
from torch import nn

from nasgym.core import settings
from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.search_space import AVG_POOL, CONV, MAX_POOL, Architecture

MAX_FILTERS = 65_536
"""No convolution gets more filters: 32 times the widest convolution of common image networks (ResNet's 2,048,
VGG's 512), so no sensible setting meets it, yet a bound: a typo (10000000) or a runaway filter_growth is refused in
one line instead of exhausting memory while the child is built."""
MAX_DENSE_UNITS = 1_000_000
"""Units of the dense layer at most: 250 times VGG's 4,096, far above anything a search needs, and a bound for the
same reason."""


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the child network; NasGym's values are the defaults."""

    filters: int = 32
    """Filters of the first convolution (NasGym: 32 for every convolution)."""
    dense_units: int = 1024
    """Units of the dense layer before the classifier (NasGym: 1024)."""
    dropout: float = 0.4
    """Dropout rate after the dense layer (NasGym: 0.4)."""
    filter_growth: float = 1.0
    """Each convolution has this many times the filters of the one before (NasGym's final protocol: 2)."""
    max_filters: int | None = 512
    """Cap for a growing filter count (VGG's widest layer); None: no cap (NasGym's final protocol)."""
    init: Literal["pytorch", "glorot"] = "pytorch"
    """Initial weights: PyTorch's defaults, or `glorot`: Keras' glorot-uniform weights and zero biases (NasGym)."""
    batch_norm: Literal["batch_stats", "running_stats"] = "batch_stats"
    """`batch_stats`: BatchNorm normalises with each batch's statistics while training; `running_stats`: always with
    its running statistics, which then stay at mean 0, variance 1 (epsilon 1e-3, Keras'), so each BatchNorm is a
    learned per-channel scale and shift. The second is what NasGym's Keras BatchNormalization did inside its TF1
    Estimator: it was called without `training=` and nothing set the Keras learning phase."""

    def __post_init__(self) -> None:
        settings.check_fields(self)
        problems = [
            f"{name} must be at least 1, got {value}"
            if value < 1
            else f"{name} must be at most {limit:,}, got {value:,}"
            for name, value, limit in (
                ("filters", self.filters, MAX_FILTERS),
                ("dense_units", self.dense_units, MAX_DENSE_UNITS),
                ("max_filters", 1 if self.max_filters is None else self.max_filters, MAX_FILTERS),
            )
            if not 1 <= value <= limit
        ]
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not (math.isfinite(self.filter_growth) and self.filter_growth > 0):
            problems.append(f"filter_growth must be a positive number, got {self.filter_growth}")
        if problems:
            raise ConfigError("; ".join(problems))

    def conv_filters(self, index: int) -> int:
        """Filters of the ``index``-th convolution (0-based); more than ``MAX_FILTERS`` is a ConfigError."""
        try:
            filters = self.filters * self.filter_growth**index
        except OverflowError:
            filters = math.inf
        if self.max_filters is not None:
            filters = min(filters, max(self.filters, self.max_filters))
        if filters > MAX_FILTERS:
            raise ConfigError(
                f"filter_growth={self.filter_growth} gives convolution {index + 1} {filters:.3g} filters, above the "
                f"limit of {MAX_FILTERS:,}; set max_filters, a smaller filter_growth or fewer max_layers"
            )
        return round(filters)


KERAS_BATCH_NORM_EPSILON = 1e-3


class RunningStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that normalises with its running statistics in training too, and never updates them."""

    def __init__(self, channels: int):
        super().__init__(channels, eps=KERAS_BATCH_NORM_EPSILON)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )


_M = TypeVar("_M", bound=nn.Module)


def glorot_init(model: _M) -> _M:
    """Keras' defaults: glorot-uniform kernels and zero biases for convolutions and dense layers."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


class SeededDropout(nn.Dropout):
    """``nn.Dropout`` whose masks come from its own generator, so trainings that run side by side (or in any
    order) each draw the same masks as when run alone. Without a generator it is plain ``nn.Dropout``.
    """

    def __init__(self, p: float, generator: torch.Generator | None = None):
        super().__init__(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0:
            return super().forward(x)
        keep = 1.0 - self.p
        if keep == 0:
            return x * 0
        # What ATen's dropout computes (bernoulli mask scaled by 1 / keep), drawn from our generator.
        mask = torch.empty_like(x).bernoulli_(keep, generator=self.generator).div_(keep)
        return x * mask


def build_network(
    architecture: Architecture,
    n_classes: int,
    image_size: int,
    config: NetworkConfig = NetworkConfig(),
    in_channels: int = 3,
    dropout_generator: torch.Generator | None = None,
) -> nn.Sequential:
    """ReLU -> Conv(k, stride 1, no padding) -> BN per conv; pooling with stride = window; dense head.

    The ReLU comes before each convolution, as in NasGym's TF1 code, so BN's output is what the next
    layer sees. ``dropout_generator`` gives the dropout layer its own random stream (see ``SeededDropout``).
    """
    sizes = architecture.spatial_sizes(image_size)
    if min(sizes) < 1:
        raise ArchitectureError(f"{architecture} is invalid at image size {image_size}: spatial sides {sizes}")
    layers: list[nn.Module] = []
    channels, convs = in_channels, 0
    for layer in architecture.layers:
        if layer.type == CONV:
            filters = config.conv_filters(convs)
            layers += [
                nn.ReLU(),
                nn.Conv2d(channels, filters, layer.kernel, stride=1, padding=0),
                nn.BatchNorm2d(filters) if config.batch_norm == "batch_stats" else RunningStatsBatchNorm2d(filters),
            ]
            channels, convs = filters, convs + 1
        elif layer.type == MAX_POOL:
            layers.append(nn.MaxPool2d(layer.kernel, stride=layer.kernel))
        elif layer.type == AVG_POOL:
            layers.append(nn.AvgPool2d(layer.kernel, stride=layer.kernel))
    flat = channels * sizes[-1] * sizes[-1]
    layers += [
        nn.Flatten(),
        nn.Linear(flat, config.dense_units),
        nn.ReLU(),
        SeededDropout(config.dropout, dropout_generator),
        nn.Linear(config.dense_units, n_classes),
    ]
    model = nn.Sequential(*layers)
    return glorot_init(model) if config.init == "glorot" else model


def parameter_count(
    architecture: Architecture, n_classes: int, image_size: int, config: NetworkConfig = NetworkConfig()
) -> int:
    """Trainable parameters of the child network, computed without building it."""
    total, channels, convs = 0, 3, 0
    for layer in architecture.layers:
        if layer.type == CONV:
            filters = config.conv_filters(convs)
            total += channels * filters * layer.kernel**2 + filters  # conv weight + bias
            total += 2 * filters  # BN scale + shift
            channels, convs = filters, convs + 1
    side = architecture.spatial_sizes(image_size)[-1]
    total += (channels * side * side + 1) * config.dense_units
    total += (config.dense_units + 1) * n_classes
    return total


def flops(architecture: Architecture, n_classes: int, image_size: int, config: NetworkConfig = NetworkConfig()) -> int:
    """Multiply-accumulates of one image's forward pass through the convolutions and dense layers (the count
    NAS-Bench-201 reports as FLOPs; pooling, BatchNorm and activations are left out)."""
    total, channels, convs = 0, 3, 0
    sides = architecture.spatial_sizes(image_size)
    for layer, side in zip(architecture.layers, sides[1:], strict=True):
        if layer.type == CONV:
            filters = config.conv_filters(convs)
            total += side * side * filters * channels * layer.kernel**2
            channels, convs = filters, convs + 1
    total += channels * sides[-1] * sides[-1] * config.dense_units
    return total + config.dense_units * n_classes


def to_device(model: nn.Module, device: torch.device, channels_last: bool = True) -> nn.Module:
    """Move a child to ``device`` in channels_last layout, which cuDNN's bf16 convolutions prefer and with which
    oneDNN's CPU convolutions took ~20% less time per step (benchmarks/README.md)."""
    model = model.to(device)
    if channels_last:
        # torch's stub lists no overload of Module.to with memory_format, which Module.to accepts
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model
