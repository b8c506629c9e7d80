"""Benchmark agents against each other (NasGym's Experiment 1): same budget, same reward cache, K seeds.

The design is the paper's: a meta-learning agent (``carried``, meta-A2C by default) is one policy carried through
the datasets in their order, each dataset a new trial that starts from the policy the last one left; the other
agents start fresh on every dataset. Agent seed K trains its children with seed K too (the reward noise is
sampled, one seed per run, and agents of the same seed share rewards), unless a fixed ``train_seed`` is given.

``OUT/runs/DATASET/AGENT/seedK/`` is an ordinary search folder per run (resumable); ``OUT/results.json``
and ``OUT/results.csv`` hold every run's metrics and the mean and 95% interval over seeds;
``OUT/report.md`` embeds the plots written beside it. With the Ray backend the runs go on at once as Ray tasks
(``nasgym.runners.experiments.parallel``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nasgym.core import spaces
from nasgym.core.protocols import DEFAULT_PROTOCOL
from nasgym.runners.envs import NAS_V0
from nasgym.runners.experiments import (
    ExperimentEnv,
    ParsedOnce,
    check_datasets,
    checked_options,
    plots,
    with_shared_tables,
)
from nasgym.runners.experiments.lookup_report import lookup_section
from nasgym.runners.experiments.metrics import METRIC_DIGITS, METRIC_LABELS, RUN_METRICS, RunData, mean_and_interval
from nasgym.runners.experiments.parallel import RUNS_AT_ONCE, Run, run_all_timed
from nasgym.runners.experiments.records import path_name
from nasgym.runners.experiments.report import format_value, markdown_table, reward_mode
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings


@dataclass
class BenchSettings(ParsedOnce):
    datasets: list[str]
    agents: list[str]
    steps: int
    """Environment steps per run, unless ``agent_steps`` names a budget for the agent and dataset."""
    seeds: int = 2
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Hyperparameters per agent name (the seed is set per run)."""
    protocol: str = DEFAULT_PROTOCOL
    agent_env: dict[str, dict[str, Any]] = field(default_factory=dict)
    """NAS-v0 keywords per agent name, on top of ``env_options`` (e.g. REINFORCE's reward)."""
    agent_steps: dict[str, dict[str, int]] = field(default_factory=dict)
    """Step budgets per agent and dataset (a protocol's), in place of ``steps``."""
    carried: list[str] = field(default_factory=lambda: ["meta_a2c"])
    """Agents whose policy is carried through the datasets in order (a new trial on each)."""
    train_seed: int | None = None
    """The child-training seed of every run; None: agent seed K trains with seed K."""
    env: str = NAS_V0
    """The environment every run searches."""

    @cached_property
    def typed(self) -> ExperimentEnv:
        """``env_options`` parsed on every dataset, and each agent's on the first (the reward the report names);
        not a field, so bench.json stores only the keywords."""
        checked_options(self.env, self.env_options)
        first = {"dataset": self.datasets[0]} if self.datasets else {}
        agents = {agent: {**self.env_for(agent, 0), **first} for agent in self.agents}
        return ExperimentEnv(self.env, self.env_options, self.datasets, agents)

    def budget(self, agent: str, dataset: str) -> int:
        return self.agent_steps.get(agent, {}).get(dataset, self.steps)

    def env_for(self, agent: str, seed: int) -> dict[str, Any]:
        training_seed = seed if self.train_seed is None else self.train_seed
        return {**self.env_options, **self.agent_env.get(agent, {}), "seed": training_seed}


def run_dir(out_dir: Path, dataset: str, agent: str, seed: int) -> Path:
    return out_dir / "runs" / path_name(dataset) / agent / f"seed{seed}"


def run_bench(
    out_dir: str | Path, settings: BenchSettings, progress: bool = True, runs_at_once: int = RUNS_AT_ONCE
) -> dict[str, Any]:
    """Run every (dataset, agent, seed) that is not complete yet, datasets in order, then write results, plots and
    report. With ``backend="ray"`` in the environment options the runs are Ray tasks, ``runs_at_once`` at a time,
    a carried policy's run starting once the run it continues is done."""
    out_dir = Path(out_dir)
    settings.env_options = with_shared_tables(settings.datasets, settings.env_options)
    check_datasets(settings.typed.datasets.values())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(asdict(settings), indent=2))
    runs: list[Run] = []
    index: dict[tuple[str, str, int], int] = {}
    for position, dataset in enumerate(settings.datasets):
        for agent in settings.agents:
            for seed in range(settings.seeds):
                start_from: Path | None = None
                after: tuple[int, ...] = ()
                carried = ""
                if agent in settings.carried and position > 0:  # the policy the previous dataset's trial left
                    previous = settings.datasets[position - 1]
                    start_from = RunFolder(run_dir(out_dir, previous, agent, seed)).checkpoint
                    after, carried = (index[(previous, agent, seed)],), f", carried from {previous}"
                search = SearchSettings(
                    agent=agent,
                    dataset=dataset,
                    steps=settings.budget(agent, dataset),
                    env_options=settings.env_for(agent, seed),
                    agent_options={**settings.agent_options.get(agent, {}), "seed": seed},
                    protocol=settings.protocol,
                    env=settings.env,
                )
                label = f"{agent} on {dataset}, seed {seed}{carried}"
                index[(dataset, agent, seed)] = len(runs)
                runs.append(Run(run_dir(out_dir, dataset, agent, seed), search, label, start_from, after=after))
    machine = run_all_timed(runs, out_dir, progress, runs_at_once)
    return write_results(out_dir, settings, machine)


def write_results(out_dir: Path, settings: BenchSettings, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json/.csv, the plots and report.md from the runs' folders; ``machine``: what running them cost."""
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
    rewards = {agent: reward_mode(settings.typed.agents[agent]) for agent in settings.agents}
    results = {
        "settings": asdict(settings),
        "protocol": settings.protocol,
        "reward_modes": rewards,
        "aggregate": aggregate,
        "runs": per_run,
        "machine": machine,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    with open(out_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(aggregate[0]))
        writer.writeheader()
        writer.writerows(aggregate)
    figures = _plot(out_dir, runs)
    report = _report(settings, aggregate, figures, rewards)
    if settings.typed.uses_tables:
        results["lookup"], section = lookup_section(out_dir, settings, run_dir)
        report = report.replace("\n## ", f"\n{section}\n## ", 1)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "report.md").write_text(report)
    return results


def _plot(out_dir: Path, runs: dict[str, dict[str, list[RunData]]]) -> dict[str, list[Path]]:
    figures: dict[str, list[Path]] = {}
    for dataset, by_agent in runs.items():
        figures[dataset] = [
            plots.plot_rewards(by_agent, dataset, out_dir / f"rewards_{path_name(dataset)}.png"),
            plots.plot_episode_length(by_agent, dataset, out_dir / f"episode_length_{path_name(dataset)}.png"),
            plots.plot_entropy(by_agent, dataset, out_dir / f"entropy_{path_name(dataset)}.png"),
        ]
    figures["all"] = [plots.plot_action_proportions(runs, out_dir / "action_proportions.png")]
    return figures


def _design(settings: BenchSettings) -> str:
    carried = [agent for agent in settings.agents if agent in settings.carried]
    fresh = [agent for agent in settings.agents if agent not in settings.carried]
    parts = []
    if carried:
        parts.append(f"{', '.join(carried)}: one policy per seed carried through {' -> '.join(settings.datasets)}")
    if fresh:
        parts.append(f"{', '.join(fresh)}: a new agent on every dataset")
    seeds = (
        f"every run's children train with seed {settings.train_seed}"
        if settings.train_seed is not None
        else "agent seed K trains its children with seed K (reward noise is sampled)"
    )
    return "; ".join(parts) + f"; {seeds}"


def _report(
    settings: BenchSettings, aggregate: list[dict[str, Any]], figures: dict[str, list[Path]], rewards: dict[str, str]
) -> str:
    budgets = sorted({settings.budget(a, d) for a in settings.agents for d in settings.datasets})
    lines = [
        "# Agent benchmark",
        "",
        f"Protocol `{settings.protocol}`, environment `{settings.env}`. Agents {', '.join(settings.agents)} on "
        f"{', '.join(settings.datasets)}; "
        f"{'/'.join(map(str, budgets))} environment steps per run, {settings.seeds} seeds each, one shared reward "
        f"cache. {_design(settings)}. Values are the mean over seeds +- the half-width of the 95% Student-t "
        "interval (across seeds); the within-run sd is each run's own spread of episode rewards over windows of "
        "50 episodes, as NasGym reported it. Environment options: "
        f"`{json.dumps(settings.env_options, sort_keys=True)}`.",
        "",
        "Reward: " + "; ".join(f"{agent} {mode}" for agent, mode in rewards.items()) + ".",
        "",
    ]
    tokens = spaces.of_env(settings.env).action_tokens  # names of the actions when each is one fixed layer
    for dataset in settings.datasets:
        rows = [row for row in aggregate if row["dataset"] == dataset]
        table = [
            [row["agent"], *(format_value(row[m], row[f"{m}_ci95"], METRIC_DIGITS.get(m, 3)) for m in RUN_METRICS)]
            for row in rows
        ]
        lines += [f"## {dataset}", "", markdown_table(["agent", *(METRIC_LABELS[m] for m in RUN_METRICS)], table), ""]
        if tokens:  # a space whose actions are fixed layers
            actions = [[row["agent"]] + [f"{100 * row[f'action_{t}']:.0f}%" for t in tokens] for row in rows]
            lines += ["Share of each action:", "", markdown_table(["agent", *tokens], actions), ""]
        lines += [
            *(f"![{path.stem}]({path.name})" for path in figures[dataset]),
            "",
        ]
    lines += ["## Actions on every dataset", "", *(f"![{p.stem}]({p.name})" for p in figures["all"]), ""]
    return "\n".join(lines)
