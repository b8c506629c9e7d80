"""What a transfer experiment on look-up tables can say that one on live training cannot: each network's true reward
is known, so the held-out runs are scored by regret, zero-shot quality and evaluations to a threshold, and the
question "does the frozen policy adapt in context?" becomes a paired test over seeds.

* Zero-shot quality: the mean true reward of the networks the first ``ZERO_SHOT_EPISODES`` episodes ended with.
* Evaluations to a threshold: the first step whose incumbent (best observed reward so far) truly reaches the
  space's top ``TOP_SHARE``; a run that never does counts as its whole budget (censored, and counted as such).
* In context: per seed, the mean true reward of every episode's network, frozen against each control (memory cleared,
  reward input zeroed, the non-meta agent, a new policy, random search); Wilcoxon's signed-rank test over seeds
  (paired: the same seed trained the policy and its controls). A frozen policy that adapts in context must beat its
  own context-free copies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from nasgym.core.lookup.source import open_table
from nasgym.runners.experiments.lookup_stats import TrueRewards, mean_interval, run_curve
from nasgym.runners.experiments.records import path_name
from nasgym.runners.experiments.report import markdown_table
from nasgym.runners.run_folder import RunFolder

if TYPE_CHECKING:
    from nasgym.runners.experiments.transfer import TransferSettings

ZERO_SHOT_EPISODES = 10
TOP_SHARE = 0.05
CONTROLS = ("frozen_memory_reset", "frozen_reward_zeroed", "control_frozen", "scratch", "random")


def episode_networks(folder: Path) -> list[str]:
    """The network each finished episode of a run ended with (its last rewarded step)."""
    last: dict[int, str] = {}
    for row in RunFolder(folder).episodes():
        if row.rewarded:
            last[row.episode] = row.network
    return [last[episode] for episode in sorted(last)]


def run_figures(folder: Path, truth: TrueRewards, threshold: float) -> dict[str, float]:
    networks = episode_networks(folder)
    budget = RunFolder(folder).completed_steps()
    curve = run_curve(folder, truth)
    reached = np.flatnonzero(truth.best - curve["regret"] >= threshold)
    return {
        "final_regret": float(curve["regret"][-1]) if len(curve["regret"]) else math.nan,
        "zero_shot": float(np.mean([truth(n) for n in networks[:ZERO_SHOT_EPISODES]])) if networks else math.nan,
        "mean_true_reward": float(np.mean([truth(n) for n in networks])) if networks else math.nan,
        "steps_to_top": float(curve["steps"][reached[0]]) if len(reached) else float(budget),
        "reached_top": bool(len(reached)),
    }


def paired(frozen: list[float], other: list[float]) -> dict[str, float]:
    """Mean difference frozen - other over seeds and Wilcoxon's two-sided signed-rank p-value."""
    difference = np.asarray(frozen) - np.asarray(other)
    if len(difference) < 2 or not np.any(difference):
        return {"difference": float(np.mean(difference)) if len(difference) else math.nan, "p_value": math.nan}
    return {"difference": float(difference.mean()), "p_value": float(stats.wilcoxon(difference).pvalue)}


def lookup_transfer(out_dir: Path, settings: TransferSettings, variants: list[str]) -> dict[str, Any]:
    """Per held-out dataset and variant, the figures over seeds, and the paired in-context tests."""
    figures: dict[str, Any] = {}
    for dataset in settings.eval:
        env_config, train_config = settings.typed.datasets[dataset].configs
        table = open_table(dataset, env_config.table_path)
        truth = TrueRewards(table, train_config.epochs, env_config.max_layers, env_config.reward_source == "surrogate")
        values = sorted(truth(n) for n in truth.networks)
        threshold = values[min(len(values) - 1, math.floor((1 - TOP_SHARE) * len(values)))]
        runs = {
            variant: [
                run_figures(out_dir / f"seed{seed}" / "eval" / path_name(dataset) / variant, truth, threshold)
                for seed in range(settings.seeds)
            ]
            for variant in variants
        }
        summary = {
            variant: {
                name: mean_interval([r[name] for r in per_seed])
                for name in ("final_regret", "zero_shot", "mean_true_reward", "steps_to_top")
            }
            | {"reached_top": int(sum(r["reached_top"] for r in per_seed))}
            for variant, per_seed in runs.items()
        }
        tests = {
            control: {
                measure: paired([r[measure] for r in runs["frozen"]], [r[measure] for r in runs[control]])
                for measure in ("mean_true_reward", "zero_shot")
            }
            for control in CONTROLS
            if control in runs
        }
        figures[dataset] = {"threshold": threshold, "best_reward": truth.best, "best_network": truth.best_network,
                            "variants": summary, "runs": runs, "frozen_vs": tests}  # fmt: skip
    return figures


def lookup_markdown(figures: dict[str, Any], labels: dict[str, str], seeds: int) -> list[str]:
    lines = [
        "## On the tables: regret, zero-shot quality and in-context adaptation",
        "",
        f"True rewards come from the tables (mean over their seeds). Zero-shot: the mean true reward of the networks "
        f"of the first {ZERO_SHOT_EPISODES} episodes. Steps to the top {TOP_SHARE:.0%}: the first step whose "
        "incumbent is truly among the space's best networks (a run that never gets there counts as its budget). "
        f"Mean over {seeds} seeds +- the half-width of its 95% interval.",
        "",
    ]
    for dataset, result in figures.items():
        rows = [_variant_row(labels[variant], values, seeds) for variant, values in result["variants"].items()]
        tests = [_test_row(f"frozen vs {labels[control]}", test) for control, test in result["frozen_vs"].items()]
        lines += [
            f"### {dataset}",
            "",
            f"Best network `{result['best_network']}` (true reward {result['best_reward']:.4f}); the top "
            f"{TOP_SHARE:.0%} starts at {result['threshold']:.4f}.",
            "",
            markdown_table(["policy", "final regret", "zero-shot", "mean true reward", "steps to the top"], rows),
            "",
            "Paired over seeds (Wilcoxon signed-rank, two-sided): a policy that adapts in context beats its copies "
            "without that context.",
            "",
            markdown_table(["comparison", "mean true reward, difference", "zero-shot, difference"], tests),
            "",
        ]
    return lines


def _variant_row(label: str, values: dict[str, Any], seeds: int) -> list[str]:
    reached = f"{_mean(values['steps_to_top'], 0)} ({values['reached_top']}/{seeds} reached)"
    return [label, *(_mean(values[name]) for name in ("final_regret", "zero_shot", "mean_true_reward")), reached]


def _test_row(label: str, test: dict[str, dict[str, float]]) -> list[str]:
    cells = [f"{test[m]['difference']:+.4f} (p {_p(test[m]['p_value'])})" for m in ("mean_true_reward", "zero_shot")]
    return [label, *cells]


def _mean(value: tuple[float, float], digits: int = 4) -> str:
    mean, half = value
    return f"{mean:.{digits}f}" + ("" if math.isnan(half) else f" +- {half:.{digits}f}")


def _p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"
