"""Turn architectures into rewards: a reward layer over an executor, answering repeats from the reward cache.

``CachedEvaluator`` is the reward layer, written once: it answers what it has memoised or the cache knows, claims
the rest so that no network is computed twice (another environment, evaluator or process sharing the cache file
computing it already is waited for: ``nasgym.core.inflight``), hands what it claimed to its executor
(``nasgym.core.executors``) and stores every reward the executor reports as soon as it is known. Agents that
sample many architectures at once (REINFORCE) ask for a whole batch through ``NASEnv.prefetch``.
``TrainingEvaluator`` is that layer over local training (one after another, or ``concurrency`` threads); the Ray
backend's ``RayEvaluator`` is the same layer over Ray tasks. ``FunctionEvaluator`` is the documented hook for a
cheap, known reward (toy problems, testing an agent's learning logic) in place of training.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch

from nasgym.core import spaces
from nasgym.core.config import EnvConfig
from nasgym.core.datasets import ImageData, load_dataset
from nasgym.core.errors import ArchitectureError
from nasgym.core.evaluation import Evaluation, EvaluationStats
from nasgym.core.executors import Executor, LocalExecutor
from nasgym.core.inflight import InFlight
from nasgym.core.network import NetworkConfig
from nasgym.core.paths import default_cache_path
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import DEFAULT_IMAGE_SIZE
from nasgym.core.training import ChildTrainer, EpochCallback, TrainConfig, resolve_device


def checked(architectures: Sequence[spaces.Network]) -> Sequence[spaces.Network]:
    """``architectures`` if each is one: a string or an action list would fail deep inside the evaluator instead."""
    for item in architectures:
        if not spaces.is_network(item):
            raise ArchitectureError(
                f"evaluate takes architectures, got {type(item).__name__} {item!r}; parse text with "
                "Architecture.parse('c3-m2')"
            )
    return architectures


@runtime_checkable
class Evaluator(Protocol):
    """What the environments, the vector env and the runners use of a reward source (``reward_sources.py`` builds
    one per ``reward_source``). ``EvaluatorBase`` holds the defaults of every member but ``evaluate``."""

    stationary: bool
    """True: a network's reward is a function of the network alone, so callers may evaluate ahead of the steps
    (prefetch, a vector env's batch). False: rewards move as the evaluator's state does (shared weights that each
    evaluation trains): networks are evaluated in step order only, Gymnasium's spec is marked nondeterministic, and
    a search's checkpoint holds ``state_dict()``."""

    def evaluate(
        self, architectures: Sequence[spaces.Network], on_epoch: EpochCallback | None = None
    ) -> list[Evaluation]:
        """Rewards of valid architectures, in order; duplicates are evaluated once. ``on_epoch(epoch)`` is called
        after each epoch of a training run in this process (evaluators that train nothing by epochs never call it)."""
        ...

    def cached(self, architecture: spaces.Network) -> Evaluation | None:
        """The reward this evaluator would answer without training, if any."""
        ...

    def prepare(self) -> Evaluator:
        """Do now what could fail at the first training (split and place the data, reach a cluster), so a caller
        fails before it shows progress; returns the evaluator."""
        ...

    def close(self) -> None:
        """Release what the evaluator holds open (a reward cache's connection); it reopens if used again."""
        ...

    def state_dict(self) -> dict[str, Any] | None:
        """The state rewards depend on, for a search's checkpoint; None for a stationary evaluator."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``."""
        ...


AnyEvaluator = TypeVar("AnyEvaluator", bound="EvaluatorBase")


class EvaluatorBase:
    """The defaults of ``Evaluator``'s members for a stationary reward source with nothing to prepare, close or
    checkpoint: subclass it and write ``evaluate`` (as ``FunctionEvaluator`` does), overriding what differs."""

    stationary: bool = True

    def cached(self, architecture: spaces.Network) -> Evaluation | None:
        """Nothing is known without evaluating."""
        return None

    def prepare(self: AnyEvaluator) -> AnyEvaluator:
        """Nothing to prepare; the evaluator itself, so a subclass stays an ``Evaluator``."""
        return self

    def close(self) -> None:
        """Nothing to close."""

    def state_dict(self) -> dict[str, Any] | None:
        """No state: rewards depend on the network alone."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to load: rewards depend on the network alone."""


class CachedEvaluator(EvaluatorBase):
    """The reward layer over an executor: every network is computed once, and each reward stored as it is known.

    A network asked again of this evaluator gets the very same answer (a step is then a pure function of the
    architecture, Gymnasium's determinism check, and provenance is reported as first seen); one the reward cache
    holds is answered from it; one another thread or process is computing is waited for; only the rest reach
    ``executor.run``, each claimed first and its claim given up if the executor fails. ``device`` is where the
    executor computes, part of every reward key with ``config``'s settings and the data's fingerprint.
    """

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig,
        device: torch.device,
        executor: Executor,
        cache: RewardCache | str | Path | None = None,
    ):
        self.data = data
        self.config = config
        self.device = device
        self.executor = executor
        self.cache = RewardCache(cache) if isinstance(cache, (str, Path)) else cache
        self.settings = config.key_fields(device)
        self.stats = EvaluationStats()
        self._memo: dict[str, Evaluation] = {}

    def prepare(self) -> CachedEvaluator:
        """Prepare the executor now (split and place the data, reach a cluster) rather than at the first
        computation, so what cannot work fails before a caller shows progress."""
        self.executor.prepare()
        return self

    def close(self) -> None:
        """Close the reward cache's connection (it reopens if the evaluator is used again)."""
        if self.cache is not None:
            self.cache.close()

    def key(self, architecture: spaces.Network) -> str:
        return spaces.network_key(self.data.fingerprint, architecture.network, self.settings)

    def cached(self, architecture: spaces.Network) -> Evaluation | None:
        """The reward this evaluator would answer without training, if any."""
        key = self.key(architecture)
        if key in self._memo:
            return self._memo[key]
        return self.cache.get(key) if self.cache is not None else None

    def evaluate(
        self, architectures: Sequence[spaces.Network], on_epoch: EpochCallback | None = None
    ) -> list[Evaluation]:
        keys = [self.key(architecture) for architecture in checked(architectures)]
        to_compute: dict[str, spaces.Network] = {}
        for architecture, key in zip(architectures, keys, strict=True):
            if key in self._memo or key in to_compute:
                self.stats.repeats += 1
            elif (cached := self.cache.get(key) if self.cache is not None else None) is not None:
                self.stats.cache_hits += 1
                self._memo[key] = cached
            else:
                to_compute[key] = architecture.network
        if to_compute:
            self._compute_unclaimed(to_compute, on_epoch)
        return [self._memo[key] for key in keys]

    def _compute_unclaimed(self, to_compute: dict[str, spaces.Network], on_epoch: EpochCallback | None) -> None:
        """Have the executor compute the networks nobody else is computing; wait for the others' rewards (or take
        their work over when their claims expire)."""
        in_flight = InFlight(self.cache)
        waiting = dict(to_compute)

        def record(key: str, network: spaces.Network, evaluation: Evaluation) -> None:
            self._record(key, network, evaluation)
            in_flight.finish(key, self._memo[key])

        try:
            while waiting:
                mine, answered = in_flight.take(waiting)
                for key, evaluation in answered.items():
                    del waiting[key]
                    self.stats.cache_hits += 1
                    self._memo[key] = evaluation
                if mine:
                    self.executor.run({key: waiting.pop(key) for key in mine}, record, on_epoch)
                elif not answered:
                    in_flight.wait()
        finally:
            in_flight.release()

    def _record(self, key: str, network: spaces.Network, evaluation: Evaluation) -> None:
        """Count, store and memoise one computed reward."""
        if not evaluation.node:
            evaluation = replace(evaluation, node=socket.gethostname())
        self.stats.trained += 1
        self.stats.train_seconds += evaluation.train_seconds
        if self.cache is not None:
            self.cache.put(key, evaluation, self.data.name, {**self.settings, "dataset": self.data.name})
        self._memo[key] = evaluation


class TrainingEvaluator(CachedEvaluator):
    """Trains child networks on one dataset in this process (NasGym's reward), answering repeats from the cache.

    ``concurrency`` is how many networks of one ``evaluate`` call train at once (``LocalExecutor``: threads sharing
    the data; on CUDA each thread on its own stream); rewards do not depend on it. The default, 1, trains one after
    another: on the 2-core CPU the benchmark measured no gain from more (benchmarks/README.md); on a GPU run
    benchmarks/child_training.py before raising it.
    """

    executor: LocalExecutor

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig = TrainConfig(),
        device: str | torch.device = "auto",
        cache: RewardCache | str | Path | None = None,
        concurrency: int = 1,
    ):
        executor = LocalExecutor(data, config, resolve_device(device), concurrency)
        super().__init__(data, config, executor.device, executor, cache)

    @classmethod
    def from_config(
        cls, config: EnvConfig, train_config: TrainConfig, concurrency: int = 1, data: ImageData | None = None
    ) -> TrainingEvaluator:
        """The evaluator ``NAS-v0`` builds for these settings: its dataset at its image size (``data`` when already
        loaded), its device and reward cache. ``nasgym train``, ``nasgym final`` and the experiments build theirs
        the same way."""
        return cls(data or load_data(config), train_config, config.device, cache_path_of(config), concurrency)

    @property
    def concurrency(self) -> int:
        return self.executor.concurrency

    @property
    def trainer(self) -> ChildTrainer:
        """The executor's trainer, built on first use (runs answered entirely from the cache never touch the device);
        for trainings that bypass the reward layer (a baseline that is no network of the space)."""
        return self.executor.trainer

    @property
    def _trainer(self) -> ChildTrainer | None:
        """The trainer if one was built."""
        return self.executor.built


def load_data(config: EnvConfig) -> ImageData:
    """The images an environment with these settings trains on."""
    return load_dataset(config.dataset, config.image_size, config.max_samples, config.data_dir, resize=config.resize)


def cache_path_of(config: EnvConfig) -> str | Path | None:
    """The reward cache file these settings use, None without a cache."""
    return (config.cache_path or default_cache_path()) if config.cache else None


class FunctionEvaluator(EvaluatorBase):
    """Reward = ``reward_fn(network)``, no training: a cheap known reward for tests and toy problems."""

    def __init__(
        self,
        reward_fn: Callable[[spaces.Network], float],
        n_classes: int = 10,
        image_size: int = DEFAULT_IMAGE_SIZE,
    ):
        self.reward_fn = reward_fn
        self.n_classes = n_classes
        self.image_size = image_size
        self.stats = EvaluationStats()

    def evaluate(
        self, architectures: Sequence[spaces.Network], on_epoch: EpochCallback | None = None
    ) -> list[Evaluation]:
        results = []
        for architecture in checked(architectures):
            self.stats.trained += 1
            network = architecture.network
            accuracy = float(self.reward_fn(network))
            params = spaces.of(network).parameter_count(network, self.n_classes, self.image_size, NetworkConfig())
            results.append(Evaluation(str(network), accuracy, 0.0, params, source="function"))
        return results
