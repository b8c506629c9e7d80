"""``TableEvaluator``: the reward source of ``NAS-v0`` with ``reward_source="table"``.

A step is answered from a look-up table of real trainings: the recorded reward-split accuracy after ``epochs`` (any
epoch the table recorded), of one recorded training seed, and the recorded training time as ``train_seconds``, so a
search can report simulated wall-clock time beside its evaluations. Nothing is trained, nothing touches torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from nasgym.core.errors import ConfigError
from nasgym.core.evaluation import Evaluation, EvaluationStats
from nasgym.core.lookup.table import Table, TableError, shipped
from nasgym.core.spaces import Network
from nasgym.core.training import EpochCallback, TrainConfig, resolve_device

SOURCE = "table"
VARYING_SETTINGS = ("epochs", "seed")
"""Training settings a table spans rather than fixes: every epoch up to its own, and its recorded seeds."""
DERIVED_SETTINGS = ("reward_epochs", "reward_exponent", "score_split")
"""Training settings a table answers from its curves whatever they are (and checks on their own)."""


def table_settings(train_config: TrainConfig, device: Any = "cpu") -> dict[str, Any]:
    """The training settings a table is built with and answers for: the reward cache's key fields without the
    ones it spans."""
    fields = train_config.key_fields(resolve_device(device))
    return {name: value for name, value in fields.items() if name not in VARYING_SETTINGS}


def open_table(dataset: str, table_path: str | None) -> Table:
    """The table an environment with these settings reads: ``table_path``, or the one shipped for ``dataset``."""
    return Table.load(table_path) if table_path else shipped(dataset)


def table_defaults(dataset: str, table_path: str | None, reward_source: str = SOURCE) -> dict[str, Any]:
    """The ``NAS-v0`` keywords a table or surrogate takes from its table unless given: the image size the table was
    trained at and, for the table itself, the depth up to which it holds every network as ``max_layers``, so that every
    reachable network is in it (the surrogate answers the whole space)."""
    table = open_table(dataset, table_path)
    if reward_source == SOURCE:
        return {"image_size": table.image_size, "max_layers": table.complete_depth()}
    return {"image_size": table.image_size}


def shared_table_defaults(
    datasets: Sequence[str], table_path: str | None, reward_source: str = SOURCE
) -> dict[str, Any]:
    """``table_defaults`` that hold for every dataset of an experiment at once, so that one agent can move between
    them (an observation has ``max_layers`` rows): the smallest complete depth, and the one image size they share."""
    return common_defaults({dataset: table_defaults(dataset, table_path, reward_source) for dataset in datasets})


def common_defaults(each: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The keywords that suit every table of ``each`` (dataset -> its ``table_defaults``)."""
    sizes = {defaults["image_size"] for defaults in each.values()}
    if len(sizes) > 1:
        found = ", ".join(f"{dataset} {defaults['image_size']} px" for dataset, defaults in each.items())
        raise ConfigError(f"the tables of one experiment must share an image size, found {found}; use tables built "
                          "at one size")  # fmt: skip
    shared = {"image_size": sizes.pop()} if sizes else {}
    depths = [defaults["max_layers"] for defaults in each.values() if "max_layers" in defaults]
    if depths:
        shared["max_layers"] = min(depths)
    return shared


class TableEvaluator:
    """Rewards looked up in a ``Table``; a network it does not hold is a ``TableError`` naming its coverage.

    It implements the ``Evaluator`` protocol directly, not through the reward layer (``CachedEvaluator``): it is an
    executor of another kind, whose every answer is already known, so there is nothing to cache, claim or wait for
    (``cached`` is the answer itself). It writes the protocol's members out rather than inherit ``EvaluatorBase``
    because ``config`` imports this module (``table_defaults``) and the evaluator module imports ``config``.
    """

    stationary = True

    def __init__(self, table: Table, config: Any, train_config: TrainConfig = TrainConfig()):
        self.table = table
        self.config = train_config
        self.stats = EvaluationStats()
        self.seed_choice = config.table_seed
        check_compatible(table, config, train_config)

    @classmethod
    def from_config(cls, config: Any, train_config: TrainConfig, data: Any = None) -> TableEvaluator:
        return cls(open_table(config.dataset, config.table_path), config, train_config)

    def prepare(self) -> TableEvaluator:
        return self

    def close(self) -> None:
        """Nothing to close: the table is in memory."""

    def cached(self, architecture: Network) -> Evaluation | None:
        """Every answer is known without training."""
        return self.evaluate([architecture])[0]

    def state_dict(self) -> None:
        """No state: rewards depend on the network and the settings alone (``stationary``)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to load."""

    def seed_for(self, network: str) -> int:
        """The recorded training seed that answers ``network``: the training seed itself (``table_seed='train_seed'``),
        or one of the network's recorded seeds chosen by a hash of the network and the training seed, so each
        training seed sees its own draw and a repeat always the same answer."""
        if self.seed_choice == "train_seed":
            return self.config.seed
        seeds = self.table.seeds_of.get(network)
        if not seeds:
            raise TableError(self.table.missing(network))
        digest = hashlib.sha256(f"{network}|{self.config.seed}".encode()).digest()
        return seeds[int.from_bytes(digest[:8], "little") % len(seeds)]

    def evaluate(self, architectures: Sequence[Network], on_epoch: EpochCallback | None = None) -> list[Evaluation]:
        """Answered at once (``on_epoch`` is never called: nothing trains)."""
        return [self._answer(architecture.network) for architecture in architectures]

    def _answer(self, network: Network) -> Evaluation:
        name = str(network)
        entry = self.table.entry(name, self.seed_for(name))
        cfg = self.config
        if cfg.score_split == "test":
            accuracy = self.table.accuracy(entry, cfg.epochs, "test")
        else:
            first = max(cfg.epochs - cfg.reward_epochs, 0) + 1
            accuracy = max(self.table.accuracy(entry, epoch) for epoch in range(first, cfg.epochs + 1))
        accuracy = 0.0 if entry.failure else accuracy**cfg.reward_exponent
        seconds = self.table.train_seconds(entry, cfg.epochs)
        self.stats.cache_hits += 1
        self.stats.train_seconds += seconds
        return Evaluation(
            name,
            accuracy,
            seconds,
            entry.parameters,
            entry.failure,
            source=SOURCE,
            execution=f"table seed {entry.seed}",
        )


def check_compatible(table: Table, config: Any, train_config: TrainConfig) -> None:
    """Refuse, in one line, an environment whose settings the table was not built with."""
    header = table.header
    problems = []
    if config.dataset != table.dataset:
        problems.append(f"dataset {config.dataset!r} (the table is of {table.dataset!r})")
    for name in ("image_size", "resize", "max_samples"):
        if getattr(config, name) != header[name]:
            problems.append(f"{name}={getattr(config, name)!r} (the table has {header[name]!r})")
    if config.max_layers > header["max_layers"]:
        problems.append(f"max_layers={config.max_layers} (the table's networks have at most {header['max_layers']})")
    if not 1 <= train_config.epochs <= table.epochs:
        problems.append(f"epochs={train_config.epochs} (the table recorded epochs 1..{table.epochs})")
    if train_config.score_split == "test" and train_config.epochs != table.epochs:
        problems.append(
            f"score_split='test' with epochs={train_config.epochs} (the test split is scored at {table.epochs})"
        )
    asked = table_settings(train_config)
    built = header["settings"]
    ignored = set(DERIVED_SETTINGS) | ({"precision"} if train_config.precision == "auto" else set())
    for name in sorted(set(asked) | set(built)):
        if name not in ignored and asked.get(name) != built.get(name):
            problems.append(f"{name}={asked.get(name)!r} (the table was trained with {built.get(name)!r})")
    if problems:
        raise ConfigError(
            f"reward_source={config.reward_source!r} cannot answer {'; '.join(problems[:3])}; drop those settings to "
            "use the table's, build a table with them ('nasgym table build'), or use reward_source='trained'"
        )
