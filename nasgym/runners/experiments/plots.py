"""PNG plots of search runs. Built on matplotlib's object API, so no global backend state is touched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nasgym.core.search_space import ACTION_TOKENS, N_ACTIONS
from nasgym.runners.experiments.metrics import RunData
from nasgym.runners.run_folder import EpisodeRow

BAND_NOTE = "line: mean over seeds; band: range over seeds"


def _stack(curves: Sequence[np.ndarray]) -> np.ndarray:
    """Curves of different lengths (an unfinished run) are cut to the shortest."""
    length = min(len(curve) for curve in curves)
    return np.stack([curve[:length] for curve in curves])


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    head = cumulative[1:window] / np.arange(1, window)  # growing window at the start
    return np.concatenate([head, (cumulative[window:] - cumulative[:-window]) / window])


LINE_STYLES = ("-", "--", "-.", ":")
"""Cycled per line, so lines that coincide stay visible."""


def _band(axis, x: np.ndarray, curves: np.ndarray, label: str, color, style: str = "-") -> None:
    few = len(x) < 15  # a handful of updates: mark the points, a line alone may not show
    axis.plot(x, curves.mean(axis=0), style, label=label, color=color, marker="o" if few else None, markersize=3)
    if len(curves) > 1:
        axis.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=color, alpha=0.2, linewidth=0)


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(names)}


def plot_rewards(runs: Mapping[str, Sequence[RunData]], title: str, path: Path) -> Path:
    """Best reward so far and rolling mean reward against environment steps, one line per agent."""
    figure = Figure(figsize=(11, 4.2))
    best_axis, mean_axis = figure.subplots(1, 2)
    colors = _colors(list(runs))
    for i, (name, seeds) in enumerate(runs.items()):
        best = _stack([run.best_so_far() for run in seeds])
        window = max(5, best.shape[1] // 10)
        mean = _stack([_rolling_mean(run.rewards, window)[: best.shape[1]] for run in seeds])
        x = np.arange(1, best.shape[1] + 1)
        style = LINE_STYLES[i % len(LINE_STYLES)]
        _band(best_axis, x, best, name, colors[name], style)
        _band(mean_axis, x, mean, name, colors[name], style)
    best_axis.set(xlabel="environment step", ylabel="best reward so far (accuracy)", title="best reward")
    mean_axis.set(
        xlabel="environment step", ylabel="reward (accuracy), rolling mean", title="mean reward (window: 10% of steps)"
    )
    for axis in (best_axis, mean_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"{title}  ({BAND_NOTE})", fontsize=10)
    return _save(figure, path)


def plot_episode_length(runs: Mapping[str, Sequence[RunData]], title: str, path: Path) -> Path:
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    colors = _colors(list(runs))
    for name, seeds in runs.items():
        if not all(len(run.episode_lengths) for run in seeds):
            continue
        lengths = _stack([_rolling_mean(run.episode_lengths, 5) for run in seeds])
        _band(axis, np.arange(1, lengths.shape[1] + 1), lengths, name, colors[name])
    axis.set(xlabel="episode", ylabel="layers per episode (rolling mean of 5)", title=f"{title}: episode length")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    else:  # no run finished an episode yet
        axis.text(0.5, 0.5, "no finished episode yet", transform=axis.transAxes, ha="center", va="center")
    return _save(figure, path)


def plot_entropy(runs: Mapping[str, Sequence[RunData]], title: str, path: Path) -> Path:
    """Policy entropy per update for the agents that report it."""
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    colors = _colors(list(runs))
    for name, seeds in runs.items():
        if not all(len(run.entropy) for run in seeds):
            continue
        entropy = _stack([run.entropy for run in seeds])
        steps = seeds[0].entropy_steps[: entropy.shape[1]]
        _band(axis, steps, entropy, name, colors[name])
    axis.axhline(np.log(N_ACTIONS), color="grey", linestyle=":", label=f"uniform over {N_ACTIONS} actions")
    axis.set(xlabel="environment step", ylabel="policy entropy (nats)", title=f"{title}: policy entropy")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, path)


def plot_action_proportions(runs_by_dataset: Mapping[str, Mapping[str, Sequence[RunData]]], path: Path) -> Path:
    """Share of each action per agent, one panel per dataset (mean over seeds)."""
    datasets = list(runs_by_dataset)
    figure = Figure(figsize=(max(6, 5 * len(datasets)), 4))
    axes = np.atleast_1d(figure.subplots(1, len(datasets), sharey=True))
    for axis, dataset in zip(axes, datasets, strict=True):
        runs = runs_by_dataset[dataset]
        colors = _colors(list(runs))
        width = 0.8 / max(len(runs), 1)
        positions = np.arange(len(ACTION_TOKENS))
        for i, (name, seeds) in enumerate(runs.items()):
            proportions = np.mean([run.action_proportions() for run in seeds], axis=0)
            axis.bar(positions + i * width - 0.4 + width / 2, 100 * proportions, width, label=name, color=colors[name])
        axis.set_xticks(positions, ACTION_TOKENS)
        axis.set(xlabel="action (layer token)", title=dataset)
        axis.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("share of steps (%)")
    axes[0].legend(fontsize=8)
    figure.suptitle("action proportions (mean over seeds)", fontsize=10)
    return _save(figure, path)


def plot_transfer(curves: Mapping[str, Mapping[str, Sequence[RunData]]], path: Path) -> Path:
    """Best reward so far on each held-out dataset, one line per way of getting a policy there."""
    datasets = list(curves)
    figure = Figure(figsize=(max(6, 5.5 * len(datasets)), 4.2))
    axes = np.atleast_1d(figure.subplots(1, len(datasets)))
    for axis, dataset in zip(axes, datasets, strict=True):
        variants = curves[dataset]
        colors = _colors(list(variants))
        for i, (name, seeds) in enumerate(variants.items()):
            best = _stack([run.best_so_far() for run in seeds])
            x = np.arange(1, best.shape[1] + 1)
            _band(axis, x, best, name, colors[name], LINE_STYLES[i % len(LINE_STYLES)])
        axis.set(
            xlabel="environment step on the held-out dataset",
            ylabel="best reward so far (accuracy)",
            title=f"transfer to {dataset}",
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, path)


def reward_label(reward_source: str = "trained", reward_exponent: float = 1.0) -> str:
    """What a search's rewards are, for an axis: a weight-sharing score is not a trained network's accuracy."""
    if reward_source == "weight_sharing":
        return "weight-sharing score (not a trained accuracy)"
    accuracy = "predicted accuracy" if reward_source == "surrogate" else "accuracy"
    return f"reward ({accuracy}" + (f" ^ {reward_exponent:g})" if reward_exponent != 1 else ")")


def plot_search(rows: Sequence[EpisodeRow], path: Path, title: str, ylabel: str = "reward (accuracy)") -> Path:
    """One search: the reward of every rewarded step (every step with per-step rewards, episode ends with final
    rewards) and the best so far, against the step; ``ylabel`` says what the rewards are (``reward_label``)."""
    rewarded = [row for row in rows if row.rewarded]
    figure = Figure(figsize=(8, 4), layout="constrained")
    axes = figure.subplots()
    axes.scatter([row.step for row in rewarded], [row.reward for row in rewarded], s=6, alpha=0.4, label="reward")
    axes.step(
        [row.step for row in rows], [row.best_reward for row in rows], where="post", color="C3", label="best so far"
    )
    axes.set(xlabel="environment step", ylabel=ylabel, title=title)
    axes.legend(loc="lower right")
    figure.savefig(path, dpi=100)
    return path
