"""No network is trained twice: not by two threads, not by processes sharing one reward cache, and the work of a
claimant that died is taken over."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time

import pytest
from claim_worker import LONG, play, train_long
from support import TINY

from nasgym.core.datasets import load_dataset
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.reward_cache import CACHE_FORMAT_VERSION, RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig

CONFIG = TrainConfig(epochs=1, batch_size=64)
NETWORKS = [Architecture.parse(a) for a in ("c3", "c3-m2", "c1-a2", "c5-m3", "m2-c3")]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=16, max_samples=200)


def _context() -> multiprocessing.context.BaseContext:
    """Fresh processes that import the worker module once, in the fork server, instead of once each."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["claim_worker"])
    return context


@pytest.mark.parametrize("shared_cache", [True, False])
def test_threads_wait_for_the_training_in_flight(digits, tmp_path, shared_cache):
    path = tmp_path / "rewards.sqlite"
    evaluators = [TrainingEvaluator(digits, CONFIG, "cpu", path if shared_cache else None) for _ in range(3)]
    results: list[list[Evaluation]] = [[] for _ in evaluators]

    def evaluate(index: int) -> None:
        order = NETWORKS[index:] + NETWORKS[:index]  # each starts elsewhere, and all meet on every network
        results[index] = sorted(evaluators[index].evaluate(order), key=lambda e: e.architecture)

    threads = [threading.Thread(target=evaluate, args=(i,)) for i in range(len(evaluators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(evaluator.stats.trained for evaluator in evaluators) == len(NETWORKS)
    assert sum(evaluator.stats.cache_hits for evaluator in evaluators) == 2 * len(NETWORKS)
    accuracies = [[e.accuracy for e in result] for result in results]
    assert accuracies[0] == accuracies[1] == accuracies[2]
    if shared_cache:
        assert len(RewardCache(path)) == len(NETWORKS)


EPISODES = [[1, 3, 7], [1, 3, 0, 7], [0, 5, 7], [2, 7], [1, 4, 7], [0, 5, 1, 7]]
"""Six episodes that share prefixes (a per-step reward trains every prefix), played by every process in its own
order, so the processes keep asking for the networks the others are training."""


@pytest.mark.slow  # eight fresh processes each load the data and warm torch up: 15-45 s on two cores
def test_eight_processes_sharing_a_cache_train_each_network_once(tmp_path):
    path = str(tmp_path / "rewards.sqlite")
    orders = [[EPISODES[(start + i) % len(EPISODES)] for i in range(4)] for start in range(8)]
    with _context().Pool(8) as pool:
        outcomes = pool.starmap(play, [(path, episodes, {**TINY, "max_samples": 200}) for episodes in orders])
    trainings = sum(trained for trained, _ in outcomes)
    distinct = {network for _, rewarded in outcomes for network in rewarded}
    assert sum(len(rewarded) for _, rewarded in outcomes) > 3 * len(distinct)  # every network asked for often
    assert trainings == len(distinct) == len(RewardCache(path))


def test_the_work_of_a_claimant_that_died_is_taken_over(digits, tmp_path):
    path = tmp_path / "rewards.sqlite"
    claimant = _context().Process(target=train_long, args=(str(path), "c3-m2", 1.0))
    claimant.start()
    cache = RewardCache(path, claim_seconds=1.0)
    deadline = time.monotonic() + 120
    while not cache.claims() and time.monotonic() < deadline:
        time.sleep(0.05)
    [(key, (owner, _))] = cache.claims().items()
    assert owner.split(":")[1] == str(claimant.pid)
    assert cache.claim([key]) == (set(), {})  # a live claim: another process may not take it
    os.kill(claimant.pid, signal.SIGKILL)  # dies training, its claim left behind
    claimant.join()

    evaluator = TrainingEvaluator(digits, LONG, "cpu", cache)
    assert evaluator.key(Architecture.parse("c3-m2")) == key
    [evaluation] = evaluator.evaluate([Architecture.parse("c3-m2")])  # waits for the claim to expire, then trains
    assert evaluator.stats.trained == 1 and evaluation.accuracy > 0 and not evaluation.from_cache
    assert cache.get(key).accuracy == evaluation.accuracy and cache.claims() == {}


def test_a_claim_is_renewed_while_its_training_runs(tmp_path):
    cache = RewardCache(tmp_path / "rewards.sqlite", claim_seconds=0.3)
    claimed, stored = cache.claim(["k"])
    assert claimed == {"k"} and stored == {}
    first_expiry = cache.claims()["k"][1]
    time.sleep(0.7)  # two lifetimes: only renewal keeps it
    other = RewardCache(tmp_path / "rewards.sqlite", claim_seconds=0.3)
    assert other.claim(["k"]) == (set(), {}) and cache.claims()["k"][1] > first_expiry
    cache.put("k", Evaluation("c3", 0.5, 1.0, 10), "digits", {})
    assert cache.claims() == {} and other.claim(["k"])[1]["k"].accuracy == 0.5


V1_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE rewards (key TEXT PRIMARY KEY, architecture TEXT NOT NULL, dataset TEXT NOT NULL,
    accuracy REAL NOT NULL, train_seconds REAL NOT NULL, parameters INTEGER NOT NULL, failure TEXT,
    settings TEXT NOT NULL, created REAL NOT NULL);
INSERT INTO meta VALUES ('format', 'nasgym-reward-cache'), ('format_version', '1');
INSERT INTO rewards VALUES ('old', 'c3', 'digits', 0.75, 2.0, 123, NULL, '{}', 0.0);
"""


def test_a_version_1_cache_is_upgraded_with_its_rewards(tmp_path):
    path = tmp_path / "rewards.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    cache = RewardCache(path)
    old = cache.get("old")
    assert (old.architecture, old.accuracy, old.parameters, old.node) == ("c3", 0.75, 123, "")
    cache.put("new", Evaluation("c5", 0.5, 1.0, 7, node="host-a", execution="cpu"), "digits", {})
    assert (cache.get("new").node, cache.get("new").execution) == ("host-a", "cpu")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE name = 'format_version'").fetchone() == (
            str(CACHE_FORMAT_VERSION),
        )


def test_a_newer_format_is_refused_saying_so(tmp_path):
    path = tmp_path / "rewards.sqlite"
    RewardCache(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'format_version'")
    with pytest.raises(Exception, match="reward-cache format 99, this nasgym reads 1 and 2"):
        RewardCache(path)
