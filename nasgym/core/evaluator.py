"""Turn architectures into rewards: through the reward cache, training only what it has not seen.

The environment asks an evaluator for rewards; agents that sample many architectures at once (REINFORCE)
ask it for a whole batch: ``evaluate`` answers what the cache knows, trains each remaining network once
(one after another, or ``concurrency`` at a time) and stores every reward as soon as it is known.
``FunctionEvaluator`` is the documented hook for a cheap, known reward (toy problems, testing an agent's
learning logic) in place of training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from tqdm.auto import tqdm

from nasgym.core.cpu_runtime import retained_heap
from nasgym.core.datasets import ImageData
from nasgym.core.network import parameter_count
from nasgym.core.reward_cache import CachedReward, RewardCache, reward_key
from nasgym.core.search_space import TERMINAL_ACTION, Architecture
from nasgym.core.trainer import ChildTrainer, TrainConfig, TrainResult, resolve_device


@dataclass(frozen=True)
class Evaluation:
    """The reward of one architecture and where it came from."""

    architecture: str
    accuracy: float
    from_cache: bool
    train_seconds: float
    parameters: int
    failure: str | None = None


@dataclass
class EvaluationStats:
    """What an evaluator has spent: networks trained, answers from the persistent cache, repeats."""

    trained: int = 0
    cache_hits: int = 0
    repeats: int = 0
    train_seconds: float = 0.0


class Evaluator(Protocol):
    def evaluate(self, architectures: Sequence[Architecture]) -> list[Evaluation]:
        """Rewards of valid architectures, in order; duplicates are evaluated once."""
        ...


def network_of(architecture: Architecture) -> Architecture:
    """The computing layers only: 'c3-m2' and 'c3-m2-t' are the same network and share one reward."""
    return Architecture(tuple(a for a in architecture.actions if a != TERMINAL_ACTION))


class TrainingEvaluator:
    """Trains child networks on one dataset (NasGym's reward), answering repeats from the cache.

    ``concurrency`` is how many networks of one ``evaluate`` call train at once (threads sharing the data;
    on CUDA each on its own stream). Rewards do not depend on it: every training has its own random
    streams. The default, 1, trains one after another: on the 2-core CPU the benchmark measured no gain
    from more (benchmarks/README.md); on a GPU run benchmarks/child_training.py before raising it.
    """

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig = TrainConfig(),
        device: str | torch.device = "auto",
        cache: RewardCache | str | Path | None = None,
        concurrency: int = 1,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.data = data
        self.config = config
        self.device = resolve_device(device)
        self.cache = RewardCache(cache) if isinstance(cache, (str, Path)) else cache
        self.concurrency = concurrency
        self.settings = config.key_fields(self.device)
        self.stats = EvaluationStats()
        self._trainer: ChildTrainer | None = None
        # Repeats within this evaluator get the very same answer, so a step is a pure function of the
        # architecture (Gymnasium's determinism check) and provenance is reported as first seen.
        self._memo: dict[str, Evaluation] = {}

    @property
    def trainer(self) -> ChildTrainer:
        """Built on first use, so runs answered entirely from the cache never touch the device."""
        if self._trainer is None:
            self._trainer = ChildTrainer(self.data, self.config, self.device)
        return self._trainer

    def key(self, architecture: Architecture) -> str:
        return reward_key(self.data.fingerprint, network_of(architecture).nsc().tolist(), self.settings)

    def evaluate(self, architectures: Sequence[Architecture]) -> list[Evaluation]:
        keys = [self.key(architecture) for architecture in architectures]
        to_train: dict[str, Architecture] = {}
        for architecture, key in zip(architectures, keys, strict=True):
            if key in self._memo or key in to_train:
                self.stats.repeats += 1
            elif (cached := self._from_cache(architecture, key)) is not None:
                self._memo[key] = cached
            else:
                to_train[key] = network_of(architecture)
        if to_train:
            self._train_all(to_train)
        return [self._memo[key] for key in keys]

    def _from_cache(self, architecture: Architecture, key: str) -> Evaluation | None:
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is None:
            return None
        self.stats.cache_hits += 1
        name = str(network_of(architecture))
        return Evaluation(name, cached.accuracy, True, cached.train_seconds, cached.parameters, cached.failure)

    def _train_all(self, to_train: dict[str, Architecture]) -> None:
        trainer = self.trainer
        workers = min(self.concurrency, len(to_train))
        keep_heap = retained_heap() if self.device.type == "cpu" else contextlib.nullcontext()
        with (
            keep_heap,
            tqdm(total=len(to_train), desc="training", unit="net", disable=True if len(to_train) < 2 else None) as bar,
        ):
            if workers == 1:
                for key, network in to_train.items():
                    self._record(key, network, trainer.train(network))
                    bar.update()
                return
            pool = ThreadPoolExecutor(workers, thread_name_prefix="nasgym-train")
            futures = {pool.submit(trainer.train, network): (key, network) for key, network in to_train.items()}
            try:
                for future in as_completed(futures):  # each reward is stored as soon as it is known
                    self._record(*futures.pop(future), future.result())
                    bar.update()
            finally:  # interrupted: threads cannot be stopped, so keep what the running ones finish
                pool.shutdown(wait=True, cancel_futures=True)
                for future, (key, network) in futures.items():
                    if not future.cancelled() and future.exception() is None:
                        self._record(key, network, future.result())

    def _record(self, key: str, network: Architecture, result: TrainResult) -> None:
        name = str(network)
        self.stats.trained += 1
        self.stats.train_seconds += result.train_seconds
        if self.cache is not None:
            reward = CachedReward(result.accuracy, result.train_seconds, result.parameters, result.failure)
            settings = {**self.settings, "dataset": self.data.name}
            self.cache.put(key, name, self.data.name, reward, settings)
        evaluation = Evaluation(name, result.accuracy, False, result.train_seconds, result.parameters, result.failure)
        self._memo[key] = evaluation


class FunctionEvaluator:
    """Reward = ``reward_fn(architecture)``, no training: a cheap known reward for tests and toy problems."""

    def __init__(self, reward_fn: Callable[[Architecture], float], n_classes: int = 10, image_size: int = 84):
        self.reward_fn = reward_fn
        self.n_classes = n_classes
        self.image_size = image_size
        self.stats = EvaluationStats()

    def evaluate(self, architectures: Sequence[Architecture]) -> list[Evaluation]:
        results = []
        for architecture in architectures:
            self.stats.trained += 1
            network = network_of(architecture)
            accuracy = float(self.reward_fn(network))
            params = parameter_count(network, self.n_classes, self.image_size)
            results.append(Evaluation(str(network), accuracy, False, 0.0, params))
        return results
