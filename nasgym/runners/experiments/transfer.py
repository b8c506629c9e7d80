"""Transfer a policy to datasets it never saw (NasGym's Experiment 2).

One policy learns on the training datasets in turn, each phase continuing from the last. It is then run on
every held-out dataset frozen and, separately, fine-tuned, and compared with random search and with a policy
trained from scratch on the same budget. Every phase is an ordinary, resumable search folder:
``OUT/seedK/train/N-DATASET/`` and ``OUT/seedK/eval/DATASET/{frozen,fine_tuned,scratch,random}/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasgym.runners.experiments import check_datasets, plots
from nasgym.runners.experiments.metrics import RunData, mean_and_interval
from nasgym.runners.experiments.report import format_value, markdown_table
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search

VARIANTS = ("frozen", "fine_tuned", "scratch", "random")
VARIANT_LABELS = {
    "frozen": "trained policy, frozen",
    "fine_tuned": "trained policy, fine-tuned",
    "scratch": "new policy from scratch",
    "random": "random search",
}
COMPARED_METRICS = ("best_reward", "mean_reward", "mean_reward_last10", "unique_networks")


@dataclass
class TransferSettings:
    agent: str
    train: list[str]
    eval: list[str]
    steps_train: int
    steps_eval: int
    seeds: int = 1
    env_options: dict[str, Any] = field(default_factory=dict)
    agent_options: dict[str, Any] = field(default_factory=dict)


def _phase(folder: Path, settings: SearchSettings, start_from: Path | None, learn: bool, progress: bool) -> None:
    if RunFolder(folder).completed_steps() >= settings.steps:
        return
    if progress:
        mode = "learning" if learn else "frozen"
        print(f"{settings.agent} on {settings.dataset} ({mode}, {settings.steps} steps) -> {folder}", flush=True)
    run_search(
        folder, settings, resume=RunFolder(folder).holds_search(), progress=progress, start_from=start_from, learn=learn
    )


def run_transfer(out_dir: str | Path, settings: TransferSettings, progress: bool = True) -> dict[str, Any]:
    out_dir = Path(out_dir)
    check_datasets([*settings.train, *settings.eval], settings.env_options)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "transfer.json").write_text(json.dumps(asdict(settings), indent=2))
    for seed in range(settings.seeds):
        root = out_dir / f"seed{seed}"

        def search(agent: str, dataset: str, steps: int, seed: int = seed) -> SearchSettings:
            options = {**settings.agent_options, "seed": seed} if agent == settings.agent else {"seed": seed}
            return SearchSettings(agent, dataset, steps, settings.env_options, options)

        policy: Path | None = None
        for number, dataset in enumerate(settings.train, start=1):
            folder = root / "train" / f"{number}-{dataset}"
            _phase(folder, search(settings.agent, dataset, settings.steps_train), policy, True, progress)
            policy = RunFolder(folder).checkpoint
        for dataset in settings.eval:
            base = root / "eval" / dataset
            agent_steps = search(settings.agent, dataset, settings.steps_eval)
            _phase(base / "frozen", agent_steps, policy, False, progress)
            _phase(base / "fine_tuned", agent_steps, policy, True, progress)
            _phase(base / "scratch", agent_steps, None, True, progress)
            _phase(base / "random", search("random", dataset, settings.steps_eval), None, True, progress)
    return write_results(out_dir, settings)


def write_results(out_dir: Path, settings: TransferSettings) -> dict[str, Any]:
    curves = {
        dataset: {
            VARIANT_LABELS[variant]: [
                RunData.load(out_dir / f"seed{seed}" / "eval" / dataset / variant) for seed in range(settings.seeds)
            ]
            for variant in VARIANTS
        }
        for dataset in settings.eval
    }
    rows = []
    for dataset, variants in curves.items():
        for variant, label in VARIANT_LABELS.items():
            values = [_metrics(run) for run in variants[label]]
            row: dict[str, Any] = {"dataset": dataset, "variant": variant}
            for name in COMPARED_METRICS:
                row[name], row[f"{name}_ci95"] = mean_and_interval([v[name] for v in values])
            rows.append(row)
    training = [
        {"dataset": dataset, **_metrics(RunData.load(out_dir / f"seed{seed}" / "train" / f"{n}-{dataset}"))}
        for seed in range(settings.seeds)
        for n, dataset in enumerate(settings.train, start=1)
    ]
    results = {"settings": asdict(settings), "eval": rows, "train": training}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    figure = plots.plot_transfer(curves, out_dir / "transfer.png")
    (out_dir / "report.md").write_text(_report(settings, rows, training, figure))
    return results


def _metrics(run: RunData) -> dict[str, float]:
    return {**run.metrics(), "mean_reward": float(run.rewards.mean())}


def _report(settings: TransferSettings, rows: list[dict], training: list[dict], figure: Path) -> str:
    header = ["held-out dataset", "policy", "best reward", "mean reward", "mean reward, last 10%", "unique networks"]
    table = [
        [row["dataset"], VARIANT_LABELS[row["variant"]]]
        + [format_value(row[m], row[f"{m}_ci95"], 1 if m == "unique_networks" else 3) for m in COMPARED_METRICS]
        for row in rows
    ]
    train_table = [[r["dataset"], f"{r['best_reward']:.3f}", f"{r['mean_reward']:.3f}"] for r in training]
    return "\n".join(
        [
            "# Policy transfer",
            "",
            f"A {settings.agent} policy learned on {' -> '.join(settings.train)} ({settings.steps_train} steps each), "
            f"then ran {settings.steps_eval} steps on each held-out dataset: frozen, fine-tuned, and against a new "
            f"{settings.agent} policy and random search with the same budget; {settings.seeds} seed(s), mean +- 95% "
            f"interval. Environment options: `{json.dumps(settings.env_options, sort_keys=True)}`.",
            "",
            "## Held-out datasets",
            "",
            markdown_table(header, table),
            "",
            f"![transfer]({figure.name})",
            "",
            "## Training phases",
            "",
            markdown_table(["dataset", "best reward", "mean reward"], train_table),
            "",
        ]
    )
