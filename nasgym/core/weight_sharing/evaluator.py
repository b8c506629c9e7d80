"""``WeightSharingEvaluator``: the reward source of ``NAS-v0`` with ``reward_source="weight_sharing"``.

Each rewarded step trains the shared weights on k minibatches of the train split through the step's network, then
scores the network with them on a fixed sample of the reward split, as ENAS alternates training and scoring (here
the agent's own sampling takes the place of ENAS' controller sampling per minibatch). The same network asked twice
gets two answers, because the weights moved in between: rewards are neither memoised nor written to the reward
cache, and ``info["reward_source"]`` is ``"weight_sharing"``. The whole state (weights, optimiser, the minibatch
generator, the warm-up done) is ``state_dict()``, which a search's checkpoint holds, so a resumed search continues
with exactly the weights it stopped with.

It implements the ``Evaluator`` protocol directly rather than through the reward layer (``CachedEvaluator``): it is
an executor of another kind, whose answers are not functions of the network and so are never cached, memoised or
claimed. It reuses a ``ChildTrainer`` for its split and placed data, through the trainer's public members
(``train_x``/``eval_x`` rows, ``inputs``, ``autocast``), so its images and precision are the trained reward's.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nasgym.core.datasets import ImageData
from nasgym.core.errors import ArchitectureError
from nasgym.core.evaluation import Evaluation, EvaluationStats
from nasgym.core.evaluator import EvaluatorBase, checked, load_data
from nasgym.core.executors import PROGRESS_AFTER_SECONDS
from nasgym.core.network import parameter_count
from nasgym.core.progress import bars_disabled
from nasgym.core.sampling import random_network
from nasgym.core.search_space import Architecture
from nasgym.core.spaces import Network
from nasgym.core.training import ChildTrainer, EpochCallback, TrainConfig, resolve_device
from nasgym.core.weight_sharing.config import WeightSharingConfig
from nasgym.core.weight_sharing.supernet import SharedWeights

SOURCE = "weight_sharing"
STATE_FORMAT = 1


class WeightSharingEvaluator(EvaluatorBase):
    """Rewards from one set of shared weights that every evaluation trains a little further."""

    stationary = False
    """A network's reward changes as the shared weights train: callers must not evaluate ahead of a step (prefetch,
    vector envs) and Gymnasium must not expect a repeated step to repeat its reward."""

    def __init__(
        self,
        data: ImageData,
        config: TrainConfig = TrainConfig(),
        ws: WeightSharingConfig = WeightSharingConfig(),
        device: str | torch.device = "auto",
        max_layers: int = 10,
    ):
        self.data, self.config, self.ws, self.max_layers = data, config, ws, max_layers
        self.device = resolve_device(device)
        self.stats = EvaluationStats()
        supernet = SharedWeights(data.n_classes, max_layers, ws.ws_head, config.seed, config.network)
        # torch's stub lists no overload of Module.to with memory_format, which Module.to accepts
        self.supernet: SharedWeights = supernet.to(self.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = self._optimizer()
        self.generator = torch.Generator().manual_seed(config.seed)
        """Draws the minibatches and the warm-up networks (on the CPU, so its state is the same on any device)."""
        self.warmed_up = ws.ws_warmup == 0
        self.evaluations = 0
        self._trainer: ChildTrainer | None = None

    @classmethod
    def from_config(
        cls, config: Any, train_config: TrainConfig, data: ImageData | None = None
    ) -> WeightSharingEvaluator:
        """The evaluator ``NAS-v0`` builds for an ``EnvConfig`` with ``reward_source='weight_sharing'``."""
        return cls(data or load_data(config), train_config, config.weight_sharing, config.device, config.max_layers)

    def _optimizer(self) -> torch.optim.Optimizer:
        params = list(self.supernet.convs.parameters())
        if self.ws.ws_optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.ws.ws_learning_rate, momentum=0.9)
        rate, betas, epsilon = self.ws.ws_learning_rate, self.config.betas, self.config.adam_epsilon
        return torch.optim.Adam(params, lr=rate, betas=betas, eps=epsilon)

    @property
    def trainer(self) -> ChildTrainer:
        """The child trainer's split and placed data (the same train and reward images as trained rewards)."""
        if self._trainer is None:
            self._trainer = ChildTrainer(self.data, self.config, self.device, cuda_graphs=False)
        return self._trainer

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_trainer": None}  # the data on the device is placed again where it is used

    def close(self) -> None:
        """Nothing to close: no reward cache."""

    # -- rewards ----------------------------------------------------------------------------------------------
    def evaluate(self, architectures: Sequence[Network], on_epoch: EpochCallback | None = None) -> list[Evaluation]:
        """Train k minibatches through each network in turn, scoring it right after its own (by minibatches, not
        epochs: ``on_epoch`` is never called)."""
        networks: list[Architecture] = []
        for architecture in checked(architectures):
            network = architecture.network
            if not isinstance(network, Architecture):  # the supernet is of NAS-v0's chain space
                raise ArchitectureError(f"weight sharing trains chain networks (NAS-v0), not {network}")
            networks.append(network)
        if not self.warmed_up:
            self.warm_up()
        return [self._evaluate(network) for network in networks]

    def warm_up(self) -> None:
        """W uniformly drawn valid networks, k minibatches each, before the first reward."""
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=self.generator)))
        # A long warm-up (3000 networks at 84 px on a CPU) shows that it is alive, as long trainings do.
        for _ in tqdm(
            range(self.ws.ws_warmup),
            "warming up the shared weights",
            delay=PROGRESS_AFTER_SECONDS,
            leave=False,
            disable=bars_disabled(),
        ):
            self.train_steps(random_network(rng, self.data.image_size, self.max_layers), max(1, self.ws.ws_steps))
        self.warmed_up = True

    def _evaluate(self, network: Architecture) -> Evaluation:
        start = time.perf_counter()
        failure = self.train_steps(network, self.ws.ws_steps)
        accuracy = 0.0 if failure else self.score(network)
        self.evaluations += 1
        seconds = time.perf_counter() - start
        self.stats.trained += 1
        self.stats.train_seconds += seconds
        parameters = parameter_count(network, self.data.n_classes, self.data.image_size, self.config.network)
        return Evaluation(
            str(network), accuracy, seconds, parameters, failure, source=SOURCE, execution=self._execution()
        )

    def _execution(self) -> str:
        return (
            f"{self.device.type}: weight sharing, {self.ws.ws_head} head, {self.ws.ws_steps} minibatches per "
            f"reward, {self.trainer.precision}"
        )

    def _head(self, network: Architecture) -> str:
        channels, side = self.supernet.final_shape(network, self.data.image_size)
        key = self.supernet.head_key(channels, side)
        if key not in self.supernet.heads:
            head = self.supernet.make_head(key, channels, side, self.device)
            self.optimizer.add_param_group({"params": list(head.parameters())})
        return key

    def _autocast(self) -> contextlib.AbstractContextManager:
        return self.trainer.autocast() if self.device.type == "cuda" else contextlib.nullcontext()

    def train_steps(self, network: Architecture, steps: int) -> str:
        """Train the shared weights on ``steps`` minibatches through ``network``; a failure's reason, or ''."""
        trainer, head = self.trainer, self._head(network)
        batch = min(self.config.batch_size, trainer.n_train)
        self.supernet.train()
        for _ in range(steps):
            rows = torch.randperm(trainer.n_train, generator=self.generator)[:batch].to(self.device)
            with self._autocast():
                logits = self.supernet.logits(network, trainer.inputs(trainer.train_x[rows]), head)
                loss = F.cross_entropy(logits.float(), trainer.train_y[rows])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if not math.isfinite(loss.item()):
                self.optimizer.zero_grad(set_to_none=True)
                return "non-finite loss while training the shared weights"
            self.optimizer.step()
        return ""

    @torch.no_grad()
    def score(self, network: Architecture) -> float:
        """Accuracy with the shared weights on the fixed sample: the first ``ws_valid_samples`` images of the
        (seeded, shuffled) reward split, in minibatches of the training's size (BatchNorm uses batch statistics)."""
        trainer, head = self.trainer, self._head(network)
        size = min(self.ws.ws_valid_samples, len(trainer.eval_y))
        correct = 0
        for start in range(0, size, self.config.batch_size):
            end = min(size, start + self.config.batch_size)
            with self._autocast():
                logits = self.supernet.logits(network, trainer.inputs(trainer.eval_x[start:end]), head)
            correct += int((logits.argmax(dim=1) == trainer.eval_y[start:end]).sum())
        return correct / size

    # -- checkpoints ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain data only (a search checkpoint loads with ``weights_only=True``)."""
        return {
            "format": STATE_FORMAT,
            "heads": list(self.supernet.head_order),
            "weights": {key: value.detach().cpu() for key, value in self.supernet.state_dict().items()},
            "optimizer": _plain(self.optimizer.state_dict()),
            "generator": self.generator.get_state(),
            "warmed_up": self.warmed_up,
            "evaluations": self.evaluations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``: the heads are created again in their order, then everything is loaded."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"shared-weights state format {state.get('format')!r}, expected {STATE_FORMAT}")
        for key in state["heads"]:
            if key not in self.supernet.heads:
                channels, _, side = key[1:].partition("_s")
                head = self.supernet.make_head(key, int(channels), int(side or 1), self.device)
                self.optimizer.add_param_group({"params": list(head.parameters())})
        if self.supernet.head_order != list(state["heads"]):
            raise ValueError("the shared weights already have heads in another order than the state's")
        self.supernet.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.warmed_up, self.evaluations = bool(state["warmed_up"]), int(state["evaluations"])


def _plain(value: Any) -> Any:
    """An optimiser state as dicts, lists and CPU tensors (no OrderedDict, no device tensors)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    return value
