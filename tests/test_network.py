"""The child network has NasGym's shape: ReLU-Conv-BN blocks, no padding, stride-k pooling, 1024-unit head."""

import pytest
import torch
from torch import nn

from nasgym.core.errors import ConfigError
from nasgym.core.network import NetworkConfig, build_network, parameter_count
from nasgym.core.search_space import Architecture


@pytest.mark.parametrize("text", ["t", "c1", "c3-m2-c5-a3", "m3-m3-m3", "c5-c5-a2-c3-m3-c1-a2-c1-t"])
def test_parameter_count_matches_the_built_network(text):
    architecture = Architecture.parse(text)
    model = build_network(architecture, n_classes=7, image_size=32)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(architecture, 7, 32)
    side = architecture.spatial_sizes(32)[-1]
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    head = [m for m in model if isinstance(m, nn.Linear)]
    channels = 32 if "c" in text else 3
    assert head[0].in_features == channels * side * side and head[0].out_features == 1024


def test_conv_block_is_relu_conv_bn_without_padding():
    model = build_network(Architecture.parse("c5-m3"), n_classes=10, image_size=84)
    relu, conv, bn, pool = list(model)[:4]
    assert isinstance(relu, nn.ReLU) and isinstance(bn, nn.BatchNorm2d)
    assert conv.kernel_size == (5, 5) and conv.padding == (0, 0) and conv.stride == (1, 1) and conv.out_channels == 32
    assert isinstance(pool, nn.MaxPool2d) and pool.kernel_size == 3 and pool.stride == 3
    dropout = next(m for m in model if isinstance(m, nn.Dropout))
    assert dropout.p == 0.4


def test_network_config_changes_the_shape():
    config = NetworkConfig(filters=8, dense_units=64, dropout=0.1)
    model = build_network(Architecture.parse("c3"), n_classes=3, image_size=10, config=config)
    assert sum(p.numel() for p in model.parameters()) == (3 * 9 * 8 + 8) + 16 + (8 * 8 * 8 + 1) * 64 + 65 * 3


def test_final_protocol_doubles_filters_per_conv_up_to_the_cap():
    config = NetworkConfig(filters=32, filter_growth=2.0, max_filters=128)
    architecture = Architecture.parse("c3-m2-c3-c3-c1")
    model = build_network(architecture, n_classes=5, image_size=32, config=config)
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [conv.out_channels for conv in convs] == [32, 64, 128, 128]
    assert [conv.in_channels for conv in convs] == [3, 32, 64, 128]
    assert sum(p.numel() for p in model.parameters()) == parameter_count(architecture, 5, 32, config)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"filters": 0}, "filters must be at least 1"),
        ({"dense_units": 0}, "dense_units must be at least 1"),
        ({"max_filters": 0}, "max_filters must be at least 1"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"filter_growth": 0.0}, "filter_growth must be a positive number"),
        ({"filters": 2.5}, "filters must be an int"),
    ],
)
def test_a_network_config_out_of_range_is_refused(options, message):
    with pytest.raises(ConfigError) as caught:
        NetworkConfig(**options)
    assert message in str(caught.value)
