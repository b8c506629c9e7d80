"""NAS-v0's Gymnasium contract: spaces, checkers, episode end, reward modes, masks and bad input."""

import gymnasium as gym
import numpy as np
import pytest

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.errors import ArchitectureError, DatasetError
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.search_space import Architecture

INFO_KEYS = {"architecture", "nsc", "layers", "valid", "accuracy", "from_cache", "train_seconds", "parameters",
             "failure"}  # fmt: skip


def count_convs(architecture: Architecture) -> float:
    return sum(layer.type == 1 for layer in architecture.layers) / 10


@pytest.fixture
def toy_env():
    return gym.make("NAS-v0", evaluator=FunctionEvaluator(count_convs), image_size=16)


def test_spaces_and_reset():
    env = gym.make("NAS-v0", evaluator=FunctionEvaluator(count_convs), max_layers=7)
    assert env.action_space == gym.spaces.Discrete(8)
    assert env.observation_space.shape == (7, 5)
    obs, info = env.reset(seed=3)
    assert obs.shape == (7, 5) and not obs.any() and info["layers"] == 0


def test_per_step_reward_trains_every_prefix(toy_env):
    toy_env.reset()
    rewards = []
    for action in (1, 3, 0, 7):
        obs, reward, terminated, truncated, info = toy_env.step(action)
        rewards.append(reward)
        assert set(info) >= INFO_KEYS and not truncated
    assert rewards == [0.1, 0.1, 0.2, 0.2]
    assert terminated and info["architecture"] == "c3-m2-c1-t" and info["valid"]
    np.testing.assert_array_equal(obs[3], [4, 7, 0, 3, 0])


def test_final_reward_is_zero_until_the_end():
    evaluator = FunctionEvaluator(count_convs)
    env = gym.make("NAS-v0", evaluator=evaluator, reward="final", image_size=16)
    env.reset()
    steps = [env.step(action) for action in (1, 1, 7)]
    assert [step[1] for step in steps] == [0.0, 0.0, 0.2]
    assert not steps[0][4]["rewarded"] and steps[0][4]["accuracy"] == -1.0 and steps[2][4]["accuracy"] == 0.2
    assert evaluator.stats.trained == 1  # only the final network is evaluated


def test_invalid_network_ends_with_zero_reward(toy_env):
    toy_env.reset()
    toy_env.step(4)  # m3: 16 -> 5
    toy_env.step(4)  # m3: 5 -> 1
    _, reward, terminated, truncated, info = toy_env.step(2)  # c5 on 1x1: invalid
    assert (reward, terminated, truncated, info["valid"]) == (0.0, True, False, False)
    assert info["architecture"] == "m3-m3-c5" and not info["rewarded"] and info["accuracy"] == -1.0


def test_episode_ends_when_max_layers_rows_are_used():
    env = gym.make("NAS-v0", evaluator=FunctionEvaluator(count_convs), max_layers=3, reward="final")
    env.reset()
    assert not env.step(0)[2] and not env.step(0)[2]
    _, reward, terminated, _, info = env.step(0)
    assert terminated and reward == pytest.approx(0.3) and info["layers"] == 3


def test_action_masks_follow_the_network(toy_env):
    toy_env.reset()
    assert toy_env.unwrapped.action_masks().all()
    toy_env.step(4)
    toy_env.step(4)  # 1x1 map: only 1x1 conv, 1-windows... none of the pools fit
    np.testing.assert_array_equal(toy_env.unwrapped.action_masks(), [1, 0, 0, 0, 0, 0, 0, 1])


def test_bad_actions_and_stepping_after_the_end_raise(toy_env):
    toy_env.reset()
    with pytest.raises(ArchitectureError, match="outside the action space"):
        toy_env.step(8)
    with pytest.raises(ArchitectureError):
        toy_env.step(-1)
    toy_env.step(7)
    with pytest.raises(RuntimeError, match=r"call env\.reset"):
        toy_env.step(1)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError, match=r"unknown dataset 'imagenet'; known datasets: .*digits"):
        gym.make("NAS-v0", dataset="imagenet")


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="reward must be one of"):
        gym.make("NAS-v0", evaluator=FunctionEvaluator(count_convs), reward="sparse")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        gym.make("NAS-v0", dataset="digits", precision="bf16", device="cpu", max_samples=100)


def test_ansi_render_shows_the_network(toy_env):
    env = gym.make("NAS-v0", evaluator=FunctionEvaluator(count_convs), image_size=16, render_mode="ansi")
    env.reset()
    env.step(1)
    assert env.render() == "c3  (spatial sides 16 -> 14)"
