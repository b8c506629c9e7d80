"""Turn architectures into rewards: through the reward cache, training only what it has not seen.

The environment asks an evaluator for rewards; agents that sample many architectures at once (REINFORCE)
ask for a whole batch through ``NASEnv.prefetch``: ``evaluate`` answers what the cache knows, trains each
remaining network once (one after another, or ``concurrency`` at a time) and stores every reward as soon as it
is known. A network that another environment, evaluator or process (sharing the cache file) is training
already is waited for rather than trained again (``nasgym.core.inflight``). ``FunctionEvaluator`` is the
documented hook for a cheap, known reward (toy problems, testing an agent's learning logic) in place of training.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from nasgym.core.config import EnvConfig
from nasgym.core.datasets import ImageData, load_dataset
from nasgym.core.errors import ArchitectureError
from nasgym.core.evaluation import Evaluation, EvaluationStats
from nasgym.core.inflight import InFlight
from nasgym.core.network import parameter_count
from nasgym.core.paths import default_cache_path
from nasgym.core.progress import bars_disabled
from nasgym.core.reward_cache import RewardCache, reward_key
from nasgym.core.search_space import DEFAULT_IMAGE_SIZE, Architecture
from nasgym.core.training import ChildTrainer, EpochCallback, TrainConfig, resolve_device, retained_heap
from nasgym.core.zophle.network import parameter_count as zophle_parameter_count
from nasgym.core.zophle.space import ZophLeArchitecture

Record = Callable[[str, Architecture, Evaluation], None]
"""Called with each trained network's key, network and reward as soon as it is known."""

PROGRESS_AFTER_SECONDS = 10.0
"""A training still running after this long shows an epoch progress bar on a terminal (and is gone when done)."""


def checked(architectures: Sequence[Architecture]) -> Sequence[Architecture]:
    """``architectures`` if each is one: a string or an action list would fail deep inside the evaluator instead."""
    for item in architectures:
        if not isinstance(item, Architecture | ZophLeArchitecture):
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
        self, architectures: Sequence[Architecture], on_epoch: EpochCallback | None = None
    ) -> list[Evaluation]:
        """Rewards of valid architectures, in order; duplicates are evaluated once. ``on_epoch(epoch)`` is called
        after each epoch of a training run in this process (evaluators that train nothing by epochs never call it)."""
        ...

    def cached(self, architecture: Architecture) -> Evaluation | None:
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


class EvaluatorBase:
    """The defaults of ``Evaluator``'s members for a stationary reward source with nothing to prepare, close or
    checkpoint: subclass it and write ``evaluate`` (as ``FunctionEvaluator`` does), overriding what differs."""

    stationary: bool = True

    def cached(self, architecture: Architecture) -> Evaluation | None:
        """Nothing is known without evaluating."""
        return None

    def prepare(self) -> EvaluatorBase:
        return self

    def close(self) -> None:
        """Nothing to close."""

    def state_dict(self) -> dict[str, Any] | None:
        """No state: rewards depend on the network alone."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to load: rewards depend on the network alone."""


class TrainingEvaluator(EvaluatorBase):
    """Trains child networks on one dataset (NasGym's reward), answering repeats from the cache.

    ``concurrency`` is how many networks of one ``evaluate`` call train at once (threads sharing the data;
    on CUDA each thread on its own stream). Rewards do not depend on it: every training has its own random
    streams, and a network that runs out of memory beside others is trained again alone, after them, before
    its failure is recorded. The default, 1, trains one after another: on the 2-core CPU the benchmark
    measured no gain from more (benchmarks/README.md); on a GPU run benchmarks/child_training.py before
    raising it.
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
        self.device = self._resolve_device(device)
        self.cache = RewardCache(cache) if isinstance(cache, (str, Path)) else cache
        self.concurrency = concurrency
        self.settings = config.key_fields(self.device)
        self.stats = EvaluationStats()
        self._trainer: ChildTrainer | None = None
        # Repeats within this evaluator get the very same answer, so a step is a pure function of the
        # architecture (Gymnasium's determinism check) and provenance is reported as first seen.
        self._memo: dict[str, Evaluation] = {}

    @classmethod
    def from_config(
        cls, config: EnvConfig, train_config: TrainConfig, concurrency: int = 1, data: ImageData | None = None
    ) -> TrainingEvaluator:
        """The evaluator ``NAS-v0`` builds for these settings: its dataset at its image size (``data`` when already
        loaded), its device and reward cache. ``nasgym train``, ``nasgym final`` and the experiments build theirs
        the same way."""
        return cls(data or load_data(config), train_config, config.device, cache_path_of(config), concurrency)

    @staticmethod
    def _resolve_device(device: str | torch.device) -> torch.device:
        return resolve_device(device)

    def __getstate__(self) -> dict:
        """Pickles and deep copies leave the trainer behind: it is the dataset again, placed on the device, and it
        is rebuilt where it is next needed. The memo and the statistics travel, so a copy answers repeats as this
        evaluator does; the reward cache travels as its file (``RewardCache`` reconnects), shared by both."""
        return {**self.__dict__, "_trainer": None}

    @property
    def trainer(self) -> ChildTrainer:
        """Built on first use, so runs answered entirely from the cache never touch the device."""
        if self._trainer is None:
            self._trainer = ChildTrainer(self.data, self.config, self.device)
        return self._trainer

    def prepare(self) -> TrainingEvaluator:
        """Split and place the data now rather than at the first training, so a split that cannot work fails
        before a caller shows progress."""
        _ = self.trainer
        return self

    def close(self) -> None:
        """Close the reward cache's connection (it reopens if the evaluator is used again)."""
        if self.cache is not None:
            self.cache.close()

    def key(self, architecture: Architecture) -> str:
        network = architecture.network
        if isinstance(network, ZophLeArchitecture):
            return reward_key(self.data.fingerprint, network.encoding(), self.settings, space=network.space)
        return reward_key(self.data.fingerprint, network.nsc().tolist(), self.settings)

    def cached(self, architecture: Architecture) -> Evaluation | None:
        """The reward this evaluator would answer without training, if any."""
        key = self.key(architecture)
        if key in self._memo:
            return self._memo[key]
        return self.cache.get(key) if self.cache is not None else None

    def evaluate(
        self, architectures: Sequence[Architecture], on_epoch: EpochCallback | None = None
    ) -> list[Evaluation]:
        keys = [self.key(architecture) for architecture in checked(architectures)]
        to_train: dict[str, Architecture] = {}
        for architecture, key in zip(architectures, keys, strict=True):
            if key in self._memo or key in to_train:
                self.stats.repeats += 1
            elif (cached := self.cache.get(key) if self.cache is not None else None) is not None:
                self.stats.cache_hits += 1
                self._memo[key] = cached
            else:
                to_train[key] = architecture.network
        if to_train:
            self._train_unclaimed(to_train, on_epoch)
        return [self._memo[key] for key in keys]

    def _train_unclaimed(self, to_train: dict[str, Architecture], on_epoch: EpochCallback | None) -> None:
        """Train the networks nobody else is training; wait for the others' rewards (or take their work over)."""
        in_flight = InFlight(self.cache)
        waiting = dict(to_train)

        def record(key: str, network: Architecture, evaluation: Evaluation) -> None:
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
                    self._train_all({key: waiting.pop(key) for key in mine}, on_epoch, record)
                elif not answered:
                    in_flight.wait()
        finally:
            in_flight.release()

    def _train_all(self, to_train: dict[str, Architecture], on_epoch: EpochCallback | None, record: Record) -> None:
        trainer = self.trainer
        workers = min(self.concurrency, len(to_train), trainer.max_threads)
        keep_heap = retained_heap() if self.device.type == "cpu" else contextlib.nullcontext()
        quiet = True if len(to_train) < 2 else None  # None: tqdm shows the bar on a terminal only
        with keep_heap, tqdm(total=len(to_train), desc="training", unit="net", disable=bars_disabled(quiet)) as bar:
            if workers == 1:
                for key, network in to_train.items():
                    record(key, network, self._train_one(network, on_epoch))
                    bar.update()
                return
            alone: dict[str, Architecture] = {}  # out of memory beside the others: perhaps not alone

            def finish(key: str, network: Architecture, evaluation: Evaluation) -> None:
                if self._out_of_memory(evaluation):
                    alone[key] = network
                else:
                    record(key, network, evaluation)
                    bar.update()

            pool = ThreadPoolExecutor(workers, thread_name_prefix="nasgym-train")
            futures = {pool.submit(trainer.train, net, on_epoch=on_epoch): (key, net) for key, net in to_train.items()}
            try:
                for future in as_completed(futures):  # each reward is stored as soon as it is known
                    finish(*futures.pop(future), future.result())
            finally:  # interrupted: threads cannot be stopped, so keep what the running ones finish
                pool.shutdown(wait=True, cancel_futures=True)
                for future, (key, network) in futures.items():
                    if not future.cancelled() and future.exception() is None:
                        finish(key, network, future.result())
            if alone:  # every other training has finished: one at a time, with the device's memory handed back
                trainer.release_device_memory()
            for key, network in alone.items():
                record(key, network, self._train_one(network, on_epoch))
                bar.update()

    @staticmethod
    def _out_of_memory(evaluation: Evaluation) -> bool:
        """A failure that trainings beside this one may have caused, so never recorded before a training alone."""
        return evaluation.failure.startswith("out of memory")

    def _train_one(self, network: Architecture, on_epoch: EpochCallback | None) -> Evaluation:
        """One training; a long one shows that it is alive (12 epochs at 84 px take minutes on a CPU)."""
        if on_epoch is not None:
            return self.trainer.train(network, on_epoch=on_epoch)
        with tqdm(
            total=self.config.epochs,
            desc=f"training {network}",
            unit="epoch",
            delay=PROGRESS_AFTER_SECONDS,
            leave=False,
            disable=bars_disabled(),
        ) as bar:
            return self.trainer.train(network, on_epoch=lambda _epoch: bar.update())

    def _record(self, key: str, network: Architecture, evaluation: Evaluation) -> None:
        if not evaluation.node:
            evaluation = replace(evaluation, node=socket.gethostname())
        self.stats.trained += 1
        self.stats.train_seconds += evaluation.train_seconds
        if self.cache is not None:
            self.cache.put(key, evaluation, self.data.name, {**self.settings, "dataset": self.data.name})
        self._memo[key] = evaluation


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
        reward_fn: Callable[[Architecture], float],
        n_classes: int = 10,
        image_size: int = DEFAULT_IMAGE_SIZE,
    ):
        self.reward_fn = reward_fn
        self.n_classes = n_classes
        self.image_size = image_size
        self.stats = EvaluationStats()

    def evaluate(
        self, architectures: Sequence[Architecture], on_epoch: EpochCallback | None = None
    ) -> list[Evaluation]:
        results = []
        for architecture in checked(architectures):
            self.stats.trained += 1
            network = architecture.network
            accuracy = float(self.reward_fn(network))
            if isinstance(network, ZophLeArchitecture):
                params = zophle_parameter_count(network.layers, self.n_classes)
            else:
                params = parameter_count(network, self.n_classes, self.image_size)
            results.append(Evaluation(str(network), accuracy, 0.0, params, source="function"))
        return results
