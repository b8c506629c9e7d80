"""``reward_source="surrogate"``: a gradient-boosting model fitted on a look-up table answers any network of the space.

Features of a network (``features``): the layer at each of the ``max_layers`` positions (categorical: none, c1, c3,
c5, m2, m3, a2, a3), its depth, its convolutions and poolings, the final feature map's side and channels, and the
logarithms of its parameters and multiply-accumulates. The model (scikit-learn's ``HistGradientBoostingRegressor``,
seeded) predicts the reward-split accuracy after ``epochs`` averaged over the recorded seeds, and a second one the
training seconds. It is refitted from the table at first use (about a second), so nothing is unpickled. A reward is
the prediction plus Gaussian noise with the table's measured seed-to-seed sd, drawn from a hash of the network and
the training seed (so a repeat gets the same answer), clipped to [0, 1].
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.evaluation import Evaluation, EvaluationStats
from nasgym.core.evaluator import EvaluatorBase
from nasgym.core.lookup.source import check_compatible, open_table
from nasgym.core.lookup.table import Table
from nasgym.core.network import NetworkConfig, flops, parameter_count
from nasgym.core.search_space import CONV, Architecture
from nasgym.core.spaces import Network
from nasgym.core.training import EpochCallback, TrainConfig

SOURCE = "surrogate"
MODEL = {"max_iter": 400, "learning_rate": 0.05, "max_leaf_nodes": 15, "l2_regularization": 1.0, "random_state": 0}
"""The gradient-boosting settings; fixed, so a refit gives the same model."""


def features(networks: Sequence[Architecture], image_size: int, n_classes: int, max_layers: int) -> np.ndarray:
    """One row per network: ``max_layers`` categorical positions (0 none, action + 1) then the numeric features."""
    config = NetworkConfig()
    rows = []
    for network in networks:
        positions = [a + 1 for a in network.actions] + [0] * (max_layers - len(network.actions))
        convs = sum(layer.type == CONV for layer in network.layers)
        side = network.spatial_sizes(image_size)[-1]
        rows.append(
            [
                *positions,
                len(network.actions),
                convs,
                len(network.actions) - convs,
                side,
                config.filters if convs else 3,
                np.log10(parameter_count(network, n_classes, image_size)),
                np.log10(max(flops(network, n_classes, image_size), 1)),
            ]
        )
    return np.asarray(rows, dtype=float)


class Surrogate:
    """Models of one table's rewards (and training seconds) after ``epochs``, for any network of its space."""

    def __init__(self, table: Table, epochs: int | None = None, networks: Sequence[str] | None = None):
        """Fit on ``networks`` of the table (all of them by default; a subset to measure fidelity on the rest)."""
        self.table = table
        self.epochs = epochs or table.epochs
        self.max_layers = table.header["max_layers"]
        self.noise_sd = 0.0 if np.isnan(sd := table.seed_sd()) else sd
        names = list(networks if networks is not None else table.networks)
        x = self.features([Architecture.parse(name) for name in names])
        rewards, seconds = [], []
        for name in names:
            entries = [table.entries[(name, seed)] for seed in table.seeds_of[name]]
            rewards.append(np.mean([table.accuracy(e, self.epochs) for e in entries]))
            seconds.append(np.log(np.mean([max(table.train_seconds(e, self.epochs), 1e-3) for e in entries])))
        settings = {
            **MODEL,
            "categorical_features": np.arange(x.shape[1]) < self.max_layers,
            "min_samples_leaf": int(np.clip(len(names) // 10, 2, 20)),  # small tables still split
        }
        self.reward_model = HistGradientBoostingRegressor(**settings).fit(x, rewards)
        self.seconds_model = HistGradientBoostingRegressor(**settings).fit(x, seconds)

    def features(self, networks: Sequence[Architecture]) -> np.ndarray:
        return features(networks, self.table.image_size, self.table.header["n_classes"], self.max_layers)

    def predict(self, networks: Sequence[Architecture]) -> np.ndarray:
        """The expected reward of each network (no noise), clipped to [0, 1]."""
        return np.clip(self.reward_model.predict(self.features(networks)), 0.0, 1.0)

    def seconds(self, networks: Sequence[Architecture]) -> np.ndarray:
        return np.exp(self.seconds_model.predict(self.features(networks)))


_FITTED: dict[tuple[str, int], Surrogate] = {}


def fitted(table: Table, epochs: int) -> Surrogate:
    """The surrogate of ``table`` at ``epochs``, fitted once per process."""
    key = (f"{table.source}|{table.dataset}|{len(table.entries)}", epochs)
    if key not in _FITTED:
        _FITTED[key] = Surrogate(table, epochs)
    return _FITTED[key]


class SurrogateEvaluator(EvaluatorBase):
    """Rewards predicted by a ``Surrogate`` of a table, with the table's seed noise.

    Like ``TableEvaluator`` it implements the ``Evaluator`` protocol directly: an executor of another kind, whose
    answers are a seeded function of the network computed in moments, so nothing is cached, claimed or waited for
    (``cached`` is the prediction itself).
    """

    def __init__(self, table: Table, config: Any, train_config: TrainConfig = TrainConfig()):
        check_compatible(table, config, train_config)
        if train_config.score_split != "reward" or train_config.reward_epochs != 1:
            raise ConfigError(
                "reward_source='surrogate' predicts the reward split's accuracy after the last epoch; use "
                "reward_source='table' for score_split='test' or reward_epochs > 1"
            )
        self.config = train_config
        self.surrogate = fitted(table, train_config.epochs)
        self.stats = EvaluationStats()
        self._answers: dict[tuple[str, int, float], Evaluation] = {}
        """Each network's answer once predicted: a seeded function of the network, and a prediction costs
        milliseconds (hundreds of trees), while a search's episodes revisit the same first layers all the time."""

    @classmethod
    def from_config(cls, config: Any, train_config: TrainConfig, data: Any = None) -> SurrogateEvaluator:
        return cls(open_table(config.dataset, config.table_path), config, train_config)

    def cached(self, architecture: Network) -> Evaluation | None:
        """Every answer is known without training."""
        return self.evaluate([architecture])[0]

    def evaluate(self, architectures: Sequence[Network], on_epoch: EpochCallback | None = None) -> list[Evaluation]:
        """Answered at once (``on_epoch`` is never called: nothing trains)."""
        asked: list[Architecture] = []
        for architecture in architectures:
            network = architecture.network
            if not isinstance(network, Architecture):  # the table it was fitted on is NAS-v0's
                raise ArchitectureError(f"the surrogate predicts chain networks (NAS-v0), not {network}")
            asked.append(network)
        keys = [self._key(network) for network in asked]
        new = {key: network for key, network in zip(keys, asked, strict=True) if key not in self._answers}
        if new:
            self._answers.update(zip(new, self._predict(list(new.values())), strict=True))
        answers = [self._answers[key] for key in keys]
        for answer in answers:
            self.stats.cache_hits += 1
            self.stats.train_seconds += answer.train_seconds
        return answers

    def _key(self, network: Architecture) -> tuple[str, int, float]:
        return str(network), self.config.seed, self.config.reward_exponent

    def _predict(self, networks: list[Architecture]) -> list[Evaluation]:
        predicted = self.surrogate.predict(networks)
        seconds = self.surrogate.seconds(networks)
        table = self.surrogate.table
        answers = []
        for network, mean, took in zip(networks, predicted, seconds, strict=True):
            digest = hashlib.sha256(f"{network}|{self.config.seed}".encode()).digest()
            noise = np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(0.0, self.surrogate.noise_sd)
            accuracy = float(np.clip(mean + noise, 0.0, 1.0)) ** self.config.reward_exponent
            parameters = parameter_count(network, table.header["n_classes"], table.image_size, self.config.network)
            answers.append(Evaluation(str(network), accuracy, float(took), parameters, source=SOURCE))
        return answers
