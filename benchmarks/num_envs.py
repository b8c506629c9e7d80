"""Random search with one environment against four copies (``--num-envs 4``), on a local evaluator training two
networks at once (``TrainingEvaluator(concurrency=2)``), in one run.

With one environment each step hands the evaluator one network, so its second thread idles; with four copies each
step hands it up to four, which it trains two at a time. A third run, four copies on an evaluator of concurrency 1,
trains exactly the networks of the second, one at a time, as the one-env search trains its own: their ratio is what
``--num-envs 4`` gains on this evaluator, on the same work. The one-env search visits other networks (the copies
draw actions in another order), so its seconds per network trained are only a check that it trains one network at
a time like the third run. Each run starts from an empty reward cache. The three runs take turns, ``--rounds``
times, and each figure is the median over rounds, since other jobs share the machine.
Run it with passive OpenMP threads, as the ``nasgym`` command trains (it imports torch before nasgym could set
that); prints and writes JSON:

    OMP_WAIT_POLICY=PASSIVE python benchmarks/num_envs.py --out benchmarks/results/num_envs_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import torch

from nasgym.core.config import make_configs
from nasgym.core.evaluator import TrainingEvaluator
from nasgym.runners.experiments.records import write_json
from nasgym.runners.run_folder import RunFolder
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
    parameters = [row.parameters for row in RunFolder(folder / "run").episodes() if row.trained]
    return {
        "num_envs": num_envs,
        "concurrency": concurrency,
        "steps": summary["steps"],
        "trained": trained,
        "wall_seconds": seconds,
        "seconds_per_training": seconds / max(trained, 1),
        "training_seconds": evaluator.stats.train_seconds,  # summed over trainings, overlapping ones included
        "mean_parameters_trained": sum(parameters) / max(len(parameters), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=32, help="steps per search (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="times each run is repeated, taking turns (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in RUNS}
    for _ in range(args.rounds):
        for name, num_envs, concurrency in RUNS:
            with tempfile.TemporaryDirectory() as folder:
                runs[name].append(timed_search(Path(folder), num_envs, concurrency, args.steps))
            print(name, json.dumps(runs[name][-1]), flush=True)
    median = {
        name: {key: statistics.median(run[key] for run in results) for key in ("wall_seconds", "seconds_per_training")}
        | {key: results[0][key] for key in ("trained", "mean_parameters_trained")}
        for name, results in runs.items()
    }
    one, four, sequential = (median[name] for name, _, _ in RUNS)
    result = {
        "budget": {"dataset": "digits", **BUDGET},
        "steps": args.steps,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_at_end": os.getloadavg(),
        "median": median,
        "runs": runs,
        "ratio_per_training_one_env_over_4_copies": one["seconds_per_training"] / four["seconds_per_training"],
        "ratio_4_copies_concurrency_1_over_2": sequential["wall_seconds"] / four["wall_seconds"],
    }
    print(json.dumps(result, indent=2))
    per_training, concurrency = (result[key] for key in list(result)[-2:])
    print(
        f"seconds per training, one env / 4 copies (concurrency 2): {per_training:.2f}; "
        f"4 copies, concurrency 1 / 2 (the same networks): {concurrency:.2f}"
    )
    out = args.out or RESULTS_DIR / f"num_envs_{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, result)


if __name__ == "__main__":
    main()
