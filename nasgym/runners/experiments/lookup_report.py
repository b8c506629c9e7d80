"""The part of an agent benchmark's report that a look-up table makes possible (``lookup_stats``): final regret per
agent and dataset, which pairs of agents differ at 95%, RL's aggregate statistics, a rank test and the plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nasgym.core.lookup.source import open_table
from nasgym.runners.experiments import lookup_stats
from nasgym.runners.experiments.live_check import live_check, live_markdown
from nasgym.runners.experiments.records import path_name
from nasgym.runners.experiments.report import markdown_table

if TYPE_CHECKING:
    from nasgym.runners.experiments.bench import BenchSettings

IMPROVEMENT = "improvement_over_random"
ANYTIME = (0.1, 0.25, 0.5)
"""Shares of the step budget at which the regret is also reported: agents that tie at the end may differ on the way."""


def lookup_section(
    out_dir: Path, settings: BenchSettings, run_dir: Callable[[Path, str, str, int], Path]
) -> tuple[dict, str]:
    """Figures (for results.json) and markdown (for report.md) of a benchmark whose rewards came from tables."""
    figures: dict[str, Any] = {"datasets": {}}
    lines = ["## Regret against the table's best network", ""]
    scores: dict[str, list[np.ndarray]] = {agent: [] for agent in settings.agents}
    mean_regret: dict[str, list[float]] = {agent: [] for agent in settings.agents}
    for dataset in settings.datasets:
        typed = settings.typed.datasets[dataset]
        env_config, train_config = typed.configs
        surrogate = env_config.reward_source == "surrogate"
        truth = lookup_stats.TrueRewards(
            open_table(dataset, env_config.table_path), train_config.epochs, env_config.max_layers, surrogate
        )
        curves = {
            agent: [lookup_stats.run_curve(run_dir(out_dir, dataset, agent, s), truth) for s in range(settings.seeds)]
            for agent in settings.agents
        }
        final = {agent: np.array([c["regret"][-1] for c in runs]) for agent, runs in curves.items()}
        budgets = [max(1, round(settings.steps * share)) for share in ANYTIME]
        rows, per_agent = [], {}
        for agent, values in final.items():
            mean, half = lookup_stats.mean_interval(values)
            hours = np.mean([c["seconds"][-1] for c in curves[agent]]) / 3600
            anytime = {
                steps: lookup_stats.mean_interval(
                    [lookup_stats.regret_at(c, np.array([steps]))[0] for c in curves[agent]]
                )
                for steps in budgets
            }
            per_agent[agent] = {"final_regret": mean, "final_regret_ci95": half, "runs": values.tolist(),
                                "simulated_hours": float(hours),
                                "regret_at_steps": {str(s): list(v) for s, v in anytime.items()}}  # fmt: skip
            rows.append([agent, f"{mean:.4f} +- {half:.4f}", f"{np.median(values):.4f}",
                         *(f"{m:.4f} +- {h:.4f}" for m, h in anytime.values()), f"{hours:.2f}"])  # fmt: skip
            scores[agent].append(1.0 - values / truth.best)
            mean_regret[agent].append(mean)
        pairs = lookup_stats.pairwise(final)
        plots = [
            lookup_stats.plot_curves(curves, dataset, "steps", out_dir / f"regret_steps_{path_name(dataset)}.png"),
            lookup_stats.plot_curves(curves, dataset, "seconds", out_dir / f"regret_time_{path_name(dataset)}.png"),
        ]
        figures["datasets"][dataset] = {"best_network": truth.best_network, "best_reward": truth.best,
                                        "agents": per_agent, "pairs": pairs}  # fmt: skip
        checked = []
        if surrogate:  # a conclusion on a surrogate is checked by training what the agents found
            incumbents = {agent: [c["incumbent"] for c in runs] for agent, runs in curves.items()}
            check = live_check(incumbents, truth, typed)
            figures["datasets"][dataset]["live_check"] = check
            checked = live_markdown(check)
        lines += [
            f"### {dataset}",
            "",
            f"Best network {'the table holds, by the surrogate' if surrogate else 'of the searched space'} "
            f"({env_config.max_layers} layers at most, {env_config.image_size} px, "
            f"{train_config.epochs} epochs): `{truth.best_network}`, true reward {truth.best:.4f} "
            f"({'surrogate, noiseless' if surrogate else 'mean over the table seeds'}). Final regret: mean over "
            f"{settings.seeds} seeds +- the half-width of its 95% interval (Student t), also after a share of "
            "the budget.",
            "",
            markdown_table(
                ["agent", "final regret", "median", *(f"after {s} steps" for s in budgets), "simulated hours"], rows
            ),
            "",
            "Pairs (difference of mean final regret, a - b, with a bootstrap 95% interval):",
            "",
            markdown_table(
                ["a", "b", "a - b", "95% interval", "differ at 95%"],
                [_pair_row(p) for p in pairs],
            ),
            "",
            *(f"![{path.stem}]({path.name})" for path in plots),
            "",
            *checked,
        ]
    stacked = {agent: np.stack(values, axis=1) for agent, values in scores.items()}
    aggregate = lookup_stats.aggregates(stacked)
    ranks = lookup_stats.friedman(mean_regret)
    figures["aggregate"], figures["friedman"] = aggregate, ranks
    plot = lookup_stats.plot_aggregates(aggregate, out_dir / "aggregates.png")
    order = sorted(aggregate, key=lambda a: -aggregate[a]["iqm"])
    lines += [
        "### Over all datasets (rliable)",
        "",
        "Normalised score: the incumbent's true reward over the best network's; optimality gap: the mean shortfall "
        "from 1. Stratified-bootstrap 95% intervals; P(> random): the probability that a run of the agent beats a run "
        "of random search on the same dataset.",
        "",
        markdown_table(
            ["agent", "IQM [95% CI]", "optimality gap [95% CI]", "P(> random) [95% CI]"],
            [[a, *(_ci(aggregate[a], key) for key in ("iqm", "optimality_gap", IMPROVEMENT))] for a in order],
        ),
        "",
        f"Friedman's rank test across datasets: {_friedman_line(ranks)}",
        "",
        f"![{plot.stem}]({plot.name})",
        "",
    ]
    return figures, "\n".join(lines)


def _pair_row(pair: dict[str, Any]) -> list[str]:
    low, high = pair["ci"]
    return [pair["a"], pair["b"], f"{pair['difference']:+.4f}", f"[{low:+.4f}, {high:+.4f}]",
            "yes" if pair["differ"] else "no"]  # fmt: skip


def _ci(values: dict[str, Any], key: str) -> str:
    if key not in values:
        return "-"
    low, high = values[f"{key}_ci"]
    return f"{values[key]:.3f} [{low:.3f}, {high:.3f}]"


def _friedman_line(ranks: dict[str, Any]) -> str:
    mean = ", ".join(f"{a} {r:.2f}" for a, r in sorted(ranks.get("mean_ranks", {}).items(), key=lambda x: x[1]))
    if np.isnan(ranks["p_value"]):
        return f"{ranks.get('note', '')}" + (f" (mean rank, 1 = lowest regret: {mean})" if mean else "")
    return f"chi2 {ranks['statistic']:.2f}, p = {ranks['p_value']:.3g} (mean rank, 1 = lowest regret: {mean})"
