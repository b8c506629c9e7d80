"""Children trained as Ray tasks, across the GPUs and machines of a Ray cluster (``backend="ray"``).

``RayEvaluator`` is the reward layer (``evaluator.CachedEvaluator``) over a ``RayExecutor``, which trains each network
it is handed as a Ray task. The rest stays in the driver (the process that steps the environment): the reward keys,
the answers so far, the claims on work in flight and the reward cache, so no other node needs the SQLite file. The
rewards are the local evaluator's for the same settings: a training draws only from generators seeded by the
training seed, wherever it runs.

- Each network is one task asking for ``ray_task_cpus`` CPUs and ``ray_task_gpus`` GPUs (a fraction shares a GPU),
  rerun up to ``ray_max_retries`` times when its worker process or node dies.
- The dataset reaches the cluster once: the driver puts its arrays in Ray's object store once per process and
  dataset (``share_dataset``); a node fetches them once, its worker processes read them there without copying and
  each builds its trainer (the split, placed on its device) at its first task and keeps it for the next ones.
- Every node needs nasgym and PyTorch installed (the same versions); not the data, the cache or any file of the
  driver's.
- GPUs: Ray reuses a worker process for tasks given other GPUs, but CUDA keeps the GPUs it saw when it started in
  that process. So GPU tasks leave CUDA_VISIBLE_DEVICES as the node has it and each task trains on
  ``cuda:<index of its Ray GPU among those>`` (``task_cuda_device``). A task on a fraction of a GPU sizes its
  up-front memory check by that fraction and hands its cached memory back when it ends; a network that ran out
  of memory there is trained again, after the batch, on a whole GPU before a failure is recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nasgym.core.config import EnvConfig
from nasgym.core.datasets import ImageData
from nasgym.core.errors import ConfigError, NasGymError
from nasgym.core.evaluation import Evaluation
from nasgym.core.evaluator import CachedEvaluator, cache_path_of, load_data
from nasgym.core.executors import Record, out_of_memory
from nasgym.core.progress import bars_disabled
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.spaces import Network
from nasgym.core.training import ChildTrainer, EpochCallback, LearningCurve, TrainConfig
from nasgym.core.training.trainer import split_for

INSTALL_HINT = "pip install nasgym[ray]"
WORKER_TRAINERS = 2
"""Trainers a worker process keeps (one per dataset, settings and device it trained for lately)."""

_SHARED: dict[tuple[str, str], Any] = {}
"""(Ray node of this process, dataset fingerprint) -> the ObjectRef of its arrays in the object store. A node's id
is new whenever Ray starts, so references from an earlier Ray session in this process are never reused."""
_TRAINERS: OrderedDict[tuple, ChildTrainer] = OrderedDict()
"""In a worker process: the trainers it built, by (dataset object, settings, device)."""
_TASK = None
_CUDA_GPUS: tuple[str, ...] | None = None
"""In a worker process: the GPUs its CUDA sees (CUDA_VISIBLE_DEVICES when its first GPU task started CUDA)."""
GPU_RUNTIME_ENV = {"env_vars": {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}}
"""GPU tasks run in workers whose CUDA_VISIBLE_DEVICES Ray leaves alone: a reused worker can then reach the GPU its
next task is given (``task_cuda_device``)."""


def require_ray() -> Any:
    """The ``ray`` module, or a ConfigError that says which extra to install."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"backend='ray' needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None = None) -> Any:
    """Connect this process to Ray unless it is already (a Ray task, or a caller that ran ``ray.init``): to the
    cluster at ``address`` ('auto' or HOST:PORT), or to a new local instance when ``address`` is None (Ray itself
    would join a cluster that ``ray start`` runs on this machine; 'auto' asks for that)."""
    ray = require_ray()
    if not ray.is_initialized():
        if address is not None:
            check_reachable(address)
        with _sigterm_kept():
            try:
                ray.init(address="local", include_dashboard=False) if address is None else ray.init(address=address)
            except ConnectionError as error:  # an OSError, which would read as a file's problem
                where = "start a local Ray instance" if address is None else f"join a Ray cluster at {address}"
                raise ConfigError(
                    f"cannot {where}: {error}; check the address, and that the cluster runs Ray {ray.__version__} as "
                    "this machine does"
                ) from None
    return ray


@contextlib.contextmanager
def _sigterm_kept() -> Iterator[None]:
    """Put the caller's SIGTERM handler back after ``ray.init``, which sets its own (a bare ``sys.exit``): ``kill``
    then stops a command as the ``nasgym`` command line says (like Ctrl-C), with or without Ray."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


REACH_SECONDS = 5.0
"""How long ``check_reachable`` waits for a cluster's port to accept a connection."""


def check_reachable(address: str, timeout: float = REACH_SECONDS) -> None:
    """A one-line ConfigError, within ``timeout`` seconds, when nothing accepts connections at a HOST:PORT address
    (``ray://HOST:PORT`` too); Ray itself would retry for minutes. 'auto', 'local' and addresses without a port are
    left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, OverflowError) as error:
        reason = "timed out" if isinstance(error, TimeoutError) else getattr(error, "strerror", None) or error
        raise ConfigError(
            f"no Ray cluster answers at {address} ({reason}); start one there (`ray start --head --port={port}` on "
            "that machine), check the address, or give none (--ray alone, ray_address=None) for a local Ray instance"
        ) from None


def share_dataset(data: ImageData) -> Any:
    """The ObjectRef of ``data``'s arrays in the object store, put there once per process and dataset."""
    ray = connect()
    slot = (ray.get_runtime_context().get_node_id(), data.fingerprint)
    if slot not in _SHARED:
        # A plain ImageData with plain arrays: an image cache's data would otherwise travel as its folder's path.
        plain = ImageData(data.name, np.asarray(data.images), np.asarray(data.labels), data.n_classes, data.fingerprint)
        _SHARED[slot] = ray.put(plain)
    return _SHARED[slot]


def adopt_datasets(refs: dict[str, Any]) -> None:
    """Use datasets another process put in the object store (by fingerprint) instead of putting them again."""
    node = connect().get_runtime_context().get_node_id()
    _SHARED.update({(node, fingerprint): ref for fingerprint, ref in refs.items()})


def cuda_gpus(cuda_visible_devices: str | None, device_count: Callable[[], int]) -> tuple[str, ...]:
    """The GPU ids CUDA numbers 0, 1, ... in a process with this CUDA_VISIBLE_DEVICES (unset: all of them)."""
    if cuda_visible_devices is None:
        return tuple(str(index) for index in range(device_count()))
    return tuple(gpu.strip() for gpu in cuda_visible_devices.split(",") if gpu.strip())


def task_cuda_device(gpu_ids: Sequence[int | str], visible: Sequence[str]) -> str:
    """The torch device of the (first) GPU Ray gave a task, in a process whose CUDA sees the GPUs ``visible``."""
    if not gpu_ids:
        raise NasGymError("a CUDA training ran as a Ray task without a GPU; set ray_task_gpus (e.g. 1 or 0.5)")
    gpu = str(gpu_ids[0])
    if gpu not in visible:
        raise NasGymError(
            f"Ray gave this task GPU {gpu}, but CUDA in its worker process (pid {os.getpid()}) started seeing only "
            f"GPUs {', '.join(visible) or 'none'}, and a started CUDA never sees others; do not set "
            "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES=0 or CUDA_VISIBLE_DEVICES in the tasks' runtime_env"
        )
    return f"cuda:{visible.index(gpu)}"


def _task_gpu(ray: Any) -> tuple[str, float]:
    """This task's CUDA device (made current) and its share of that GPU's memory."""
    global _CUDA_GPUS
    if _CUDA_GPUS is None:  # CUDA starts in this process now, seeing what this variable says
        _CUDA_GPUS = cuda_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"), torch.cuda.device_count)
    device = task_cuda_device(ray.get_gpu_ids(), _CUDA_GPUS)
    torch.cuda.set_device(device)
    share = ray.get_runtime_context().get_assigned_resources().get("GPU", 1.0)
    return device, min(share, 1.0)


def _train_task(
    data_box: list, config: TrainConfig, device: str, network: Network, curve: bool = False
) -> Evaluation | LearningCurve:
    """Runs in a Ray worker: one training (its learning curve when ``curve``), on the trainer this worker keeps for
    the dataset, settings and device. The dataset comes boxed in a list so that Ray hands over its reference, fetched
    only to build a trainer."""
    import ray

    share = 1.0
    if device == "cuda":
        device, share = _task_gpu(ray)
    (ref,) = data_box
    slot = (ref.hex(), config, device)
    if slot not in _TRAINERS:
        with warnings.catch_warnings():  # the object store's arrays are read-only; the trainer only copies from them
            warnings.filterwarnings("ignore", "The given NumPy array is not writable", UserWarning)
            _TRAINERS[slot] = ChildTrainer(ray.get(ref), config, device)
        while len(_TRAINERS) > WORKER_TRAINERS:
            _TRAINERS.popitem(last=False)
    _TRAINERS.move_to_end(slot)
    trainer = _TRAINERS[slot]
    trainer.memory_share = share
    try:
        if curve:
            return trainer.learning_curve(network)
        evaluation = trainer.train(network)
    finally:
        if share < 1:  # a shared GPU: the other tasks on it get this one's cached memory
            trainer.release_device_memory()
    where = f"ray worker {socket.gethostname()}:{os.getpid()}"
    return replace(
        evaluation, node=ray.get_runtime_context().get_node_id(), execution=f"{evaluation.execution}; {where}"
    )


class _Task:
    """``_train_task`` as a Ray remote function whose ``options`` run GPU tasks with ``GPU_RUNTIME_ENV``."""

    def __init__(self, remote: Any):
        self.remote_function = remote

    def options(self, **options: Any) -> Any:
        if options.get("num_gpus"):
            options.setdefault("runtime_env", GPU_RUNTIME_ENV)
        return self.remote_function.options(**options)


def _remote_task() -> _Task:
    global _TASK
    if _TASK is None:
        _TASK = _Task(require_ray().remote(_train_task))
    return _TASK


def ray_device(device: str | torch.device | None, task_gpus: float) -> torch.device:
    """The workers' device, decided without this process's hardware: 'auto' is CUDA when tasks get GPUs."""
    if device in (None, "auto"):
        return torch.device("cuda" if task_gpus > 0 else "cpu")
    kind = torch.device(device).type if isinstance(device, (str, torch.device)) else None
    if kind not in ("cuda", "cpu"):
        raise ConfigError(f"device must be 'cuda', 'cpu' or 'auto', got {device!r}")
    if kind == "cuda" and task_gpus == 0:
        raise ConfigError("device='cuda' with the Ray backend needs GPUs per task: set ray_task_gpus (e.g. 1 or 0.5)")
    return torch.device(kind)


class RayExecutor:
    """An executor (``nasgym.core.executors.Executor``) that trains each network as a Ray task.

    Every network of a batch is submitted at once (the cluster's resources decide how many run together) and each
    reward is recorded as its task ends. ``on_epoch`` is never called: the epochs run elsewhere.
    """

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig,
        device: str | torch.device = "auto",
        *,
        address: str | None = None,
        task_cpus: float = 1.0,
        task_gpus: float = 0.0,
        max_retries: int = 3,
    ):
        require_ray()
        self.data = data
        self.config = config
        self.device = ray_device(device, task_gpus)
        self.address = address
        self.task_cpus = task_cpus
        self.task_gpus = task_gpus
        self.max_retries = max_retries

    def prepare(self) -> None:
        """Check the split and reach the cluster now, so that neither fails after a caller shows progress."""
        split_for(self.data, self.config)
        connect(self.address)
        share_dataset(self.data)

    def run(self, networks: Mapping[str, Network], record: Record, on_epoch: EpochCallback | None = None) -> None:
        ray = connect(self.address)
        box = [share_dataset(self.data)]
        shared = self.device.type == "cuda" and self.task_gpus < 1  # beside other trainings on one GPU
        alone = self._run(ray, box, networks, record, self.task_gpus, hold_out_of_memory=shared)
        if alone:  # out of memory on a shared GPU: once more on a whole GPU each, after the batch
            self._run(ray, box, alone, record, 1.0)

    def _run(
        self,
        ray: Any,
        box: list,
        networks: Mapping[str, Network],
        record: Record,
        gpus: float,
        *,
        hold_out_of_memory: bool = False,
    ) -> dict[str, Network]:
        """Train ``networks`` as tasks on ``gpus`` GPUs each and record the rewards; with ``hold_out_of_memory``
        return the networks that ran out of memory instead of recording them."""
        task = _remote_task().options(
            num_cpus=self.task_cpus, num_gpus=gpus, max_retries=self.max_retries, name="nasgym-train"
        )
        pending = {
            task.remote(box, self.config, self.device.type, network): (key, network)
            for key, network in networks.items()
        }
        held: dict[str, Network] = {}
        quiet = True if len(networks) < 2 else None  # None: tqdm shows the bar on a terminal only
        try:
            with tqdm(total=len(networks), desc="training on ray", unit="net", disable=bars_disabled(quiet)) as bar:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    key, network = pending.pop(done[0])
                    evaluation = self._result(ray, done[0], network)
                    if hold_out_of_memory and out_of_memory(evaluation):
                        held[key] = network
                    else:
                        record(key, network, evaluation)
                    bar.update()
        finally:  # interrupted or failed: the cluster stops the trainings nobody waits for any more
            for ref in pending:
                ray.cancel(ref, force=True)
        return held

    def _result(self, ray: Any, ref: Any, network: Network) -> Evaluation:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as error:  # raised by the training itself: nasgym's own error as it is
            if isinstance(error.cause, NasGymError):
                raise error.cause from None
            raise
        except ray.exceptions.RayError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise NasGymError(
                f"training {network} on Ray failed after {self.max_retries} retries ({reason}); see the Ray logs, "
                "check the workers' memory, or raise ray_max_retries"
            ) from error


class RayEvaluator(CachedEvaluator):
    """The reward layer over a ``RayExecutor``: each network trains as a Ray task; the cache, claims and answers
    stay in this process. ``concurrency`` is whatever the cluster's resources allow."""

    executor: RayExecutor

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig = TrainConfig(),
        device: str | torch.device = "auto",
        cache: RewardCache | str | Path | None = None,
        *,
        address: str | None = None,
        task_cpus: float = 1.0,
        task_gpus: float = 0.0,
        max_retries: int = 3,
    ):
        executor = RayExecutor(
            data, config, device, address=address, task_cpus=task_cpus, task_gpus=task_gpus, max_retries=max_retries
        )
        super().__init__(data, config, executor.device, executor, cache)
        self._local: ChildTrainer | None = None

    @classmethod
    def from_config(
        cls, config: EnvConfig, train_config: TrainConfig, concurrency: int = 1, data: ImageData | None = None
    ) -> RayEvaluator:
        require_ray()  # before the dataset is loaded: a missing extra fails in a moment
        compute = config.compute
        return cls(
            data or load_data(config),
            train_config,
            config.device,
            cache_path_of(config),
            address=compute.ray_address,
            task_cpus=compute.ray_task_cpus,
            task_gpus=compute.ray_task_gpus,
            max_retries=compute.ray_max_retries,
        )

    @property
    def trainer(self) -> ChildTrainer:
        """A trainer in this process, built on first use, for trainings that bypass the reward layer (``nasgym final``'s
        baseline, which is no network of the space); the networks themselves train on the cluster."""
        if self._local is None:
            self._local = ChildTrainer(self.data, self.config, self.device)
        return self._local

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_local": None}  # the dataset placed on a device: placed again where it is used


def learning_curves(
    jobs: list[tuple[Architecture, int]], data: ImageData, config: EnvConfig, train_config: TrainConfig
) -> Iterator[tuple[Architecture, int, LearningCurve]]:
    """The learning curve of each (network, training seed), trained as Ray tasks, yielded as each finishes (a look-up
    table's build spread over a cluster)."""
    compute = config.compute
    ray = connect(compute.ray_address)
    device = ray_device(config.device, compute.ray_task_gpus).type
    task = _remote_task().options(
        num_cpus=compute.ray_task_cpus,
        num_gpus=compute.ray_task_gpus,
        max_retries=compute.ray_max_retries,
        name="nasgym-table",
    )
    box = [share_dataset(data)]
    pending = {
        task.remote(box, replace(train_config, seed=seed), device, network, True): (network, seed)
        for network, seed in jobs
    }
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            network, seed = pending.pop(done[0])
            yield network, seed, ray.get(done[0])
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
