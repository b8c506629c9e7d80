"""The SQLite reward cache: hits, key sensitivity, bad files, and several processes writing at once."""

import dataclasses
import multiprocessing
import sqlite3

import gymnasium as gym
import pytest
from cache_writer import write_many
from support import TINY

import nasgym  # noqa: F401
from nasgym.core.datasets import load_dataset
from nasgym.core.errors import RewardCacheError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.network import NetworkConfig
from nasgym.core.reward_cache import RewardCache, reward_key
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=8, max_samples=120)


def test_repeat_is_answered_from_the_cache_without_training(digits, tmp_path):
    config = TrainConfig(epochs=1, batch_size=32)
    first = TrainingEvaluator(digits, config, "cpu", tmp_path / "rewards.sqlite")
    [trained] = first.evaluate([Architecture.parse("c3-m2")])
    assert not trained.from_cache and first.stats.trained == 1

    second = TrainingEvaluator(digits, config, "cpu", tmp_path / "rewards.sqlite")
    [cached, same_network] = second.evaluate([Architecture.parse("c3-m2"), Architecture.parse("c3-m2-t")])
    assert cached.from_cache and cached.accuracy == trained.accuracy and cached.parameters == trained.parameters
    assert same_network == cached  # the terminal row does not change the network
    assert second.stats.trained == 0 and second.stats.cache_hits == 1 and second._trainer is None


def test_changed_setting_never_returns_a_stale_reward(tmp_path):
    path = tmp_path / "rewards.sqlite"
    options = dict(dataset="digits", max_samples=120, cache_path=path, **{**TINY, "image_size": 8})
    first = gym.make("NAS-v0", **options)
    first.reset()
    assert first.step(1)[4]["from_cache"] is False
    again = gym.make("NAS-v0", **options)
    again.reset()
    assert again.step(1)[4]["from_cache"] is True
    changed = gym.make("NAS-v0", **{**options, "epochs": 2})
    changed.reset()
    assert changed.step(1)[4]["from_cache"] is False


CHANGED_SETTINGS = {
    "epochs": 13, "batch_size": 64, "learning_rate": 3e-4, "betas": (0.8, 0.99), "adam_epsilon": 1e-7,
    "lr_decay_factor": 0.5, "lr_decay_epochs": 0, "train_fraction": 0.5, "seed": 1,
    "network": NetworkConfig(filters=16), "lr_decay_steps": 100, "test_fraction": 0.2, "split_rounding": "floor",
    "split_seed": 32, "score_split": "test", "reward_epochs": 5, "reward_exponent": 3.0,
}  # fmt: skip


def test_key_covers_every_training_setting_the_dataset_and_the_network():
    base = TrainConfig()
    assert set(CHANGED_SETTINGS) | {"precision"} == {field.name for field in dataclasses.fields(TrainConfig)}
    nsc = Architecture.parse("c3-m2").nsc().tolist()
    keys = {reward_key("data-a", nsc, base.key_fields(_cpu()))}
    for name, value in CHANGED_SETTINGS.items():
        keys.add(reward_key("data-a", nsc, dataclasses.replace(base, **{name: value}).key_fields(_cpu())))
    keys.add(reward_key("data-b", nsc, base.key_fields(_cpu())))
    keys.add(reward_key("data-a", Architecture.parse("c3-m3").nsc().tolist(), base.key_fields(_cpu())))
    assert len(keys) == len(CHANGED_SETTINGS) + 3
    # 'auto' precision is fp32 on the CPU: the same numerics share one key.
    fp32 = dataclasses.replace(base, precision="fp32")
    assert reward_key("data-a", nsc, fp32.key_fields(_cpu())) == reward_key("data-a", nsc, base.key_fields(_cpu()))


def _cpu():
    import torch

    return torch.device("cpu")


def test_a_file_that_is_not_sqlite_is_refused_and_kept(tmp_path):
    path = tmp_path / "rewards.sqlite"
    path.write_bytes(b"these are my notes, not a database\n" * 10)
    with pytest.raises(RewardCacheError, match="not a nasgym reward cache"):
        RewardCache(path)
    assert path.read_bytes().startswith(b"these are my notes")


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(RewardCacheError, match="database of something else"):
        RewardCache(path)


def test_a_corrupt_cache_is_reported(tmp_path):
    path = tmp_path / "rewards.sqlite"
    cache = RewardCache(path)
    cache.put("k", Evaluation("c3", 0.5, 1.0, 10), "digits", {})
    cache.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # keep the header, destroy the schema page
    path.write_bytes(bytes(data))
    (tmp_path / "rewards.sqlite-wal").unlink(missing_ok=True)
    with pytest.raises(RewardCacheError):
        RewardCache(path).get("k")


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(RewardCacheError, match="is a directory"):
        RewardCache(tmp_path)


def test_several_processes_write_at_once(tmp_path):
    path = str(tmp_path / "rewards.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=write_many, args=(path, w, 60)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    cache = RewardCache(path)
    assert len(cache) == 4 * 60 + 1
    assert cache.get("key-3-59").accuracy == 59 / 60 and cache.get("shared-key").accuracy == 0.25
