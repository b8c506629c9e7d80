"""The child network NasGym builds from an architecture (DESIGN.md section 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasgym.errors import ArchitectureError
from nasgym.search_space import AVG_POOL, CONV, MAX_POOL, Architecture


@dataclass(frozen=True)
class NetworkConfig:
    """Shape of the child network; NasGym's values are the defaults."""

    filters: int = 32
    dense_units: int = 1024
    dropout: float = 0.4


def build_network(
    architecture: Architecture,
    n_classes: int,
    image_size: int,
    config: NetworkConfig = NetworkConfig(),
    in_channels: int = 3,
) -> nn.Sequential:
    """ReLU -> Conv(k, stride 1, no padding) -> BN per conv; pooling with stride = window; dense head.

    The ReLU comes before each convolution, as in NasGym's TF1 code, so BN's output is what the next
    layer sees.
    """
    sizes = architecture.spatial_sizes(image_size)
    if min(sizes) < 1:
        raise ArchitectureError(f"{architecture} is invalid at image size {image_size}: spatial sides {sizes}")
    layers: list[nn.Module] = []
    channels = in_channels
    for layer in architecture.layers:
        if layer.type == CONV:
            layers += [
                nn.ReLU(),
                nn.Conv2d(channels, config.filters, layer.kernel, stride=1, padding=0),
                nn.BatchNorm2d(config.filters),
            ]
            channels = config.filters
        elif layer.type == MAX_POOL:
            layers.append(nn.MaxPool2d(layer.kernel, stride=layer.kernel))
        elif layer.type == AVG_POOL:
            layers.append(nn.AvgPool2d(layer.kernel, stride=layer.kernel))
    flat = channels * sizes[-1] * sizes[-1]
    layers += [
        nn.Flatten(),
        nn.Linear(flat, config.dense_units),
        nn.ReLU(),
        nn.Dropout(config.dropout),
        nn.Linear(config.dense_units, n_classes),
    ]
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def parameter_count(
    architecture: Architecture, n_classes: int, image_size: int, config: NetworkConfig = NetworkConfig()
) -> int:
    """Trainable parameters of the child network, computed without building it."""
    total, channels = 0, 3
    for layer in architecture.layers:
        if layer.type == CONV:
            total += channels * config.filters * layer.kernel**2 + config.filters  # conv weight + bias
            total += 2 * config.filters  # BN scale + shift
            channels = config.filters
    side = architecture.spatial_sizes(image_size)[-1]
    total += (channels * side * side + 1) * config.dense_units
    total += (config.dense_units + 1) * n_classes
    return total


def to_device(model: nn.Module, device: torch.device) -> nn.Module:
    """Move a child to ``device``; on CUDA use channels_last, which cuDNN's bf16 convolutions prefer."""
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model
