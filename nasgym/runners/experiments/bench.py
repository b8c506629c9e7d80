"""Benchmark agents against each other (NasGym's Experiment 1): same budget, same reward cache, K seeds.

``OUT/runs/DATASET/AGENT/seedK/`` is an ordinary search folder per run (resumable); ``OUT/results.json``
and ``OUT/results.csv`` hold every run's metrics and the mean and 95% interval over seeds;
``OUT/report.md`` embeds the plots written beside it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasgym.core.search_space import ACTION_TOKENS
from nasgym.runners.experiments import check_datasets, plots
from nasgym.runners.experiments.metrics import METRIC_DIGITS, METRIC_LABELS, RUN_METRICS, RunData, mean_and_interval
from nasgym.runners.experiments.report import format_value, markdown_table
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search


@dataclass
class BenchSettings:
    datasets: list[str]
    agents: list[str]
    steps: int
    seeds: int = 2
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Hyperparameters per agent name (the seed is set per run)."""


def run_dir(out_dir: Path, dataset: str, agent: str, seed: int) -> Path:
    return out_dir / "runs" / dataset / agent / f"seed{seed}"


def run_bench(out_dir: str | Path, settings: BenchSettings, progress: bool = True) -> dict[str, Any]:
    """Run every (dataset, agent, seed) that is not complete yet, then write results, plots and report."""
    out_dir = Path(out_dir)
    check_datasets(settings.datasets, settings.env_options)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(asdict(settings), indent=2))
    plan = [(d, a, s) for d in settings.datasets for a in settings.agents for s in range(settings.seeds)]
    for number, (dataset, agent, seed) in enumerate(plan, start=1):
        folder = run_dir(out_dir, dataset, agent, seed)
        if RunFolder(folder).completed_steps() >= settings.steps:
            continue
        if progress:
            print(f"[{number}/{len(plan)}] {agent} on {dataset}, seed {seed}", flush=True)
        search = SearchSettings(
            agent=agent,
            dataset=dataset,
            steps=settings.steps,
            env_options=settings.env_options,
            agent_options={**settings.agent_options.get(agent, {}), "seed": seed},
        )
        run_search(folder, search, resume=RunFolder(folder).holds_search(), progress=progress)
    return write_results(out_dir, settings)


def write_results(out_dir: Path, settings: BenchSettings) -> dict[str, Any]:
    runs = {
        dataset: {
            agent: [RunData.load(run_dir(out_dir, dataset, agent, seed)) for seed in range(settings.seeds)]
            for agent in settings.agents
        }
        for dataset in settings.datasets
    }
    per_run, aggregate = [], []
    for dataset, by_agent in runs.items():
        for agent, seeds in by_agent.items():
            metrics = [run.metrics() for run in seeds]
            for seed, values in enumerate(metrics):
                per_run.append({"dataset": dataset, "agent": agent, "seed": seed, **values})
            row: dict[str, Any] = {"dataset": dataset, "agent": agent, "seeds": len(seeds)}
            for name in metrics[0]:
                row[name], row[f"{name}_ci95"] = mean_and_interval([m[name] for m in metrics])
            aggregate.append(row)
    results = {"settings": asdict(settings), "aggregate": aggregate, "runs": per_run}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    with open(out_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(aggregate[0]))
        writer.writeheader()
        writer.writerows(aggregate)
    figures = _plot(out_dir, runs)
    (out_dir / "report.md").write_text(_report(settings, aggregate, figures))
    return results


def _plot(out_dir: Path, runs: dict[str, dict[str, list[RunData]]]) -> dict[str, list[Path]]:
    figures: dict[str, list[Path]] = {}
    for dataset, by_agent in runs.items():
        figures[dataset] = [
            plots.plot_rewards(by_agent, dataset, out_dir / f"rewards_{dataset}.png"),
            plots.plot_episode_length(by_agent, dataset, out_dir / f"episode_length_{dataset}.png"),
            plots.plot_entropy(by_agent, dataset, out_dir / f"entropy_{dataset}.png"),
        ]
    figures["all"] = [plots.plot_action_proportions(runs, out_dir / "action_proportions.png")]
    return figures


def _report(settings: BenchSettings, aggregate: list[dict[str, Any]], figures: dict[str, list[Path]]) -> str:
    lines = [
        "# Agent benchmark",
        "",
        f"Agents {', '.join(settings.agents)} on {', '.join(settings.datasets)}; {settings.steps} environment "
        f"steps per run, {settings.seeds} seeds each, one shared reward cache. Values are the mean over seeds "
        "+- the half-width of the 95% Student-t interval. Environment options: "
        f"`{json.dumps(settings.env_options, sort_keys=True)}`.",
        "",
    ]
    for dataset in settings.datasets:
        rows = [row for row in aggregate if row["dataset"] == dataset]
        table = [
            [row["agent"], *(format_value(row[m], row[f"{m}_ci95"], METRIC_DIGITS.get(m, 3)) for m in RUN_METRICS)]
            for row in rows
        ]
        actions = [[row["agent"]] + [f"{100 * row[f'action_{t}']:.0f}%" for t in ACTION_TOKENS] for row in rows]
        lines += [
            f"## {dataset}",
            "",
            markdown_table(["agent", *(METRIC_LABELS[m] for m in RUN_METRICS)], table),
            "",
            "Share of each action:",
            "",
            markdown_table(["agent", *ACTION_TOKENS], actions),
            "",
            *(f"![{path.stem}]({path.name})" for path in figures[dataset]),
            "",
        ]
    lines += ["## Actions on every dataset", "", *(f"![{p.stem}]({p.name})" for p in figures["all"]), ""]
    return "\n".join(lines)
