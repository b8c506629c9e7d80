"""Real child training through NAS-v0 on digits: it learns, it is deterministic, failures become reward 0."""

import gymnasium as gym
import pytest
from support import TINY

import nasgym  # noqa: F401


def step_through(env: gym.Env, text: str) -> tuple[float, dict]:
    from nasgym.core.search_space import Architecture

    env.reset()
    for action in Architecture.parse(text).actions:
        _, reward, _, _, info = env.step(action)
    return reward, info


def test_tiny_training_learns_far_better_than_chance():
    env = gym.make("NAS-v0", dataset="digits", max_samples=600, **{**TINY, "epochs": 2})
    reward, info = step_through(env, "c3-m2-t")
    assert reward > 0.5, info  # 10 classes: chance is 0.1
    assert info["valid"] and not info["from_cache"] and info["failure"] == "" and info["train_seconds"] > 0


def test_same_seed_same_reward_without_the_cache():
    options = dict(dataset="digits", max_samples=300, cache=False, **TINY)
    first, _ = step_through(gym.make("NAS-v0", seed=7, **options), "c3-a2")
    second, _ = step_through(gym.make("NAS-v0", seed=7, **options), "c3-a2")
    assert first == second


def test_diverging_training_gives_zero_reward_with_the_reason():
    env = gym.make("NAS-v0", dataset="digits", max_samples=200, learning_rate=1e30, **TINY)
    reward, info = step_through(env, "c3")
    assert reward == 0.0 and "non-finite training loss" in info["failure"]


@pytest.mark.slow
def test_nasgym_protocol_on_digits_is_accurate_and_cached():
    """Done-when of the NAS-v0 issue: 12 epochs at 84x84, a 4-layer network, > 0.9; the repeat is cached."""
    env = gym.make("NAS-v0", dataset="digits", device="cpu", reward="final")  # train only the final network
    reward, info = step_through(env, "c5-m3-c3-m2-t")
    assert reward > 0.9, info
    again = gym.make("NAS-v0", dataset="digits", device="cpu", reward="final")
    cached_reward, cached_info = step_through(again, "c5-m3-c3-m2-t")
    assert cached_info["from_cache"] and cached_reward == reward
    assert again.unwrapped.evaluator.stats.trained == 0
