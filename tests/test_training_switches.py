"""The child-training switches: the three-way split, the reward's epochs and exponent, the per-step decay,
running-stats BatchNorm, glorot initialisation and TF1's resize."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support import TINY

from nasgym.core.datasets import load_dataset
from nasgym.core.datasets.base import bilinear_align_corners
from nasgym.core.datasets.image_cache import cache_dir
from nasgym.core.errors import ConfigError
from nasgym.core.network import NetworkConfig, RunningStatsBatchNorm2d, build_network
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer, TrainConfig, split_indices

BASE = TrainConfig(epochs=2, batch_size=TINY["batch_size"])


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", TINY["image_size"], max_samples=400)


# -- the split ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rounding", ["round", "floor"])
def test_the_test_split_is_disjoint_from_train_and_reward_and_no_seed_moves_it(rounding: str) -> None:
    labels = np.arange(1797) % 10
    splits = [split_indices(labels, 2 / 3, seed, 10, 0.1, rounding) for seed in (0, 1, 32)]
    for split in splits:
        train, reward, test = (set(part.tolist()) for part in split)
        assert not (train & reward) and not (train & test) and not (reward & test)
        assert train | reward | test == set(range(1797)) and len(test) == round(0.1 * 1797)
    assert all((split.test == splits[0].test).all() for split in splits)  # the same held-out images for every seed
    assert not (splits[0].train == splits[1].train).all()  # the seed does move train / reward


def test_floor_rounding_and_no_test_split_reproduce_nasgyms_counts_and_the_old_split() -> None:
    labels, nasgym_fraction = np.arange(1000) % 10, 1.0 - 0.33  # NasGym: floor(n * (1. - split_prop))
    assert len(split_indices(labels, nasgym_fraction, 32, 10, 0.0, "floor").train) == math.floor(1000 * (1.0 - 0.33))
    assert math.floor(1000 * (1.0 - 0.33)) == 669  # 0.6699999999999999 in floating point
    assert len(split_indices(labels, nasgym_fraction, 32, 10, 0.0, "round").train) == 670
    order = np.random.default_rng(5).permutation(1000)
    assert (split_indices(labels, 2 / 3, 5, 10).train == order[:667]).all()  # a plain seeded shuffle, as before


def test_a_trainer_scores_on_the_split_its_config_names_and_the_test_split_is_held_out(digits) -> None:
    search = ChildTrainer(digits, BASE, "cpu")
    final = ChildTrainer(digits, dataclasses.replace(BASE, score_split="test"), "cpu")
    test = set(final.split.test.tolist())
    assert all((a == b).all() for a, b in zip(search.split, final.split, strict=True))
    assert not test & set(search.split.train.tolist()) and not test & set(search.split.reward.tolist())
    assert torch.equal(final.eval_y, torch.from_numpy(digits.labels[final.split.test]))
    assert torch.equal(search.eval_y, torch.from_numpy(digits.labels[search.split.reward]))
    with pytest.raises(ConfigError, match="needs a test split"):
        TrainConfig(score_split="test", test_fraction=0.0)


# -- the reward -------------------------------------------------------------------------------------------
def test_the_reward_is_the_best_of_the_last_epochs_raised_to_the_exponent(digits) -> None:
    network = Architecture.parse("c3-m2")
    last = ChildTrainer(digits, dataclasses.replace(BASE, epochs=3), "cpu").train(network).accuracy
    cubed = ChildTrainer(digits, dataclasses.replace(BASE, epochs=3, reward_exponent=3.0), "cpu").train(network)
    best = ChildTrainer(digits, dataclasses.replace(BASE, epochs=3, reward_epochs=3), "cpu").train(network)
    assert cubed.accuracy == pytest.approx(last**3)
    assert best.accuracy >= last and 0 < last < 1
    many = ChildTrainer(digits, dataclasses.replace(BASE, epochs=3, reward_epochs=50), "cpu").train(network)
    assert many.accuracy == best.accuracy  # more epochs than there are: all of them


def test_the_per_step_decay_is_tfs_exponential_decay() -> None:
    config = TrainConfig(learning_rate=1e-3, lr_decay_factor=0.9, lr_decay_steps=100, lr_decay_epochs=0)
    assert config.learning_rate_at(epoch=0, step=0) == 1e-3
    assert config.learning_rate_at(epoch=3, step=250) == pytest.approx(1e-3 * 0.9**2.5)
    assert TrainConfig().learning_rate_at(epoch=5, step=999) == pytest.approx(2e-4)  # the epoch schedule


# -- the child network ------------------------------------------------------------------------------------
def test_running_stats_batch_norm_is_a_learned_scale_and_shift(digits) -> None:
    config = NetworkConfig(batch_norm="running_stats")
    model = build_network(Architecture.parse("c3"), 10, 16, config)
    norm = next(m for m in model if isinstance(m, RunningStatsBatchNorm2d))
    model.train()
    x = torch.rand(8, 3, 16, 16)
    out = norm(model[1](model[0](x)))
    conv = model[1](model[0](x))
    assert torch.allclose(out, conv / (1 + 1e-3) ** 0.5)  # mean 0, variance 1, epsilon 1e-3: no normalisation
    assert norm.running_mean.abs().sum() == 0 and (norm.running_var == 1).all()
    trainer = ChildTrainer(digits, dataclasses.replace(BASE, network=config), "cpu")
    assert 0 < trainer.train(Architecture.parse("c3-m2")).accuracy <= 1


def test_glorot_initialisation_gives_zero_biases_and_glorot_bounds() -> None:
    model = build_network(Architecture.parse("c3-c5"), 10, 16, NetworkConfig(init="glorot"))
    linear = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for module in linear:
        fan_in = module.weight[0].numel()
        fan_out = module.weight.shape[0] * module.weight[0, 0].numel()
        assert module.bias.abs().sum() == 0
        assert module.weight.abs().max() <= (6 / (fan_in + fan_out)) ** 0.5
    default = build_network(Architecture.parse("c3-c5"), 10, 16)
    assert next(m for m in default if isinstance(m, torch.nn.Linear)).bias.abs().sum() > 0


# -- the resize -------------------------------------------------------------------------------------------
def test_tf1_bilinear_resize_matches_torchs_align_corners_and_is_kept_apart_in_the_caches(tmp_path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (4, 37, 50, 3), dtype=np.uint8)
    ours = bilinear_align_corners(images, 21)
    reference = F.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2).float(), size=(21, 21), mode="bilinear", align_corners=True
    )
    reference = reference.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours.astype(int) - reference).max() <= 1
    tf1 = load_dataset("digits", 28, resize="bilinear_align_corners")
    default = load_dataset("digits", 28)
    assert tf1.fingerprint != default.fingerprint and tf1.images.shape == default.images.shape
    assert cache_dir(tmp_path, 84) != cache_dir(tmp_path, 84, "bilinear_align_corners")
    with pytest.raises(ConfigError, match="resize must be one of"):
        load_dataset("digits", 28, resize="nearest")
