"""The shared weights: every network of the chain space is a path through one module.

Each (layer position, kernel, input channels, output channels) owns one convolution and its BatchNorm, as each
(layer, operation) owns its weights in ENAS; the output channels follow from the input channels (the filter rule of
``NetworkConfig``), so the key is the issue's (position, operation, input channels). Pooling has no weights. A path
is the child's layers exactly (ReLU -> Conv(no padding) -> BN, pooling with stride = window), so its final feature
map has the child's shape, which differs between networks: the head is shared per channel count (``gap``) or per
shape (``per_shape``), created the first time a network needs it.

BatchNorm always normalises with the batch's own statistics, also when scoring: running statistics mixed over
every path would fit none of them (single-path one-shot recomputes them per path for the same reason).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasgym.core.network import NetworkConfig
from nasgym.core.search_space import AVG_POOL, CONV, MAX_POOL, Architecture

KERNELS = (1, 3, 5)


def conv_key(position: int, kernel: int, in_channels: int, out_channels: int) -> str:
    return f"p{position}_k{kernel}_i{in_channels}_o{out_channels}"


def _seed_of(seed: int, key: str) -> int:
    """A seed per head, from the training seed and the head's key alone (not the order heads were created in)."""
    return int(np.random.SeedSequence([seed, *key.encode()]).generate_state(1, dtype=np.uint64)[0] & (2**63 - 1))


class SharedWeights(nn.Module):
    """Every convolution of the search space, eagerly, and the heads that networks have needed so far."""

    def __init__(self, n_classes: int, max_layers: int, head: str, seed: int, network: NetworkConfig):
        super().__init__()
        self.n_classes, self.head_kind, self.seed, self.network_config = n_classes, head, seed, network
        self.convs = nn.ModuleDict()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for position in range(max_layers):
                for convs_before in range(position + 1):
                    in_channels = 3 if convs_before == 0 else network.conv_filters(convs_before - 1)
                    out_channels = network.conv_filters(convs_before)
                    for kernel in KERNELS:
                        key = conv_key(position, kernel, in_channels, out_channels)
                        if key not in self.convs:
                            self.convs[key] = nn.Sequential(
                                nn.Conv2d(in_channels, out_channels, kernel, stride=1, padding=0),
                                nn.BatchNorm2d(out_channels, track_running_stats=False),
                            )
        self.heads = nn.ModuleDict()
        self.head_order: list[str] = []
        """Keys of the heads in the order they were created (the optimiser's parameter groups follow it)."""

    def head_key(self, channels: int, side: int) -> str:
        return f"c{channels}" if self.head_kind == "gap" else f"c{channels}_s{side}"

    def make_head(self, key: str, channels: int, side: int, device: torch.device) -> nn.Linear:
        """Create the head ``key`` (seeded by its key), on ``device``; the caller adds it to the optimiser."""
        features = channels if self.head_kind == "gap" else channels * side * side
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_seed_of(self.seed, key))
            head = nn.Linear(features, self.n_classes)
        head = head.to(device)
        self.heads[key] = head
        self.head_order.append(key)
        return head

    def final_shape(self, network: Architecture, image_size: int) -> tuple[int, int]:
        """(channels, side) of the network's last feature map."""
        convs = sum(layer.type == CONV for layer in network.layers)
        channels = 3 if convs == 0 else self.network_config.conv_filters(convs - 1)
        return channels, network.spatial_sizes(image_size)[-1]

    def features(self, network: Architecture, x: torch.Tensor) -> torch.Tensor:
        """The path of ``network`` through the shared layers: the child's layers, in order."""
        channels, convs = x.shape[1], 0
        for position, layer in enumerate(network.layers):
            if layer.type == CONV:
                out_channels = self.network_config.conv_filters(convs)
                x = self.convs[conv_key(position, layer.kernel, channels, out_channels)](F.relu(x))
                channels, convs = out_channels, convs + 1
            elif layer.type == MAX_POOL:
                x = F.max_pool2d(x, layer.kernel, stride=layer.kernel)
            elif layer.type == AVG_POOL:
                x = F.avg_pool2d(x, layer.kernel, stride=layer.kernel)
        return x

    def logits(self, network: Architecture, x: torch.Tensor, head_key: str) -> torch.Tensor:
        features = self.features(network, x)
        features = features.mean(dim=(2, 3)) if self.head_kind == "gap" else features.flatten(1)
        return self.heads[head_key](features)
