"""The batch evaluator: same rewards as one by one, in any order or concurrency, through the cache."""

import pytest
from support import TINY

from nasgym.core.datasets import load_dataset
from nasgym.core.evaluator import Evaluator, TrainingEvaluator
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig

CONFIG = TrainConfig(epochs=TINY["epochs"], batch_size=TINY["batch_size"])
BATCH = [Architecture.parse(text) for text in ("c3-m2", "a2-c1", "c3-m2-t", "c5", "m2-a2")]  # c3-m2 twice


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", TINY["image_size"], max_samples=240)


def test_batch_gives_the_rewards_of_one_by_one_and_fills_the_cache(digits, tmp_path):
    cache = RewardCache(tmp_path / "rewards.sqlite")
    batch = TrainingEvaluator(digits, CONFIG, "cpu", cache)
    rewards = [e.accuracy for e in batch.evaluate(BATCH)]
    assert (batch.stats.trained, batch.stats.repeats, batch.stats.cache_hits) == (4, 1, 0)
    assert rewards[0] == rewards[2]  # the terminal layer does not change the network

    one_by_one = TrainingEvaluator(digits, CONFIG, "cpu")
    assert [one_by_one.evaluate([a])[0].accuracy for a in BATCH] == rewards

    again = TrainingEvaluator(digits, CONFIG, "cpu", tmp_path / "rewards.sqlite")
    answers = again.evaluate(list(reversed(BATCH)))
    assert [e.accuracy for e in answers] == list(reversed(rewards))
    assert all(e.from_cache for e in answers) and again.stats.trained == 0 and again.stats.cache_hits == 4


def test_concurrent_training_gives_the_same_rewards(digits):
    sequential = TrainingEvaluator(digits, CONFIG, "cpu").evaluate(BATCH)
    concurrent = TrainingEvaluator(digits, CONFIG, "cpu", concurrency=3)
    assert [e.accuracy for e in concurrent.evaluate(BATCH)] == [e.accuracy for e in sequential]
    assert concurrent.stats.trained == 4


def test_failures_are_rewards_of_zero_with_the_reason_and_are_cached(digits, tmp_path):
    diverging = TrainConfig(epochs=1, batch_size=64, learning_rate=1e30)
    evaluator = TrainingEvaluator(digits, diverging, "cpu", tmp_path / "rewards.sqlite", concurrency=2)
    first, second = evaluator.evaluate([Architecture.parse("c3"), Architecture.parse("c1-c1")])
    assert first.accuracy == second.accuracy == 0.0 and "non-finite training loss" in first.failure
    cached = TrainingEvaluator(digits, diverging, "cpu", tmp_path / "rewards.sqlite").evaluate(
        [Architecture.parse("c3")]
    )
    assert cached[0].from_cache and cached[0].failure == first.failure


def test_concurrency_must_be_positive(digits):
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        TrainingEvaluator(digits, CONFIG, "cpu", concurrency=0)


def test_the_training_evaluator_declares_the_whole_protocol(digits, tmp_path):
    evaluator = TrainingEvaluator(digits, CONFIG, "cpu", tmp_path / "rewards.sqlite")
    assert isinstance(evaluator, Evaluator) and evaluator.stationary and evaluator.state_dict() is None
    assert evaluator.cached(BATCH[0]) is None and evaluator.prepare() is evaluator
    epochs = []
    first = evaluator.evaluate(BATCH[:1], on_epoch=epochs.append)[0]
    assert epochs == [1] and evaluator.cached(BATCH[0]) == first
    evaluator.close()
