"""What the processes of the no-double-training tests run: kept apart so that child processes import little."""

from __future__ import annotations

import gymnasium as gym
import torch

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.datasets import load_dataset
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig


def play(cache_path: str, episodes: list[list[int]], options: dict) -> tuple[int, list[str]]:
    """Step NAS-v0 (sharing ``cache_path``) through ``episodes``, each a list of actions, training on one thread:
    (networks trained here, networks rewarded)."""
    torch.set_num_threads(1)  # eight of these share two cores
    env = gym.make("NAS-v0", cache_path=cache_path, **options)
    rewarded = []
    for actions in episodes:
        env.reset()
        for action in actions:
            info = env.step(action)[4]
            if info["rewarded"]:
                rewarded.append(str(Architecture.parse(info["architecture"]).network))
    trained = env.unwrapped.evaluator.stats.trained
    env.close()
    return trained, rewarded


LONG = TrainConfig(epochs=40, batch_size=64)
"""A training of some seconds: long enough to be killed in the middle."""


def train_long(cache_path: str, architecture: str, claim_seconds: float) -> None:
    """Claim ``architecture`` and train it (``LONG``): the claimant a test kills."""
    data = load_dataset("digits", image_size=16, max_samples=200)
    evaluator = TrainingEvaluator(data, LONG, "cpu", RewardCache(cache_path, claim_seconds=claim_seconds))
    evaluator.evaluate([Architecture.parse(architecture)])
