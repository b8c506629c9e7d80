"""The Ray backend on a local Ray instance (2 CPUs, no dashboard, nothing over the network): the local evaluator's
rewards, retries when a worker dies, experiments whose searches are Ray tasks, and the error without Ray."""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import gymnasium as gym
import psutil
import pytest
from support import TINY, colour_folder

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.datasets import load_dataset
from nasgym.core.errors import ConfigError, NasGymError
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.threads import single_threaded
from nasgym.core.training import TrainConfig
from nasgym.runners.cli import main
from nasgym.runners.experiments.bench import BenchSettings, run_bench
from nasgym.runners.experiments.records import path_name
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search

NO_RAY = "Ray is not installed: pip install nasgym[ray] (CI installs it)"
CONFIG = TrainConfig(epochs=1, batch_size=64)
NETWORKS = [Architecture.parse(a) for a in ("c3", "c3-m2", "c1-a2", "c5-m3", "m2-c3")]
SLOW_TRAINING = {"epochs": 6, "image_size": 16, "batch_size": 32, "device": "cpu", "max_samples": 600}
"""About a second per network here: long enough to kill the worker in the middle of a training."""


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray", reason=NO_RAY)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=16, max_samples=200)


def test_a_batch_through_ray_gets_the_local_evaluators_rewards(ray, digits, tmp_path):
    from nasgym.core.ray_backend import RayEvaluator

    path = tmp_path / "rewards.sqlite"
    remote = RayEvaluator(digits, CONFIG, "cpu", path, task_cpus=1).evaluate(NETWORKS)
    with single_threaded():  # a task asking for 1 CPU trains on 1 thread; float sums depend on the thread count
        local = TrainingEvaluator(digits, CONFIG, "cpu").evaluate(NETWORKS)
    assert [(e.architecture, e.accuracy, e.parameters) for e in remote] == [
        (e.architecture, e.accuracy, e.parameters) for e in local
    ]
    here = ray.get_runtime_context().get_node_id()
    assert {e.node for e in remote} == {here} and all("1 threads; ray worker" in e.execution for e in remote)
    assert all(str(os.getpid()) not in e.execution for e in remote)  # trained in worker processes
    cache = RewardCache(path)
    assert len(cache) == len(NETWORKS) and cache.get(RayEvaluator(digits, CONFIG, "cpu").key(NETWORKS[1])).node == here

    again = RayEvaluator(digits, CONFIG, "cpu", path)
    assert [e.accuracy for e in again.evaluate(NETWORKS)] == [e.accuracy for e in remote]
    assert again.stats.trained == 0 and again.stats.cache_hits == len(NETWORKS)


def test_gym_make_with_backend_ray_steps_to_the_same_rewards(ray):
    options = {**TINY, "max_samples": 200, "cache": False}
    env = gym.make("NAS-v0", backend="ray", **options)
    assert type(env.unwrapped.evaluator).__name__ == "RayEvaluator"
    env.reset()
    with single_threaded():
        local = gym.make("NAS-v0", **options)
        local.reset()
        expected = [local.step(action)[1] for action in (1, 3, 7)]
    assert [env.step(action)[1] for action in (1, 3, 7)] == expected


def _training_worker(timeout: float = 120.0) -> psutil.Process:
    """The Ray worker process that is training a network right now (Ray names it after the task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            if (process.info["cmdline"] or [""])[0].startswith("ray::nasgym-train"):
                return process
        time.sleep(0.01)
    raise AssertionError("no Ray worker started a training")


def test_a_killed_training_is_retried_and_the_search_goes_on(ray, tmp_path):
    path = tmp_path / "rewards.sqlite"
    options = {**SLOW_TRAINING, "backend": "ray", "cache_path": str(path)}
    settings = SearchSettings("random", "digits", steps=6, env_options=options)
    outcome: dict = {}
    search = threading.Thread(target=lambda: outcome.update(run_search(tmp_path / "run", settings, progress=False)))
    search.start()
    victim = _training_worker()
    victim.kill()
    search.join(timeout=600)
    assert not victim.is_running() and outcome["steps"] == 6
    rewarded = [row for row in RunFolder(tmp_path / "run").episodes() if row.rewarded]
    assert all(row.accuracy > 0 and not row.failure for row in rewarded)
    assert len(RewardCache(path)) == len({row.network for row in rewarded}) == outcome["trained"]


def test_without_retries_a_killed_training_fails_in_one_line_and_frees_its_claim(ray, tmp_path):
    from nasgym.core.ray_backend import RayEvaluator

    data = load_dataset("digits", image_size=16, max_samples=600)
    config = TrainConfig(epochs=40, batch_size=32)
    evaluator = RayEvaluator(data, config, "cpu", tmp_path / "rewards.sqlite", max_retries=0)
    failure: list[BaseException] = []

    def evaluate() -> None:
        try:
            evaluator.evaluate([Architecture.parse("c3-m2")])
        except NasGymError as error:
            failure.append(error)

    thread = threading.Thread(target=evaluate)
    thread.start()
    _training_worker().kill()
    thread.join(timeout=120)
    assert len(failure) == 1 and "failed after 0 retries" in str(failure[0]) and "\n" not in str(failure[0])
    assert len(evaluator.cache) == 0 and evaluator.cache.claims() == {}


def test_bench_runs_its_searches_as_ray_tasks_and_resumes(ray, tmp_path):
    path = tmp_path / "rewards.sqlite"
    options = {**TINY, "max_samples": 200, "backend": "ray", "cache_path": str(path)}
    settings = BenchSettings(["digits"], ["random"], steps=3, seeds=2, env_options=options)
    run_bench(tmp_path / "bench", settings, progress=False)
    folders = [tmp_path / "bench" / "runs" / "digits" / "random" / f"seed{seed}" for seed in range(2)]
    for folder in folders:
        assert len(RunFolder(folder).episodes()) == 3
        [events] = (folder / "tensorboard").iterdir()  # events.out.tfevents.TIME.HOST.PID.N
        assert events.name.split(".")[-2] != str(os.getpid())  # written by a Ray worker, not by this process

    results = run_bench(tmp_path / "bench", BenchSettings(["digits"], ["random"], 5, 2, options), progress=False)
    assert [len(RunFolder(folder).episodes()) for folder in folders] == [5, 5]
    assert [run["seed"] for run in results["runs"]] == [0, 1]


def test_asking_for_ray_without_it_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    with pytest.raises(ConfigError, match=r"needs Ray, which is not installed here: pip install nasgym\[ray\]"):
        gym.make("NAS-v0", backend="ray", **TINY)


def test_transfer_with_ray_starts_each_held_out_phase_after_the_training_it_continues(ray, tmp_path):
    import torch

    out = tmp_path / "transfer"
    held_out = f"folder:{colour_folder(tmp_path / 'colours')}"
    argv = ["transfer", "--ray", "--agent", "meta_a2c", "--train", "digits", "--eval", held_out, "--steps-train", "4",
            "--steps-eval", "3", "--out", str(out), "--epochs", "1", "--image-size", "16", "--max-samples", "200",
            "--batch-size", "64", "--device", "cpu", "--cache-path", str(tmp_path / "r.sqlite"),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    eval_dir = out / "seed0" / "eval" / path_name(held_out)  # folder-colours-HASH, one short folder
    steps = {v: torch.load(eval_dir / v / "agent.pt", weights_only=True)["num_timesteps"]
             for v in ("frozen", "fine_tuned", "scratch")}  # fmt: skip
    assert steps == {"frozen": 4, "fine_tuned": 4 + 3, "scratch": 3}  # frozen and fine-tuned began from the policy
    assert json.loads((out / "results.json").read_text())["settings"]["env_options"]["backend"] == "ray"


def test_a_search_over_copies_hands_ray_each_steps_networks_as_one_batch(ray, tmp_path):
    """``--num-envs 2 --ray``: both copies' networks of a step go to Ray in one call, and train in Ray workers."""
    path = tmp_path / "rewards.sqlite"
    options = {**TINY, "max_samples": 150, "backend": "ray", "cache_path": str(path)}
    envs = gym.make_vec("NAS-v0", num_envs=2, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, **options)
    evaluator, calls = envs.unwrapped.evaluator, []
    evaluate = evaluator.evaluate

    def recording(architectures, *args, **kwargs):
        trained = evaluator.stats.trained
        evaluations = evaluate(architectures, *args, **kwargs)
        calls.append((len(architectures), evaluator.stats.trained - trained))
        return evaluations

    evaluator.evaluate = recording
    settings = SearchSettings("random", "digits", steps=6, env_options=options, num_envs=2)
    summary = run_search(tmp_path / "run", settings, progress=False, env=envs)
    rows = RunFolder(tmp_path / "run").episodes()
    assert [row.env for row in rows] == [0, 1] * 3 and summary["trained"] == sum(trained for _, trained in calls)
    assert (2, 2) in calls and all(trained == 0 for asked, trained in calls if asked == 1)
    cache = RewardCache(path)
    assert all("ray worker" in cache.get(evaluator.key(Architecture.parse(row.architecture))).execution for row in rows)


def test_nas_zophle_v0_trains_its_networks_through_ray_to_the_same_rewards(ray):
    options = {**TINY, "dataset": "digits", "max_samples": 200, "cache": False, "layers": 2, "strides": False}
    env = gym.make("NAS-ZophLe-v0", backend="ray", **options)
    assert type(env.unwrapped.evaluator).__name__ == "RayEvaluator"
    tokens = [1, 1, 0, 0, 1, 2, 1]  # 3x3 conv of 24 filters, then 5x5 conv of 36 fed by the first
    env.reset()
    rewards = [env.step(action)[1] for action in tokens]
    with single_threaded():
        local = gym.make("NAS-ZophLe-v0", **options)
        local.reset()
        expected = [local.step(action)[1] for action in tokens]
    assert rewards == expected and rewards[-1] > 0 and rewards[:-1] == [0.0] * (len(tokens) - 1)
