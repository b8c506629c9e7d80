"""The reward layer (``CachedEvaluator``) over executors: repeats and cached rewards never reach the executor, each
reward is stored as it is recorded, claims are given up when an executor fails, and the local and Ray evaluators are
that one layer over their own executors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from support import ReadyRay, toy_reward

from nasgym.core.datasets import ImageData
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import CachedEvaluator, Evaluator, TrainingEvaluator
from nasgym.core.executors import Executor, LocalExecutor
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig

CONFIG = TrainConfig(epochs=1, batch_size=8)
DATA = ImageData("toy", np.zeros((24, 8, 8, 3), np.uint8), np.arange(24) % 2, 2, "toy-fingerprint")
NETWORKS = [Architecture.parse(text) for text in ("c3", "c3-m2", "a2-c1")]


class Scripted:
    """A test-double executor: toy rewards, noting each batch it is handed and whether the cache already held each
    reward right after it was recorded (before the next was computed)."""

    def __init__(self, cache: RewardCache | None = None, fail_at: int | None = None, seconds: float = 0.0):
        self.cache, self.fail_at, self.seconds = cache, fail_at, seconds
        self.batches: list[list[str]] = []
        self.stored_at_once: list[bool] = []
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1

    def run(self, networks, record, on_epoch=None) -> None:
        self.batches.append(sorted(str(network) for network in networks.values()))
        for index, (key, network) in enumerate(networks.items()):
            if index == self.fail_at:
                raise RuntimeError("the executor failed")
            time.sleep(self.seconds)
            record(key, network, Evaluation(str(network), toy_reward(network), 1.0, 10))
            if self.cache is not None:
                self.stored_at_once.append(self.cache.get(key) is not None)


def layer(executor: Executor, cache=None) -> CachedEvaluator:
    return CachedEvaluator(DATA, CONFIG, torch.device("cpu"), executor, cache)


def test_the_layer_is_an_evaluator_and_a_test_double_is_an_executor():
    executor = Scripted()
    evaluator = layer(executor)
    assert isinstance(evaluator, Evaluator) and isinstance(executor, Executor) and evaluator.stationary
    assert evaluator.prepare() is evaluator and executor.prepared == 1
    assert evaluator.state_dict() is None and evaluator.cached(NETWORKS[0]) is None


def test_duplicates_reach_the_executor_once_and_repeats_get_the_very_same_answer():
    executor = Scripted()
    evaluator = layer(executor)
    asked = [*NETWORKS, Architecture.parse("c3-m2-t"), NETWORKS[0]]  # c3-m2 twice (terminal row), c3 twice
    first = evaluator.evaluate(asked)
    assert executor.batches == [sorted(str(network) for network in NETWORKS)]
    assert first[1] is first[3] and first[0] is first[4] and evaluator.stats.repeats == 2
    again = evaluator.evaluate(NETWORKS)
    assert len(executor.batches) == 1 and all(a is b for a, b in zip(again, first, strict=False))
    assert evaluator.stats.trained == 3 and evaluator.cached(NETWORKS[2]) is first[2]


def test_cached_answers_never_reach_the_executor(tmp_path):
    path = tmp_path / "rewards.sqlite"
    layer(Scripted(), path).evaluate(NETWORKS[:2])
    executor = Scripted()
    evaluator = layer(executor, path)
    answers = evaluator.evaluate(NETWORKS)
    assert executor.batches == [["a2-c1"]]  # only the network the cache did not hold
    assert [e.from_cache for e in answers] == [True, True, False] and evaluator.stats.cache_hits == 2


def test_each_reward_is_stored_as_soon_as_it_is_recorded(tmp_path):
    cache = RewardCache(tmp_path / "rewards.sqlite")
    executor = Scripted(cache)
    evaluator = layer(executor, cache)
    evaluator.evaluate(NETWORKS)
    assert executor.stored_at_once == [True, True, True]  # each before the next was computed
    assert all(cache.get(evaluator.key(network)).node for network in NETWORKS)  # where it ran, filled in


def test_a_failing_executor_keeps_what_it_recorded_and_gives_its_claims_up(tmp_path):
    cache = RewardCache(tmp_path / "rewards.sqlite")
    evaluator = layer(Scripted(cache, fail_at=1), cache)
    with pytest.raises(RuntimeError, match="the executor failed"):
        evaluator.evaluate(NETWORKS)
    assert len(cache) == 1 and cache.claims() == {}
    executor = Scripted()
    answers = layer(executor, tmp_path / "rewards.sqlite").evaluate(NETWORKS)
    assert sum(e.from_cache for e in answers) == 1 and len(executor.batches[0]) == 2


@pytest.mark.parametrize("shared_cache", [True, False])
def test_two_layers_in_two_threads_compute_a_network_once(tmp_path, shared_cache):
    path = tmp_path / "rewards.sqlite"
    executors = [Scripted(seconds=0.3) for _ in range(2)]
    evaluators = [layer(executor, path if shared_cache else None) for executor in executors]
    answers: list[list[Evaluation]] = [[], []]

    def evaluate(index: int) -> None:
        answers[index] = evaluators[index].evaluate(NETWORKS[:1])

    threads = [threading.Thread(target=evaluate, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(executor.batches) for executor in executors) == 1
    assert answers[0][0].accuracy == answers[1][0].accuracy == toy_reward(NETWORKS[0])


def test_the_training_evaluator_is_the_layer_over_local_threads():
    evaluator = TrainingEvaluator(DATA, CONFIG, "cpu", concurrency=2)
    assert isinstance(evaluator, CachedEvaluator) and isinstance(evaluator.executor, LocalExecutor)
    assert evaluator.concurrency == 2 and evaluator.executor.built is None  # nothing placed before a training
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        LocalExecutor(DATA, CONFIG, "cpu", concurrency=0)


class FakeRay(ReadyRay):
    """Nothing may be left over to cancel."""

    @staticmethod
    def cancel(ref, force=False):
        raise AssertionError("nothing is left to cancel")


@pytest.fixture
def fake_ray(monkeypatch):
    """Ray tasks that answer toy rewards; returns the list of networks submitted."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install nasgym[ray] (CI installs it)")
    from nasgym.core import ray_backend

    submitted: list[str] = []

    class Task:
        def remote(self, _box, _config, _device, network):
            submitted.append(str(network))
            return Evaluation(str(network), toy_reward(network), 1.0, 10, node="ray-node")

    class Remote:
        @staticmethod
        def options(**_options):
            return Task()

    monkeypatch.setattr(ray_backend, "connect", lambda _address=None: FakeRay)
    monkeypatch.setattr(ray_backend, "share_dataset", lambda _data: "ref")
    monkeypatch.setattr(ray_backend, "_remote_task", Remote)
    return submitted


def test_the_ray_executor_through_the_same_layer(fake_ray, tmp_path):
    from nasgym.core.ray_backend import RayEvaluator, RayExecutor

    path = tmp_path / "rewards.sqlite"
    evaluator = layer(RayExecutor(DATA, CONFIG, "cpu"), path)
    answers = evaluator.evaluate([*NETWORKS, NETWORKS[0]])
    assert sorted(fake_ray) == sorted(str(network) for network in NETWORKS)  # the repeat submitted once
    assert [e.accuracy for e in answers] == [toy_reward(n) for n in [*NETWORKS, NETWORKS[0]]]
    assert RewardCache(path).get(evaluator.key(NETWORKS[1])).node == "ray-node"

    fake_ray.clear()
    again = RayEvaluator(DATA, CONFIG, "cpu", path)
    assert all(e.from_cache for e in again.evaluate(NETWORKS)) and fake_ray == []  # cached: never submitted
    assert (
        again.key(NETWORKS[0]) == evaluator.key(NETWORKS[0]) == TrainingEvaluator(DATA, CONFIG, "cpu").key(NETWORKS[0])
    )


def test_the_ray_evaluator_composes_rather_than_subclasses_and_decides_its_device_first(fake_ray):
    from nasgym.core.ray_backend import RayEvaluator, RayExecutor

    assert not issubclass(RayEvaluator, TrainingEvaluator) and issubclass(RayEvaluator, CachedEvaluator)
    evaluator = RayEvaluator(DATA, CONFIG, "auto", task_gpus=0.5)  # the workers' device, not this machine's
    assert isinstance(evaluator.executor, RayExecutor) and evaluator.device.type == "cuda"
    assert evaluator.settings == CONFIG.key_fields(torch.device("cuda"))
