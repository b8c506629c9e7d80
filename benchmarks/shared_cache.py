"""Eight searches in eight processes sharing one reward cache: how many trainings for how many distinct networks.

Each process runs a random search (uniform over valid actions, its own seed) on NAS-v0 with a per-step reward, all
of them on the same new cache file, started together. A network that another process is training is waited for
(the cache's claims), so trainings should equal the distinct networks rewarded. Prints and writes JSON:

    python benchmarks/shared_cache.py --out benchmarks/results/shared_cache_cpu.json

``--figure PNG`` draws trainings against distinct networks per search, beside an earlier run's JSON given with
``--compare`` (README's figure: ``--replot`` redraws it from the recorded JSONs without running anything).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.runners.experiments.records import write_json

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUDGET = {"dataset": "digits", "epochs": 1, "image_size": 16, "batch_size": 64, "max_samples": 300, "device": "cpu"}


def search(cache_path: str, seed: int, steps: int) -> dict:
    """One random search; what it trained and what it was rewarded for."""
    import torch

    torch.set_num_threads(1)  # eight processes share the machine's cores
    env = gym.make("NAS-v0", cache_path=cache_path, **BUDGET)
    rng = np.random.default_rng(seed)
    env.reset()
    rewarded = []
    for _ in range(steps):
        action = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
        _, _, terminated, _, info = env.step(action)
        if info["rewarded"]:
            rewarded.append(str(Architecture.parse(info["architecture"]).network))
        if terminated:
            env.reset()
    stats = env.unwrapped.evaluator.stats
    env.close()
    return {"trained": stats.trained, "answered_without_training": stats.cache_hits, "rewarded": rewarded}


def figure(runs: dict[str, dict], path: Path) -> None:
    """Bars per run: distinct networks rewarded, and trainings, split by the search that trained them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 3.2))
    for row, run in enumerate(runs.values()):
        axis.barh(2 * row + 0.4, run["distinct_networks"], color="white", edgecolor="black", hatch="//", height=0.7)
        axis.text(run["distinct_networks"] + 1, 2 * row + 0.4, f"{run['distinct_networks']} distinct", va="center")
        left = 0
        for search, trained in enumerate(run["trainings_per_search"]):
            axis.barh(2 * row - 0.4, trained, left=left, height=0.7, color=plt.cm.tab10(search % 10))
            left += trained
        axis.text(left + 1, 2 * row - 0.4, f"{run['trainings']} trainings", va="center")
    axis.set_yticks([2 * row for row in range(len(runs))], list(runs))
    axis.set_xlim(0, 1.3 * max(run["trainings"] for run in runs.values()))
    axis.set_xlabel("networks (training bars coloured by the process that trained them)")
    first = next(iter(runs.values()))
    axis.set_title(f"{first['processes']} searches in {first['processes']} processes on one reward cache", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"figure written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30, help="steps per search (default 30)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    parser.add_argument("--figure", type=Path, default=None, help="also draw this PNG")
    parser.add_argument("--compare", type=Path, default=None, help="an earlier run's JSON to draw beside this one")
    parser.add_argument(
        "--replot", action="store_true", help="redraw README's figure from the recorded JSONs and run nothing"
    )
    args = parser.parse_args()
    if args.replot:
        runs = {
            "before claims": json.loads((RESULTS_DIR / "shared_cache_cpu_before_claims.json").read_text()),
            "with claims": json.loads((RESULTS_DIR / "shared_cache_cpu.json").read_text()),
        }
        figure(runs, RESULTS_DIR / "shared_cache_cpu.png")
        return
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "rewards.sqlite")
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            searches = pool.starmap(search, [(path, seed, args.steps) for seed in range(args.processes)])
        seconds = time.perf_counter() - start
        rows = len(RewardCache(path))
    rewarded = [network for result in searches for network in result["rewarded"]]
    result = {
        "processes": args.processes,
        "steps_per_search": args.steps,
        "budget": BUDGET,
        "cpus": os.cpu_count(),
        "rewarded_steps": len(rewarded),
        "distinct_networks": len(set(rewarded)),
        "trainings": sum(result["trained"] for result in searches),
        "cache_rows": rows,
        "trainings_per_search": [result["trained"] for result in searches],
        "wall_seconds": seconds,
    }
    print(json.dumps(result, indent=2))
    print(
        f"{result['processes']} searches: {result['rewarded_steps']} rewarded steps, "
        f"{result['distinct_networks']} distinct networks, {result['trainings']} trainings"
    )
    out = args.out or RESULTS_DIR / f"shared_cache_{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, result)
    if args.figure:
        runs = {"this run": result}
        if args.compare:
            runs = {str(args.compare.stem): json.loads(args.compare.read_text()), **runs}
        figure(runs, args.figure)


if __name__ == "__main__":
    main()
