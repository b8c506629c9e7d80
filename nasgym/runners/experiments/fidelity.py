"""``nasgym fidelity``: how well each cheap reward ranks networks, measured against trained rewards.

N valid networks are drawn (seeded, an equal share of each depth, valid at every image size used). Each gets the
reference reward (training at the budget the NAS-v0 keywords give) and every cheap reward:

* ``ws_gap`` and ``ws_per_shape``: weight sharing with each head (``reward_source='weight_sharing'``), as a
  search sees it: after the warm-up, the networks are evaluated one after another in a seeded random order, each
  evaluation training the shared weights k minibatches through the network and then scoring it;
* ``epochs_E``: the same training for fewer epochs; ``pixels_S``: on smaller images; ``data_F``: on a fraction F
  of the images (``max_samples``, so the reward split shrinks too);
* ``naswot``: the zero-cost proxy of Mellor et al. 2021 (``nasgym.core.zero_cost``);
* ``parameters`` and ``flops``: the network's size and multiply-accumulates, computed without building it (the
  zero-cost literature finds these rival most proxies);
* ``surrogate`` (with ``surrogate_table``): the look-up table's surrogate (``nasgym.core.lookup.surrogate``), refitted
  without the sampled networks, so every one it scores is one its fit never saw.

Trained rewards go through the reward cache, so a rerun (or an interrupted run) trains only what is missing.
``fidelity_report`` turns the rewards into rank correlations, plots and a markdown report.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nasgym.core.config import EnvConfig
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import TrainingEvaluator, load_data
from nasgym.core.lookup.surrogate import Surrogate
from nasgym.core.lookup.table import Table
from nasgym.core.network import flops, parameter_count
from nasgym.core.reward_sources import build_evaluator
from nasgym.core.sampling import stratified_networks
from nasgym.core.search_space import Architecture
from nasgym.core.training import TrainConfig
from nasgym.core.weight_sharing.evaluator import WeightSharingEvaluator
from nasgym.core.zero_cost import naswot
from nasgym.runners.envs import NAS_V0, EnvSettings
from nasgym.runners.experiments.fidelity_report import write_report

REFERENCE = "reference"
MAX_NETWORKS = 10_000
"""A sample's size at most: each network is trained at the reference budget (days on a CPU at this size already), and
a Kendall tau's interval is narrow long before; a bound refuses a typo in one line instead of sampling for hours."""


@dataclass(frozen=True)
class FidelityPlan:
    """What a fidelity run measures; stored in results.json."""

    dataset: str
    networks: int = 60
    seed: int = 0
    """Seeds the sample of networks and the order weight sharing meets them in."""
    env_options: dict[str, Any] = field(default_factory=dict)
    """NAS-v0 keywords of the reference (its training budget) and of every cheap reward unless it changes them."""
    low_epochs: tuple[int, ...] = (1, 3)
    low_image_size: int | None = None
    """None: two thirds of the reference's image size."""
    data_fraction: float = 0.25
    ws_heads: tuple[str, ...] = ("gap", "per_shape")
    bootstrap: int = 1000
    surrogate_table: str | None = None
    """A table file or a shipped table's dataset: its surrogate is scored too (the reference's settings must be the
    table's)."""

    def __post_init__(self) -> None:
        if self.networks < 4:
            raise ConfigError(f"a rank correlation needs at least 4 networks, got {self.networks}")
        if self.networks > MAX_NETWORKS:
            raise ConfigError(f"networks must be at most {MAX_NETWORKS:,} (each is trained), got {self.networks:,}")
        if not 0 < self.data_fraction < 1:
            raise ConfigError(f"data fraction must be in (0, 1), got {self.data_fraction}")
        if any(epochs < 1 for epochs in self.low_epochs):
            raise ConfigError(f"low epochs must be at least 1, got {self.low_epochs}")


def run_fidelity(out_dir: str | Path, plan: FidelityPlan, progress: bool = True) -> dict[str, Any]:
    """Measure every reward of ``plan`` for its networks; write results.json, fidelity.csv, plots and report.md
    into ``out_dir`` and return the results."""
    out = Path(out_dir)
    base = {k: v for k, v in plan.env_options.items() if k != "reward_source"}
    env_config, train_config = EnvSettings.parse(NAS_V0, {"dataset": plan.dataset, **base}).configs  # once: the
    # cheap rewards below are these configs with one setting changed
    size = env_config.image_size
    low_size = plan.low_image_size or max(1, round(size * 2 / 3))
    # Fewer epochs than the reference only: its own count would be the reference again, "1.0x cheaper".
    low_epochs = tuple(epochs for epochs in plan.low_epochs if epochs < train_config.epochs)
    networks = stratified_networks(plan.networks, plan.seed, min(size, low_size), env_config.max_layers)
    data = load_data(env_config)
    n_images = len(data.labels)
    trained_sources: dict[str, tuple[EnvConfig, TrainConfig]] = {REFERENCE: (env_config, train_config)}
    for epochs in low_epochs:
        trained_sources[f"epochs_{epochs}"] = (env_config, replace(train_config, epochs=epochs))
    trained_sources[f"pixels_{low_size}"] = (replace(env_config, image_size=low_size), train_config)
    fewer = replace(env_config, max_samples=max(2, round(plan.data_fraction * n_images)))
    trained_sources[f"data_{plan.data_fraction:g}"] = (fewer, train_config)
    descriptions = {
        REFERENCE: f"trained {train_config.epochs} epochs at {size} px on {n_images} images",
        **{f"epochs_{e}": f"trained {e} epochs" for e in low_epochs},
        f"pixels_{low_size}": f"trained on {low_size} px images",
        f"data_{plan.data_fraction:g}": f"trained on {max(2, round(plan.data_fraction * n_images))} images",
        "naswot": "NASWOT at initialisation, one minibatch (Mellor et al. 2021)",
    }
    rewards: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for name, (env_c, train_c) in trained_sources.items():
        same_images = env_c.image_size == size and env_c.max_samples == env_config.max_samples
        evaluator = build_evaluator(env_c, train_c, data=data if same_images else None)
        try:
            evaluations = _evaluate_each(evaluator, networks, f"{name}", progress)
        finally:
            evaluator.close()
        rewards[name] = [e.accuracy for e in evaluations]
        seconds[name] = [e.train_seconds for e in evaluations]
    reference = TrainingEvaluator.from_config(env_config, train_config, data=data)
    scores = [naswot(reference.trainer, network) for network in tqdm(networks, "naswot", disable=not progress)]
    rewards["naswot"], seconds["naswot"] = [s for s, _ in scores], [t for _, t in scores]
    for name, measure in (("parameters", parameter_count), ("flops", flops)):
        start = time.perf_counter()
        rewards[name] = [float(measure(n, data.n_classes, size, train_config.network)) for n in networks]
        seconds[name] = [(time.perf_counter() - start) / len(networks)] * len(networks)
    descriptions["parameters"] = "parameter count (larger ranks higher)"
    descriptions["flops"] = "multiply-accumulates per image (larger ranks higher)"
    if plan.surrogate_table:
        rewards["surrogate"], seconds["surrogate"], descriptions["surrogate"] = _surrogate(
            plan.surrogate_table, networks, train_config
        )
    warmups: dict[str, float] = {}
    for head in plan.ws_heads:
        name = f"ws_{head}"
        changes: dict[str, Any] = {"ws_head": head}  # a plan's head is any str: the config checks it
        head_config = replace(env_config.weight_sharing, **changes)
        ws_config = replace(env_config, weight_sharing=head_config)
        ws_rewards, ws_seconds, warmups[name] = _weight_sharing(plan, ws_config, train_config, networks, data, progress)
        rewards[name], seconds[name] = ws_rewards, ws_seconds
        ws = ws_config.weight_sharing
        descriptions[name] = (
            f"weight sharing, {head} head: warm-up {ws.ws_warmup} networks, {ws.ws_steps} minibatches per reward, "
            f"{ws.ws_optimizer} {ws.ws_learning_rate:g}, scored on {ws.ws_valid_samples} images"
        )
    results = {
        "plan": {**asdict(plan), "low_epochs": list(low_epochs), "low_image_size": low_size},
        "dataset_images": n_images,
        "descriptions": descriptions,
        "warmup_seconds": warmups,
        "networks": [
            {
                "architecture": str(network),
                "depth": len(network),
                "rewards": {name: values[i] for name, values in rewards.items()},
                "seconds": {name: values[i] for name, values in seconds.items()},
            }
            for i, network in enumerate(networks)
        ],
    }
    results["sources"] = write_report(out, results, plan.bootstrap, plan.seed)
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=True))
    return results


def _surrogate(
    table_path: str, networks: list[Architecture], train_config: Any
) -> tuple[list[float], list[float], str]:
    """The table's surrogate, fitted on every network of the table but the sample, scoring the sample."""
    table = Table.open(table_path)
    sampled = {str(network) for network in networks}
    unseen = [name for name in table.networks if name not in sampled]
    start = time.perf_counter()
    model = Surrogate(table, train_config.epochs, unseen)
    fitting = time.perf_counter() - start
    start = time.perf_counter()
    predicted = [float(value) for value in model.predict(networks)]
    per_network = (time.perf_counter() - start) / len(networks)
    description = (
        f"surrogate of the {table.dataset} table, fitted on its {len(unseen):,} networks outside this sample "
        f"in {fitting:.1f} s (no noise)"
    )
    return predicted, [per_network] * len(networks), description


def _evaluate_each(evaluator, networks: list[Architecture], name: str, progress: bool) -> list:
    """One network per call, so each one's reward is stored in the cache as soon as it is known."""
    return [evaluator.evaluate([network])[0] for network in tqdm(networks, name, disable=not progress)]


def _weight_sharing(
    plan: FidelityPlan,
    config: EnvConfig,
    train_config: TrainConfig,
    networks: list[Architecture],
    data,
    progress: bool,
) -> tuple[list[float], list[float], float]:
    """Rewards and seconds per network from one shared-weights evaluator (``config``'s head), the networks met in a
    seeded random order after the warm-up (whose seconds are returned apart)."""
    env_c = replace(config, reward_source="weight_sharing")
    evaluator = WeightSharingEvaluator.from_config(env_c, train_config, data)  # the reward_source's own factory
    head = config.weight_sharing.ws_head
    start = time.perf_counter()
    evaluator.warm_up()
    warmup = time.perf_counter() - start
    order = np.random.default_rng(plan.seed).permutation(len(networks))
    rewards, seconds = [0.0] * len(networks), [0.0] * len(networks)
    for index in tqdm(order, f"ws_{head}", disable=not progress):
        evaluation = evaluator.evaluate([networks[index]])[0]
        rewards[index], seconds[index] = evaluation.accuracy, evaluation.train_seconds
    return rewards, seconds, warmup
