"""Environment steps per second with ``reward_source="table"`` against the live reward, in one run.

Both walk the same stream of random valid actions through ``gym.make("NAS-v0", ...)`` (Gymnasium's wrappers
included) at the shipped table's settings: the table answers from memory, the live reward trains each network (no
reward cache). A network the table does not hold ends the table's episode, as an agent's ``TableError`` would. Goal:
>= 10,000 table steps per second on a 2-core CPU. The live run needs the dataset prepared::

    nasgym data prepare omniglot_small1 --manual-dir ../shared/data/omniglot --no-download
    python benchmarks/table_steps.py --out benchmarks/results/table_steps_cpu.json
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

import nasgym
from nasgym.core.lookup.table import shipped
from nasgym.runners.experiments.records import cpu_name, write_json


def steps_per_second(env: gym.Env, steps: int, seed: int) -> tuple[float, int]:
    """Random valid actions for ``steps`` steps; (steps per second, episodes ended by a network outside the table)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    outside = 0
    start = time.perf_counter()
    for _ in range(steps):
        action = int(rng.choice(np.flatnonzero(env.unwrapped.action_masks())))
        try:
            terminated = env.step(action)[2]
        except nasgym.NasGymError:
            outside, terminated = outside + 1, True
        if terminated:
            env.reset()
    return steps / (time.perf_counter() - start), outside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="omniglot_small1")
    parser.add_argument("--table-steps", type=int, default=50_000)
    parser.add_argument("--live-steps", type=int, default=8, help="trained steps (seconds each on a CPU)")
    parser.add_argument("--data-dir", default=None, help="where the dataset is prepared (default nasgym's)")
    parser.add_argument("--out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()
    table = shipped(args.dataset)
    table_env = gym.make("NAS-v0", dataset=args.dataset, reward_source="table")
    table_rate, outside = steps_per_second(table_env, args.table_steps, seed=0)
    print(f"table: {table_rate:,.0f} steps/s over {args.table_steps:,} steps ({outside} outside the table)", flush=True)
    settings = {"image_size": table.image_size, "max_layers": table.header["plan"]["depth"], "device": "cpu"}
    live_env = gym.make("NAS-v0", dataset=args.dataset, cache=False, data_dir=args.data_dir, **settings)
    live_rate, _ = steps_per_second(live_env, args.live_steps, seed=0)
    print(f"live:  {live_rate:.3f} steps/s over {args.live_steps} steps ({1 / live_rate:.1f} s per step)")
    print(f"table / live: {table_rate / live_rate:,.0f}x (goal: >= 10,000 table steps per second)")
    if args.out:
        write_json(
            args.out,
            {
                "dataset": args.dataset,
                "settings": {**settings, "epochs": table.epochs},
                "table_networks": len(table.networks),
                "table_steps": args.table_steps,
                "table_steps_per_second": table_rate,
                "table_episodes_outside": outside,
                "live_steps": args.live_steps,
                "live_steps_per_second": live_rate,
                "ratio": table_rate / live_rate,
                "goal_table_steps_per_second": 10_000,
                "cpu": cpu_name(),
                "cpus": os.cpu_count(),
                "load_average_at_end": os.getloadavg(),
            },
        )


if __name__ == "__main__":
    main()
