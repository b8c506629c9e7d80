"""``nasgym bench agents``: every agent on every dataset under each seed, one budget, one reward cache."""

from __future__ import annotations

import argparse

import agents
import envs_data
from nasgym.core.errors import ConfigError
from nasgym.runners.cli.options import add_env_options, comma_list, env_options, positive_int
from nasgym.runners.experiments.bench import BenchSettings, run_bench


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmark agents against each other")
    kinds = parser.add_subparsers(title="benchmarks", required=True, metavar="KIND")
    bench = kinds.add_parser(
        "agents",
        help="compare agents on datasets over seeds",
        description="Run every agent on every dataset under each seed with the same step budget; write "
        "OUT/results.json, OUT/results.csv, plots and OUT/report.md. Rerunning continues unfinished runs.",
    )
    defaults = envs_data.load("experiments")
    bench.add_argument(
        "--datasets",
        type=comma_list,
        default=defaults["bench"]["datasets"],
        help=f"comma-separated (default {','.join(defaults['bench']['datasets'])})",
    )
    bench.add_argument(
        "--agents",
        type=comma_list,
        default=agents.agent_names(),
        help=f"comma-separated (default {','.join(agents.agent_names())})",
    )
    bench.add_argument(
        "--steps",
        type=positive_int,
        default=defaults["bench"]["steps"],
        help="environment steps per run (default %(default)s)",
    )
    bench.add_argument(
        "--seeds",
        type=positive_int,
        default=defaults["bench"]["seeds"],
        help="seeds per agent and dataset (default %(default)s)",
    )
    bench.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    bench.add_argument("--no-progress", action="store_true")
    add_env_options(bench, with_dataset=False)
    bench.set_defaults(handler=run, **defaults["env"])  # CPU-sized; see envs_data/experiments.json


def run(args: argparse.Namespace) -> int:
    unknown = sorted(set(args.agents) - set(agents.agent_names()))
    if unknown:
        raise ConfigError(f"unknown agent(s) {', '.join(unknown)}; known agents: {', '.join(agents.agent_names())}")
    settings = BenchSettings(args.datasets, args.agents, args.steps, args.seeds, env_options(args))
    results = run_bench(args.out, settings, progress=not args.no_progress)
    for row in results["aggregate"]:
        print(
            f"{row['dataset']:>16} {row['agent']:>9}: best {row['best_reward']:.4f}, "
            f"last-10% mean {row['mean_reward_last10']:.4f}, {row['unique_networks']:.0f} networks"
        )
    print(f"report: {args.out}/report.md")
    return 0
