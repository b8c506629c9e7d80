"""Transfer a policy to datasets it never saw (NasGym's Experiment 2), with the controls its claim needs.

One policy learns on the training datasets in turn, each phase continuing from the last. On every held-out
dataset it then runs frozen and, separately, fine-tuned, beside a policy trained from scratch and random search on
the same budget. If it adapts in context, the frozen policy must behave differently from the same policy without
that context, so for meta-A2C it also runs frozen with its memory cleared at every episode and frozen with the
reward input zeroed; and a non-meta agent (``control_agent``, DQN by default) trained through the same datasets
runs frozen too. A permutation test over episodes says whether the action distributions differ (frozen against
each control, and between held-out datasets).

Every phase is an ordinary, resumable search folder: ``OUT/seedK/train/N-DATASET/``,
``OUT/seedK/control/N-DATASET/`` and ``OUT/seedK/eval/DATASET/VARIANT/``. With the Ray backend the phases that do
not continue each other go on at once as Ray tasks.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

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
from nasgym.runners.experiments.action_test import compare_actions, episode_action_counts, wilcoxon_action_shares
from nasgym.runners.experiments.metrics import RunData, mean_and_interval
from nasgym.runners.experiments.parallel import RUNS_AT_ONCE, Run, run_all_timed
from nasgym.runners.experiments.records import path_name
from nasgym.runners.experiments.report import format_value, markdown_table, reward_mode
from nasgym.runners.experiments.transfer_lookup import lookup_markdown, lookup_transfer
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings

VARIANTS = (
    "frozen",
    "frozen_memory_reset",
    "frozen_reward_zeroed",
    "fine_tuned",
    "scratch",
    "random",
    "control_frozen",
)
VARIANT_LABELS = {
    "frozen": "trained policy, frozen",
    "frozen_memory_reset": "trained policy, frozen, memory cleared every episode",
    "frozen_reward_zeroed": "trained policy, frozen, reward input zeroed",
    "fine_tuned": "trained policy, fine-tuned",
    "scratch": "new policy from scratch",
    "random": "random search",
    "control_frozen": "transferred non-meta agent, frozen",
}
META_CONTROLS: dict[str, dict[str, Any]] = {
    "frozen_memory_reset": {"memory": "episode"},
    "frozen_reward_zeroed": {"reward_input": False},
}
"""Hyperparameters that remove the in-context part of a trained meta-A2C policy."""
COMPARED_METRICS = ("best_reward", "mean_reward", "mean_reward_last10", "unique_networks", "invalid_episodes")


@dataclass
class TransferSettings(ParsedOnce):
    agent: str
    train: list[str]
    eval: list[str]
    steps_train: int
    steps_eval: int
    seeds: int = 1
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters of ``agent``."""
    protocol: str = DEFAULT_PROTOCOL
    control_agent: str | None = "dqn"
    """The non-meta agent trained through the same datasets and run frozen; None: no such control."""
    other_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Hyperparameters of the other agents (the control agent, random search)."""
    agent_env: dict[str, dict[str, Any]] = field(default_factory=dict)
    """NAS-v0 keywords per agent name, on top of ``env_options``."""
    agent_steps: dict[str, dict[str, int]] = field(default_factory=dict)
    """Step budgets per agent and dataset (a protocol's), in place of ``steps_train`` and ``steps_eval``."""
    train_seed: int | None = None
    """The child-training seed of every phase; None: seed K trains children with seed K."""
    env: str = NAS_V0
    """The environment every phase searches."""

    @cached_property
    def typed(self) -> ExperimentEnv:
        """``env_options`` parsed on every dataset, and each agent's on the first held-out one (the reward the report
        names); not a field, so transfer.json stores only the keywords."""
        options = checked_options(self.env, self.env_options)
        first = {"dataset": self.eval[0]} if self.eval else {}
        agents = {agent: {**first, **options, **self.agent_env.get(agent, {})} for agent in _agents(self)}
        return ExperimentEnv(self.env, options, [*self.train, *self.eval], agents)

    def variants(self) -> list[str]:
        names = [v for v in VARIANTS if v not in META_CONTROLS or self.agent == "meta_a2c"]
        return [v for v in names if v != "control_frozen" or self.control_agent]

    def search(self, agent: str, dataset: str, seed: int, training: bool, **overrides: Any) -> SearchSettings:
        default = self.steps_train if training else self.steps_eval
        steps = self.agent_steps.get(agent, {}).get(dataset, default)
        options = self.agent_options if agent == self.agent else self.other_options.get(agent, {})
        env = {**self.env_options, **self.agent_env.get(agent, {})}
        env["seed"] = seed if self.train_seed is None else self.train_seed
        agent_options = {**options, **overrides, "seed": seed}
        return SearchSettings(agent, dataset, steps, env, agent_options, self.protocol, env=self.env)


def run_transfer(
    out_dir: str | Path, settings: TransferSettings, progress: bool = True, runs_at_once: int = RUNS_AT_ONCE
) -> dict[str, Any]:
    """Every phase not complete yet, then results, plot and report. With ``backend="ray"`` in the environment
    options the phases are Ray tasks, ``runs_at_once`` at a time, each started once the phase it continues is done."""
    out_dir = Path(out_dir)
    settings.env_options = with_shared_tables([*settings.train, *settings.eval], settings.env_options)
    check_datasets(settings.typed.datasets.values())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "transfer.json").write_text(json.dumps(asdict(settings), indent=2))
    machine = run_all_timed(plan(out_dir, settings), out_dir, progress, runs_at_once)
    return write_results(out_dir, settings, machine)


def plan(out_dir: Path, settings: TransferSettings) -> list[Run]:
    """Every phase of every seed, in the order they run one after another, each naming the phase it continues."""
    runs: list[Run] = []

    def add(
        folder: Path, search: SearchSettings, start_from: Path | None = None, learn: bool = True, after: tuple = ()
    ) -> tuple[int, ...]:
        mode = "learning" if learn else "frozen"
        label = f"{search.agent} on {search.dataset} ({mode}, {search.steps} steps) -> {folder}"
        runs.append(Run(folder, search, label, start_from, learn, after))
        return (len(runs) - 1,)

    def _train_through(root: Path, agent: str, seed: int) -> tuple[Path | None, tuple[int, ...]]:
        """The agent trained on the training datasets in turn, each phase continuing the last."""
        policy: Path | None = None
        last: tuple[int, ...] = ()
        for number, dataset in enumerate(settings.train, start=1):
            folder = root / f"{number}-{path_name(dataset)}"
            last = add(folder, settings.search(agent, dataset, seed, training=True), policy, True, last)
            policy = RunFolder(folder).checkpoint
        return policy, last

    for seed in range(settings.seeds):
        root = out_dir / f"seed{seed}"
        policy, last = _train_through(root / "train", settings.agent, seed)
        control = settings.control_agent
        control_policy, control_last = _train_through(root / "control", control, seed) if control else (None, ())
        agent = settings.agent
        for dataset in settings.eval:
            base = root / "eval" / path_name(dataset)
            variants = settings.variants()
            add(base / "frozen", settings.search(agent, dataset, seed, False), policy, False, last)
            for variant, overrides in META_CONTROLS.items():
                if variant in variants:
                    frozen = settings.search(agent, dataset, seed, False, **overrides)
                    add(base / variant, frozen, policy, False, last)
            add(base / "fine_tuned", settings.search(agent, dataset, seed, False), policy, True, last)
            add(base / "scratch", settings.search(agent, dataset, seed, False))
            add(base / "random", settings.search("random", dataset, seed, False))
            if control and control_policy is not None:
                search = settings.search(control, dataset, seed, False)
                add(base / "control_frozen", search, control_policy, False, control_last)
    return runs


def write_results(out_dir: Path, settings: TransferSettings, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json, the plots and report.md from the phases' folders; ``machine``: what running them cost."""
    variants = settings.variants()
    runs = {
        dataset: {
            variant: [
                RunData.load(out_dir / f"seed{seed}" / "eval" / path_name(dataset) / variant)
                for seed in range(settings.seeds)
            ]
            for variant in variants
        }
        for dataset in settings.eval
    }
    rows = []
    for dataset, by_variant in runs.items():
        for variant, seeds in by_variant.items():
            values = [_metrics(run) for run in seeds]
            row: dict[str, Any] = {"dataset": dataset, "variant": variant}
            for name in COMPARED_METRICS:
                row[name], row[f"{name}_ci95"] = mean_and_interval([v[name] for v in values])
            rows.append(row)
    training = [
        {"dataset": dataset, **_metrics(RunData.load(out_dir / f"seed{seed}" / "train" / f"{n}-{path_name(dataset)}"))}
        for seed in range(settings.seeds)
        for n, dataset in enumerate(settings.train, start=1)
    ]
    tests = action_tests(runs)
    rewards = {agent: reward_mode(settings.typed.agents[agent]) for agent in _agents(settings)}
    results: dict[str, Any] = {
        "settings": asdict(settings),
        "protocol": settings.protocol,
        "reward_modes": rewards,
        "eval": rows,
        "train": training,
        "action_tests": tests,
        "machine": machine,
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    labelled = {
        dataset: {VARIANT_LABELS[v]: seeds for v, seeds in by_variant.items()} for dataset, by_variant in runs.items()
    }
    figure = plots.plot_transfer(labelled, out_dir / "transfer.png")
    actions = plots.plot_action_proportions(labelled, out_dir / "transfer_actions.png")
    report = _report(settings, rows, training, tests, rewards, [figure, actions])
    if settings.typed.uses_tables:
        results["lookup"] = lookup_transfer(out_dir, settings, variants)
        section = "\n".join(lookup_markdown(results["lookup"], VARIANT_LABELS, settings.seeds))
        report = report.replace("\n## Do the action", f"\n{section}\n## Do the action", 1)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    (out_dir / "report.md").write_text(report)
    return results


def action_tests(runs: dict[str, dict[str, list[RunData]]]) -> list[dict[str, Any]]:
    """Frozen against each control on every held-out dataset, and frozen between held-out datasets; every seed's
    episodes pooled per group."""

    def episodes(seeds: list[RunData]) -> np.ndarray:
        return np.concatenate([episode_action_counts(run) for run in seeds])

    tests = []
    for dataset, by_variant in runs.items():
        for control in ("frozen_memory_reset", "frozen_reward_zeroed", "control_frozen", "random"):
            if control in by_variant:
                groups = {"frozen": episodes(by_variant["frozen"]), control: episodes(by_variant[control])}
                tests.append({"dataset": dataset, "compared": f"frozen vs {control}", **compare_actions(groups)})
    if len(runs) > 1:
        groups = {dataset: episodes(by_variant["frozen"]) for dataset, by_variant in runs.items()}
        tests.append(
            {"dataset": ", ".join(runs), "compared": "frozen across held-out datasets", **compare_actions(groups)}
        )
        (a, first), (b, second) = list(groups.items())[:2]
        tests.append({"dataset": f"{a}, {b}", "compared": "frozen across held-out datasets: NasGym's Wilcoxon "
                      "over action shares", **wilcoxon_action_shares(first, second)})  # fmt: skip
    return tests


def _agents(settings: TransferSettings) -> list[str]:
    return [settings.agent, "random", *([settings.control_agent] if settings.control_agent else [])]


def _metrics(run: RunData) -> dict[str, float]:
    return {**run.metrics(), "mean_reward": float(run.rewards.mean())}


def _report(
    settings: TransferSettings,
    rows: list[dict],
    training: list[dict],
    tests: list[dict],
    rewards: dict[str, str],
    figures: list[Path],
) -> str:
    header = [
        "held-out dataset",
        "policy",
        "best reward",
        "mean reward",
        "mean reward, last 10%",
        "unique networks",
        "invalid episodes",
    ]
    digits = {"unique_networks": 1, "invalid_episodes": 2}
    table = [
        [row["dataset"], VARIANT_LABELS[row["variant"]]]
        + [format_value(row[m], row[f"{m}_ci95"], digits.get(m, 3)) for m in COMPARED_METRICS]
        for row in rows
    ]
    train_table = [[r["dataset"], f"{r['best_reward']:.3f}", f"{r['mean_reward']:.3f}"] for r in training]
    test_table = [
        [t["dataset"], t["compared"], t["episodes"], f"{t['chi_square']:.1f}", f"{t['p_value']:.3f}"] for t in tests
    ]
    control = f" and a {settings.control_agent} agent trained the same way" if settings.control_agent else ""
    return "\n".join(
        [
            "# Policy transfer",
            "",
            f"Protocol `{settings.protocol}`. A {settings.agent} policy learned on {' -> '.join(settings.train)}"
            f"{control}, then ran on each held-out dataset: frozen, frozen without its in-context inputs (meta-A2C), "
            f"fine-tuned, and against a new {settings.agent} policy and random search with the same budget; "
            f"{settings.seeds} seed(s), mean +- 95% interval. Environment options: "
            f"`{json.dumps(settings.env_options, sort_keys=True)}`.",
            "",
            "Reward: " + "; ".join(f"{agent} {mode}" for agent, mode in rewards.items()) + ".",
            "",
            "## Held-out datasets",
            "",
            markdown_table(header, table),
            "",
            *(f"![{path.stem}]({path.name})" for path in figures),
            "",
            "## Do the action distributions differ?",
            "",
            "Permutation test over whole episodes (episodes exchanged between the groups, "
            "Pearson's chi-square of the action counts as the statistic; see "
            "`nasgym/runners/experiments/action_test.py`). A policy that adapts to a dataset in context should act "
            "differently from itself without that context; a small p-value says the distributions differ.",
            "",
            markdown_table(["dataset", "comparison", "episodes", "chi-square", "p-value"], test_table),
            "",
            "## Training phases",
            "",
            markdown_table(["dataset", "best reward", "mean reward"], train_table),
            "",
        ]
    )
