"""Random search with one environment against four copies (``--num-envs 4``), on a local evaluator training two
networks at once (``TrainingEvaluator(concurrency=2)``), in one run.

With one environment each step hands the evaluator one network, so its second thread idles; with four copies each
step hands it up to four, which it trains two at a time. A third run, four copies on an evaluator of concurrency 1,
separates what batching gives from what concurrency gives. Each run starts from an empty reward cache. The searches
visit different networks (the copies draw actions in another order), so the figure to compare is seconds per
network trained. Prints and writes JSON:

    python benchmarks/num_envs.py --out benchmarks/results/num_envs_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch

from nasgym.core.config import make_configs
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.runners.search import SearchSettings, run_search

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUDGET = {"epochs": 1, "image_size": 28, "batch_size": 64, "max_samples": 600, "device": "cpu"}
RUNS = (("one env, concurrency 2", 1, 2), ("4 copies, concurrency 2", 4, 2), ("4 copies, concurrency 1", 4, 1))


def timed_search(folder: Path, num_envs: int, concurrency: int, steps: int) -> dict:
    """One random search on digits; its wall time, trainings and seconds per training."""
    config, train_config = make_configs({"dataset": "digits", "cache_path": str(folder / "rewards.sqlite"), **BUDGET})
    evaluator = TrainingEvaluator.from_config(config, train_config, concurrency=concurrency).prepare()
    options = {"evaluator": evaluator, "dataset": "digits", **BUDGET}
    if num_envs == 1:
        env = gym.make("NAS-v0", **options)
    else:
        env = gym.make_vec("NAS-v0", num_envs=num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, **options)
    settings = SearchSettings("random", "digits", steps, env_options=BUDGET, num_envs=num_envs)
    start = time.perf_counter()
    summary = run_search(folder / "run", settings, progress=False, env=env)
    seconds = time.perf_counter() - start
    trained = evaluator.stats.trained
    return {
        "num_envs": num_envs,
        "concurrency": concurrency,
        "steps": summary["steps"],
        "trained": trained,
        "wall_seconds": seconds,
        "seconds_per_training": seconds / max(trained, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="steps per search (default 40)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    results = {}
    for name, num_envs, concurrency in RUNS:
        with tempfile.TemporaryDirectory() as folder:
            results[name] = timed_search(Path(folder), num_envs, concurrency, args.steps)
        print(name, json.dumps(results[name]))
    one, four = results[RUNS[0][0]], results[RUNS[1][0]]
    result = {
        "budget": {"dataset": "digits", **BUDGET},
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "runs": results,
        "ratio_seconds_per_training_one_over_four_copies": one["seconds_per_training"] / four["seconds_per_training"],
    }
    print(json.dumps(result, indent=2))
    print(f"seconds per training, one env / 4 copies (both concurrency 2): {result[list(result)[-1]]:.2f}")
    out = args.out or RESULTS_DIR / f"num_envs_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
