"""``nasgym bench agents``: every agent on every dataset under each seed, one budget, one reward cache."""

from __future__ import annotations

import argparse

import agents
import envs_data
from nasgym.core.config import LOOKUP_SOURCES
from nasgym.core.errors import ConfigError
from nasgym.core.lookup.table import complete_names
from nasgym.runners.cli.options import (
    Given,
    add_env_choice,
    add_env_options,
    add_protocol_option,
    add_ray_option,
    chosen_protocol,
    comma_list,
    env_options,
    given,
    layer,
    name_list,
    positive_int,
)
from nasgym.runners.envs import accepted
from nasgym.runners.experiments.bench import BenchSettings, run_bench


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmark agents against each other")
    kinds = parser.add_subparsers(title="benchmarks", required=True, metavar="KIND")
    bench = kinds.add_parser(
        "agents",
        help="compare agents on datasets over seeds",
        description="NasGym's Experiment 1: every agent on every dataset under each seed, meta-A2C's policy carried "
        "through the datasets in order and the others fresh on each; write OUT/results.json, OUT/results.csv, plots "
        "and OUT/report.md. Rerunning continues unfinished runs.",
    )
    defaults = envs_data.load("experiments")
    bench.add_argument(
        "--datasets",
        type=name_list,
        action=Given,
        default=defaults["bench"]["datasets"],
        help=f"comma-separated, in order (default {','.join(defaults['bench']['datasets'])}, or the protocol's)",
    )
    bench.add_argument(
        "--agents",
        type=name_list,
        action=Given,
        default=agents.agent_names(),
        help=f"comma-separated (default {','.join(agents.agent_names())}, or the protocol's)",
    )
    bench.add_argument(
        "--carried",
        type=comma_list,
        default=["meta_a2c"],
        help="agents whose one policy is carried through the datasets in order (default meta_a2c; '' for none)",
    )
    bench.add_argument(
        "--steps",
        type=positive_int,
        action=Given,
        default=defaults["bench"]["steps"],
        help="environment steps per run (default %(default)s, or the protocol's budget per agent and dataset)",
    )
    bench.add_argument(
        "--seeds",
        type=positive_int,
        action=Given,
        default=defaults["bench"]["seeds"],
        help="seeds per agent and dataset; agent seed K trains children with seed K unless --train-seed is given "
        "(default %(default)s)",
    )
    bench.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    bench.add_argument("--no-progress", action="store_true")
    add_protocol_option(bench)
    add_ray_option(bench, runs=True)
    add_env_choice(bench)
    add_env_options(bench, with_dataset=False)
    bench.set_defaults(handler=run, **defaults["env"])  # CPU-sized; see envs_data/experiments.json


def settings_from(args: argparse.Namespace) -> BenchSettings:
    """The benchmark the parsed flags describe: command defaults, then the protocol, then the flags given."""
    protocol = chosen_protocol(args)
    env = env_options(args, protocol_env=protocol.env)
    values = layer(args, ("datasets", "agents", "steps", "seeds"), protocol.bench, _mode_defaults(env))
    names = values["agents"]
    unknown = sorted(set(names) - set(agents.agent_names()))
    if unknown:
        raise ConfigError(f"unknown agent(s) {', '.join(unknown)}; known agents: {', '.join(agents.agent_names())}")
    typed = given(args)
    return BenchSettings(
        datasets=values["datasets"],
        agents=names,
        steps=values["steps"],
        seeds=values["seeds"],
        env_options={name: value for name, value in env.items() if name != "seed"},
        agent_options={name: protocol.hyperparameters(name) for name in names},
        protocol=protocol.name,
        agent_env={
            name: accepted(args.env, {k: v for k, v in protocol.agent_env(name).items() if k not in typed})
            for name in names
        },
        agent_steps={} if "steps" in typed else _budgets(protocol, names),
        carried=args.carried,
        train_seed=args.seed if "seed" in typed else None,
        env=args.env,
    )


def _mode_defaults(env: dict) -> dict:
    """With rewards from look-up tables: many seeds on every complete shipped table (unless flags say otherwise)."""
    if env.get("reward_source") not in LOOKUP_SOURCES:
        return {}
    table_defaults = envs_data.load("experiments")["bench_table"]
    return {"datasets": complete_names(), "steps": table_defaults["steps"], "seeds": table_defaults["seeds"]}


def _budgets(protocol, names: list[str]) -> dict[str, dict[str, int]]:
    return {name: protocol.agents.get(name, {}).get("steps", {}) for name in names}


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    results = run_bench(args.out, settings, progress=not args.no_progress, runs_at_once=args.ray_runs)
    for row in results["aggregate"]:
        print(
            f"{row['dataset']:>16} {row['agent']:>9}: best {row['best_reward']:.4f}, "
            f"last-10% mean {row['mean_reward_last10']:.4f}, {row['unique_networks']:.0f} networks, "
            f"invalid episodes {row['invalid_episodes']:.2f}"
        )
    print(f"protocol {settings.protocol}; report: {args.out}/report.md")
    return 0
