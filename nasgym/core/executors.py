"""Executors: what turns networks into rewards once the reward layer (``nasgym.core.evaluator.CachedEvaluator``)
has decided they must be computed.

The reward layer answers repeats, reads and writes the reward cache and claims the networks it computes, so that no
network is trained twice; an executor only computes. It is handed every network one ``evaluate`` call still needs
and reports each reward through ``record`` as soon as it is known, so a reward is stored (and others waiting for it
wake) while the rest still train. ``LocalExecutor`` trains in this process, one at a time or on threads; the Ray
executor (``nasgym.core.ray_backend.RayExecutor``) trains as Ray tasks. Any object with ``run`` and ``prepare`` is
one (a test double, a job queue).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Protocol, runtime_checkable

import torch
from tqdm.auto import tqdm

from nasgym.core.datasets import ImageData
from nasgym.core.evaluation import Evaluation
from nasgym.core.progress import bars_disabled
from nasgym.core.spaces import Network
from nasgym.core.training import ChildTrainer, EpochCallback, TrainConfig, resolve_device, retained_heap

Record = Callable[[str, Network, Evaluation], None]
"""Called with each computed network's reward key, network and reward as soon as it is known."""

PROGRESS_AFTER_SECONDS = 10.0
"""A training still running after this long shows an epoch progress bar on a terminal (and is gone when done)."""


@runtime_checkable
class Executor(Protocol):
    """Computes the rewards of networks the reward layer has claimed; keeps no answers of its own."""

    def run(self, networks: Mapping[str, Network], record: Record, on_epoch: EpochCallback | None = None) -> None:
        """Compute every network of ``networks`` (reward key -> network) and call ``record(key, network, reward)``
        for each, once, as soon as its reward is known, in any order. Returning means all were recorded; raising
        leaves the unrecorded ones to the reward layer, which gives their claims up. ``on_epoch(epoch)``: after each
        epoch of a training in this process (executors that train elsewhere never call it)."""
        ...

    def prepare(self) -> None:
        """Do now what could fail at the first computation (split and place the data, reach a cluster)."""
        ...


def out_of_memory(evaluation: Evaluation) -> bool:
    """A failure that trainings beside this one may have caused, so never recorded before a training alone."""
    return evaluation.failure.startswith("out of memory")


class LocalExecutor:
    """Trains in this process on one ``ChildTrainer``: one network after another, or ``concurrency`` at once.

    Threads share the trainer's placed data (on CUDA each on its own stream). Rewards do not depend on the
    concurrency: every training has its own random streams, and a network that runs out of memory beside others is
    trained again alone, after them, before its failure is recorded.
    """

    def __init__(self, data: ImageData, config: TrainConfig, device: str | torch.device = "auto", concurrency: int = 1):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.data = data
        self.config = config
        self.device = resolve_device(device)
        self.concurrency = concurrency
        self._trainer: ChildTrainer | None = None

    def __getstate__(self) -> dict:
        """Pickles and deep copies leave the trainer behind: it is the dataset again, placed on the device, and it is
        rebuilt where it is next needed."""
        return {**self.__dict__, "_trainer": None}

    @property
    def trainer(self) -> ChildTrainer:
        """Built on first use, so runs answered entirely from the cache never touch the device."""
        if self._trainer is None:
            self._trainer = ChildTrainer(self.data, self.config, self.device)
        return self._trainer

    @property
    def built(self) -> ChildTrainer | None:
        """The trainer if one was built, without building it."""
        return self._trainer

    def prepare(self) -> None:
        """Split and place the data now, so a split that cannot work fails before a caller shows progress."""
        _ = self.trainer

    def run(self, networks: Mapping[str, Network], record: Record, on_epoch: EpochCallback | None = None) -> None:
        trainer = self.trainer
        workers = min(self.concurrency, len(networks), trainer.max_threads)
        keep_heap = retained_heap() if self.device.type == "cpu" else contextlib.nullcontext()
        quiet = True if len(networks) < 2 else None  # None: tqdm shows the bar on a terminal only
        with keep_heap, tqdm(total=len(networks), desc="training", unit="net", disable=bars_disabled(quiet)) as bar:
            if workers == 1:
                for key, network in networks.items():
                    record(key, network, self.train_one(network, on_epoch))
                    bar.update()
                return
            alone = self._run_threads(trainer, networks, workers, record, bar, on_epoch)
            if alone:  # every other training has finished: one at a time, with the device's memory handed back
                trainer.release_device_memory()
            for key, network in alone.items():
                record(key, network, self.train_one(network, on_epoch))
                bar.update()

    def _run_threads(
        self,
        trainer: ChildTrainer,
        networks: Mapping[str, Network],
        workers: int,
        record: Record,
        bar: tqdm,
        on_epoch: EpochCallback | None,
    ) -> dict[str, Network]:
        """Train on ``workers`` threads, recording each reward as its training ends; the networks that ran out of
        memory beside others are returned instead (perhaps not alone)."""
        alone: dict[str, Network] = {}

        def finish(key: str, network: Network, evaluation: Evaluation) -> None:
            if out_of_memory(evaluation):
                alone[key] = network
            else:
                record(key, network, evaluation)
                bar.update()

        pool = ThreadPoolExecutor(workers, thread_name_prefix="nasgym-train")
        futures = {pool.submit(trainer.train, net, on_epoch=on_epoch): (key, net) for key, net in networks.items()}
        try:
            for future in as_completed(futures):  # each reward is recorded as soon as it is known
                finish(*futures.pop(future), future.result())
        finally:  # interrupted: threads cannot be stopped, so keep what the running ones finish
            pool.shutdown(wait=True, cancel_futures=True)
            for future, (key, network) in futures.items():
                if not future.cancelled() and future.exception() is None:
                    finish(key, network, future.result())
        return alone

    def train_one(self, network: Network, on_epoch: EpochCallback | None = None) -> Evaluation:
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
