"""The child network of a Zoph & Le architecture, built as their paper describes it and, where it is silent, as
written here.

From the paper: each layer is a convolution (filter height x width, number of filters, stride) with batch
normalisation and ReLU; a layer with no chosen input reads the image; several inputs are concatenated along the
depth, the smaller ones zero-padded to the largest spatial size; at the end every output that no later layer reads
is concatenated the same way and fed to the classifier.

Left open by the paper, chosen here:

* padding: "same" (``kernel // 2`` on each side, every kernel is odd), so a layer's output side is
  ``ceil(input side / stride)`` and no choice ever makes a network invalid;
* order: convolution -> batch norm -> ReLU (the paper names the three, not their order);
* zero padding of a smaller map: split evenly, the odd row and column going to the bottom and right;
* classifier: global average pooling of the final concatenation, then one linear layer to the classes (the paper
  says "a classifier"; ENAS, by the same group, pools globally). No dense layer and no dropout, so NAS-v0's
  ``filters``, ``dense_units``, ``dropout``, ``filter_growth`` and ``max_filters`` keywords do not apply here;
  ``init`` and ``batch_norm`` do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nasgym.core.network import NetworkConfig, RunningStatsBatchNorm2d, glorot_init
from nasgym.core.zophle.space import ConvLayer


def output_sides(layers: tuple[ConvLayer, ...], image_size: int) -> list[int]:
    """The spatial side of each layer's output: the largest of its inputs' sides, divided by its stride (rounded up)."""
    sides: list[int] = []
    for layer in layers:
        side = max((sides[j] for j in layer.inputs), default=image_size)
        sides.append(math.ceil(side / layer.stride))
    return sides


def input_channels(layers: tuple[ConvLayer, ...], in_channels: int = 3) -> list[int]:
    """The depth each layer reads: the sum of its inputs' filters, or the image's channels."""
    return [sum(layers[j].filters for j in layer.inputs) if layer.inputs else in_channels for layer in layers]


def unused_outputs(layers: tuple[ConvLayer, ...]) -> list[int]:
    """The layers no later layer reads, in order: their outputs go to the classifier (the last layer always does)."""
    read = {j for layer in layers for j in layer.inputs}
    return [index for index in range(len(layers)) if index not in read]


def pad_to(x: torch.Tensor, side: int) -> torch.Tensor:
    """``x`` zero-padded to ``side`` x ``side``, evenly, the odd row and column at the bottom and right."""
    extra_h, extra_w = side - x.shape[-2], side - x.shape[-1]
    if extra_h == 0 and extra_w == 0:
        return x
    return F.pad(x, (extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2))


def concatenate(maps: list[torch.Tensor]) -> torch.Tensor:
    """Depth-wise concatenation, the smaller maps zero-padded to the largest side first."""
    if len(maps) == 1:
        return maps[0]
    side = max(max(m.shape[-2], m.shape[-1]) for m in maps)
    return torch.cat([pad_to(m, side) for m in maps], dim=1)


class ZophLeNetwork(nn.Module):
    """Convolutions wired by the architecture's anchors; global average pooling and a linear classifier."""

    def __init__(
        self,
        layers: tuple[ConvLayer, ...],
        n_classes: int,
        image_size: int,
        config: NetworkConfig = NetworkConfig(),
        in_channels: int = 3,
    ):
        super().__init__()
        if not layers:
            raise ValueError("a Zoph & Le network needs at least one layer")
        self.spec = layers
        self.sides = output_sides(layers, image_size)
        self.outputs = unused_outputs(layers)
        self.convs = nn.ModuleList()
        for layer, channels in zip(layers, input_channels(layers, in_channels), strict=True):
            norm = nn.BatchNorm2d if config.batch_norm == "batch_stats" else RunningStatsBatchNorm2d
            self.convs.append(
                nn.Sequential(
                    nn.Conv2d(
                        channels,
                        layer.filters,
                        (layer.height, layer.width),
                        stride=layer.stride,
                        padding=(layer.height // 2, layer.width // 2),
                    ),
                    norm(layer.filters),
                    nn.ReLU(),
                )
            )
        self.classifier = nn.Linear(sum(layers[j].filters for j in self.outputs), n_classes)
        if config.init == "glorot":
            glorot_init(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images).mean(dim=(-2, -1)))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The final concatenation the classifier pools: ``(batch, sum of unused layers' filters, side, side)``."""
        outputs: list[torch.Tensor] = []
        for layer, conv in zip(self.spec, self.convs, strict=True):
            source = concatenate([outputs[j] for j in layer.inputs]) if layer.inputs else images
            outputs.append(conv(source))
        return concatenate([outputs[j] for j in self.outputs])


def parameter_count(layers: tuple[ConvLayer, ...], n_classes: int, in_channels: int = 3) -> int:
    """Trainable parameters, computed without building the network."""
    total = 0
    for layer, channels in zip(layers, input_channels(layers, in_channels), strict=True):
        total += channels * layer.filters * layer.height * layer.width + layer.filters  # conv weight + bias
        total += 2 * layer.filters  # batch norm scale + shift
    features = sum(layers[j].filters for j in unused_outputs(layers))
    return total + (features + 1) * n_classes
