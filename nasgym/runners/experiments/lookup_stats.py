"""What an agent benchmark on a look-up table can say that one on live training cannot: regret against the table's
best network, best-so-far curves against evaluations and simulated time, and RL's statistics over many seeds.

* Regret of a run after step t: the table's best reward in the searched space minus the true reward (the mean over
  the table's seeds, at the run's epochs) of the network with the best observed reward so far, the incumbent.
* Simulated time: the recorded training seconds of each network the run evaluated for the first time (a repeat is
  answered by the reward cache, as it would be live).
* Aggregates over runs and datasets with rliable (Agarwal et al. 2021): interquartile mean and optimality gap of the
  normalised score (incumbent's true reward / best reward) with stratified-bootstrap 95% intervals, and the
  probability that each agent improves on random search; per dataset and pair of agents the difference of mean final
  regret with a bootstrap 95% interval (they differ at 95% when it excludes 0); across datasets Friedman's rank test.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from scipy import stats

from nasgym.core.errors import ConfigError
from nasgym.core.lookup.surrogate import Surrogate, fitted
from nasgym.core.lookup.table import Table
from nasgym.core.search_space import Architecture
from nasgym.runners.run_folder import RunFolder

BOOTSTRAP = 2000
INSTALL_HINT = "pip install 'nasgym[bench]'"


def _rliable() -> tuple[Any, Any]:
    try:
        from rliable import library, metrics
    except ImportError:
        raise ConfigError(
            f"the look-up benchmark's statistics need rliable, which is not installed: {INSTALL_HINT}"
        ) from None
    return library, metrics


class TrueRewards:
    """The true reward of any network of a searched space: the table's mean over seeds (or the surrogate's noiseless
    prediction), and the best of the space."""

    def __init__(self, table: Table, epochs: int, max_layers: int, surrogate: bool = False):
        self.table, self.epochs, self.max_layers = table, epochs, max_layers
        self.model: Surrogate | None = fitted(table, epochs) if surrogate else None
        self._known: dict[str, float] = {}
        for name, seeds in table.seeds_of.items():
            if len(Architecture.parse(name)) <= max_layers:
                entries = [table.entries[(name, seed)] for seed in seeds]
                self._known[name] = float(np.mean([table.accuracy(e, epochs) for e in entries]))
        if self.model is not None:
            names = list(self._known)
            predicted = self.model.predict([Architecture.parse(n) for n in names])
            self._known = {name: float(value) for name, value in zip(names, predicted, strict=True)}
        self._table_networks = list(self._known)
        self.best = max(self._known.values())
        self.best_network = max(self._known, key=self._known.__getitem__)

    @property
    def networks(self) -> list[str]:
        """The networks of the searched space that the table holds."""
        return list(self._table_networks)

    def __call__(self, network: str) -> float:
        if network not in self._known:
            if self.model is None:
                raise ConfigError(self.table.missing(network))
            self._known[network] = float(self.model.predict([Architecture.parse(network)])[0])
        return self._known[network]


def run_curve(folder: Path, truth: TrueRewards) -> dict[str, Any]:
    """Per rewarded step of one run: the step, the incumbent's regret and the simulated seconds so far; and the final
    incumbent."""
    steps, regrets, seconds = [], [], []
    best_observed, incumbent, elapsed, seen = -math.inf, "", 0.0, set()
    for row in RunFolder(folder).episodes():
        if not row.rewarded:
            continue
        if row.network not in seen:
            seen.add(row.network)
            elapsed += row.train_seconds
        if row.reward > best_observed:
            best_observed, incumbent = row.reward, row.network
        steps.append(row.step)
        regrets.append(truth.best - truth(incumbent))
        seconds.append(elapsed)
    return {"steps": np.array(steps), "regret": np.array(regrets), "seconds": np.array(seconds), "incumbent": incumbent}


def regret_at(curve: dict[str, np.ndarray], grid: np.ndarray, axis: str = "steps") -> np.ndarray:
    """The regret on a grid of steps (or seconds): the last value at or before each point (the best so far)."""
    index = np.searchsorted(curve[axis], grid, side="right") - 1
    first = curve["regret"][0] if len(curve["regret"]) else np.nan
    return np.where(index >= 0, curve["regret"][np.clip(index, 0, None)], first if len(curve["regret"]) else np.nan)


def mean_interval(values: npt.ArrayLike) -> tuple[float, float]:
    """Mean and the half-width of its Student-t 95% interval over runs."""
    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return float(np.mean(array)), math.nan
    half = stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array))
    return float(array.mean()), float(half)


def pairwise(final: dict[str, np.ndarray], seed: int = 0) -> list[dict[str, Any]]:
    """For each pair of agents, the difference of mean final regret with a bootstrap 95% interval."""
    rows = []
    for a, b in itertools.combinations(final, 2):
        x, y = final[a], final[b]
        difference = float(x.mean() - y.mean())
        if np.ptp(np.concatenate([x, y])) == 0:
            low = high = difference
        else:
            result = stats.bootstrap(
                (x, y),
                lambda u, v, axis=-1: np.mean(u, axis=axis) - np.mean(v, axis=axis),
                n_resamples=BOOTSTRAP,
                method="percentile",
                random_state=seed,
            )
            low, high = result.confidence_interval
        rows.append({"a": a, "b": b, "difference": difference, "ci": [float(low), float(high)],
                     "differ": bool(low > 0 or high < 0)})  # fmt: skip
    return rows


def aggregates(scores: dict[str, np.ndarray], baseline: str = "random", seed: int = 0) -> dict[str, Any]:
    """rliable's IQM, mean and optimality gap of normalised scores (runs x datasets) with stratified-bootstrap 95%
    intervals, and the probability of improvement of each agent over ``baseline``."""
    library, metrics = _rliable()
    np.random.seed(seed)  # rliable's bootstrap draws from NumPy's global generator

    def measures(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x), metrics.aggregate_optimality_gap(x, 1.0)])

    point, interval = library.get_interval_estimates(scores, measures, reps=BOOTSTRAP)
    result: dict[str, Any] = {
        agent: {
            "iqm": float(point[agent][0]),
            "iqm_ci": interval[agent][:, 0].tolist(),
            "mean": float(point[agent][1]),
            "mean_ci": interval[agent][:, 1].tolist(),
            "optimality_gap": float(point[agent][2]),
            "optimality_gap_ci": interval[agent][:, 2].tolist(),
        }
        for agent in scores
    }
    if baseline in scores:
        pairs = {f"{agent},{baseline}": (scores[agent], scores[baseline]) for agent in scores if agent != baseline}
        if pairs:
            probability, p_interval = library.get_interval_estimates(
                pairs, metrics.probability_of_improvement, reps=BOOTSTRAP
            )
            for pair, value in probability.items():
                agent = pair.split(",")[0]
                result[agent]["improvement_over_" + baseline] = float(value)
                result[agent]["improvement_over_" + baseline + "_ci"] = p_interval[pair][:, 0].tolist()
    return result


def friedman(mean_regret: dict[str, list[float]]) -> dict[str, Any]:
    """Friedman's test that the agents' ranks differ across datasets (rows: agents, one mean regret per dataset)."""
    agents = list(mean_regret)
    datasets = len(next(iter(mean_regret.values())))
    if len(agents) < 3 or datasets < 2:
        return {"statistic": math.nan, "p_value": math.nan, "note": "needs >= 3 agents and >= 2 datasets"}
    ranks = np.mean([stats.rankdata([mean_regret[a][d] for a in agents]) for d in range(datasets)], axis=0)
    mean_ranks = dict(zip(agents, ranks.tolist(), strict=True))
    if datasets < 3:
        note = "Friedman's test needs >= 3 datasets; mean ranks only"
        return {"statistic": math.nan, "p_value": math.nan, "mean_ranks": mean_ranks, "note": note}
    result = stats.friedmanchisquare(*[mean_regret[a] for a in agents])
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue), "mean_ranks": mean_ranks}


def colors(agents: Any) -> dict[str, str]:
    """One colour per agent, the same in every plot of a report."""
    return {agent: f"C{number % 10}" for number, agent in enumerate(sorted(agents))}


def plot_curves(curves: dict[str, list[dict[str, np.ndarray]]], dataset: str, axis: str, path: Path) -> Path:
    """Mean regret of the incumbent per agent with its 95% band, against evaluations or simulated hours."""
    figure = Figure(figsize=(6.5, 4.2))
    ax = figure.subplots()
    end = max(float(c[axis][-1]) for runs in curves.values() for c in runs if len(c[axis]))
    grid = np.linspace(0, end, 200)
    scale = 3600.0 if axis == "seconds" else 1.0
    colour = colors(curves)
    for agent, runs in curves.items():
        values = np.array([regret_at(c, grid, axis) for c in runs])
        mean = np.nanmean(values, axis=0)
        half = stats.t.ppf(0.975, max(len(runs) - 1, 1)) * np.nanstd(values, axis=0, ddof=1) / math.sqrt(len(runs))
        ax.plot(grid / scale, mean, label=agent, linewidth=1.6, color=colour[agent])
        low, high = np.maximum(mean - np.nan_to_num(half), 0), mean + np.nan_to_num(half)
        ax.fill_between(grid / scale, low, high, alpha=0.18, color=colour[agent])
    ax.set_xlabel("simulated training hours" if axis == "seconds" else "environment steps")
    ax.set_ylabel("regret of the best network so far")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_title(f"{dataset}: mean regret over seeds, 95% band", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def plot_aggregates(result: dict[str, Any], path: Path, baseline: str = "random") -> Path:
    """IQM and optimality gap with their 95% intervals, and the probability of improving on ``baseline``."""
    agents = sorted(result, key=lambda a: -result[a]["iqm"])
    colour = colors(result)
    keys = [("iqm", "IQM of normalised score"), ("optimality_gap", "optimality gap")]
    improvement = f"improvement_over_{baseline}"
    if any(improvement in result[a] for a in agents):
        keys.append((improvement, f"P(agent > {baseline})"))
    figure = Figure(figsize=(4 * len(keys), 0.45 * len(agents) + 1.4))
    for ax, (key, label) in zip(figure.subplots(1, len(keys), squeeze=False)[0], keys, strict=True):
        for row, agent in enumerate(agents):
            if key not in result[agent]:
                continue
            low, high = result[agent][f"{key}_ci"]
            ax.plot([low, high], [row, row], linewidth=6, alpha=0.5, solid_capstyle="butt", color=colour[agent])
            ax.plot([result[agent][key]], [row], "k|", markersize=12)
        ax.set_yticks(range(len(agents)), agents)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        if key == improvement:
            ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path
