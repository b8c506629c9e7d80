"""Does REINFORCE beat random search in Zoph & Le's space (``NAS-ZophLe-v0``) on a small CPU budget?

Each agent searches omniglot_small1 (28 px, a few epochs per child) under several seeds with the same number of
sampled networks; agent seed K trains its children with seed K, so both agents of a seed share one reward
function (and the reward cache). Random search is the reference, measured in the same run: the script prints, per
agent, the best reward found and the mean reward of the last quarter of the episodes (mean and standard deviation
over seeds), and REINFORCE's ratio to random search on both. JSON and a plot of the best reward so far go to
``--out``. Finished runs are kept in ``--work`` and skipped when the script runs again.

    python benchmarks/zophle_search.py --data-dir DIR --out benchmarks/results/zophle_search_cpu.json

(DIR holds omniglot_small1 prepared: ``nasgym data prepare omniglot_small1 --manual-dir ../shared/data/omniglot``.)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from nasgym.core.zophle.space import schedule, space_size
from nasgym.runners.envs import ZOPHLE
from nasgym.runners.experiments.records import write_json
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search

AGENTS = ("reinforce", "random")


def episode_rewards(folder: Path) -> list[float]:
    return [row.reward for row in RunFolder(folder).episodes() if row.terminated]


def quarter_mean(rewards: list[float]) -> float:
    tail = rewards[-max(1, len(rewards) // 4) :]
    return statistics.fmean(tail)


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="where omniglot_small1 is prepared")
    parser.add_argument("--dataset", default="omniglot_small1")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=32, help="networks sampled per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--m", type=int, default=4, help="REINFORCE's architectures per update")
    parser.add_argument("--work", default="/tmp/nasgym_zophle_bench", help="run folders and the reward cache")
    parser.add_argument("--out", default="benchmarks/results/zophle_search_cpu.json")
    args = parser.parse_args()

    work = Path(args.work)
    tokens = len(schedule(args.layers))
    env_options = {
        "layers": args.layers,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "reward_epochs": args.epochs,  # Zoph & Le's max over the last epochs (here all of them)
        "device": "cpu",
        "cache_path": str(work / "rewards.sqlite"),
        "data_dir": args.data_dir,
    }
    runs: dict[str, list[dict]] = {agent: [] for agent in AGENTS}
    started = time.perf_counter()
    for seed in range(args.seeds):
        for agent in AGENTS:
            folder = work / f"{agent}-seed{seed}"
            options = {"architectures_per_update": args.m} if agent == "reinforce" else {}
            settings = SearchSettings(
                agent=agent,
                dataset=args.dataset,
                steps=args.episodes * tokens,
                env_options={**env_options, "seed": seed},
                agent_options={**options, "seed": seed},
                env=ZOPHLE,
            )
            done = RunFolder(folder).summary_file.exists() and len(RunFolder(folder).episodes()) == settings.steps
            clock = time.perf_counter()
            result = (
                run_search(folder, settings, resume=folder.exists() and not done, progress=False)
                if not done
                else (json.loads(RunFolder(folder).summary_file.read_text()))
            )
            rewards = episode_rewards(folder)
            runs[agent].append(
                {
                    "seed": seed,
                    "episodes": len(rewards),
                    "best": max(rewards),
                    "mean": statistics.fmean(rewards),
                    "last_quarter_mean": quarter_mean(rewards),
                    "unique_networks": result["unique_networks"],
                    "best_architecture": result["best"][0]["architecture"],
                    "rewards": rewards,
                    "seconds": time.perf_counter() - clock,
                }
            )
            print(
                f"{agent:>9} seed {seed}: best {max(rewards):.4f}, last quarter {quarter_mean(rewards):.4f}, "
                f"{result['unique_networks']} networks ({time.perf_counter() - clock:.0f} s)",
                flush=True,
            )
    aggregate = {
        agent: {key: summary([run[key] for run in runs[agent]]) for key in ("best", "mean", "last_quarter_mean")}
        for agent in AGENTS
    }
    ratios = {
        key: aggregate["reinforce"][key]["mean"] / aggregate["random"][key]["mean"]
        for key in ("best", "last_quarter_mean")
    }
    for agent in AGENTS:
        figures = aggregate[agent]
        print(
            f"{agent:>9}: best {figures['best']['mean']:.4f} +- {figures['best']['std']:.4f}, last quarter "
            f"{figures['last_quarter_mean']['mean']:.4f} +- {figures['last_quarter_mean']['std']:.4f}"
        )
    print(f"reinforce / random: best {ratios['best']:.3f}, last quarter {ratios['last_quarter_mean']:.3f}")
    result = {
        "benchmark": "REINFORCE vs random search on NAS-ZophLe-v0",
        "machine": {"cpu": platform.processor() or platform.machine(), "device": "cpu"},
        "settings": {**vars(args), "tokens_per_episode": tokens, "space_size": space_size(args.layers)},
        "env_options": env_options,
        "aggregate": aggregate,
        "ratio_reinforce_to_random": ratios,
        "runs": runs,
        "seconds": time.perf_counter() - started,
    }
    out = Path(args.out)
    write_json(out, result)
    plot(runs, out.with_suffix(".png"), args)
    print(f"wrote {out} and {out.with_suffix('.png')}")


def plot(runs: dict[str, list[dict]], path: Path, args: argparse.Namespace) -> None:
    """Best reward so far against networks sampled, one line per run."""
    figure, axis = plt.subplots(figsize=(7, 4))
    for agent, color in zip(AGENTS, ("tab:red", "tab:blue"), strict=True):
        for run in runs[agent]:
            best, curve = 0.0, []
            for reward in run["rewards"]:
                best = max(best, reward)
                curve.append(best)
            axis.plot(
                range(1, len(curve) + 1), curve, color=color, alpha=0.7, label=agent if run["seed"] == 0 else None
            )
    axis.set_xlabel("networks sampled")
    axis.set_ylabel("best reward so far")
    axis.set_title(f"NAS-ZophLe-v0, {args.layers} layers, {args.dataset} {args.image_size} px, {args.epochs} epochs")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
