"""``nasgym search``: run an agent on an environment with a progress bar; write episodes, progress and summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import agents
from nasgym.core import spaces
from nasgym.core.errors import ConfigError
from nasgym.runners.cli.options import (
    Given,
    add_env_choice,
    add_env_options,
    add_protocol_option,
    add_ray_option,
    agent_hyperparameters,
    chosen_protocol,
    env_options,
    given,
    hyperparameter,
    non_negative_int,
    non_negative_number,
    positive_int,
)
from nasgym.runners.curriculum import Curriculum
from nasgym.runners.retrain import retrain_top
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search

EVALUATED = {
    "trained": "trained ({:.1f} s)",
    "weight_sharing": "scored with the shared weights ({:.1f} s)",
    "table": "looked up in the table ({:.1f} s of recorded training)",
    "surrogate": "predicted by the surrogate ({:.1f} s)",
}
"""How the summary line names the networks a search paid for: only a trained reward trains them."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search architectures with an agent",
        description="Run an architecture search; every step goes to OUT/episodes.csv.",
    )
    parser.add_argument("--agent", choices=agents.agent_names(), default="random", help="(default random)")
    parser.add_argument("--steps", type=positive_int, default=100, help="environment steps in total (default 100)")
    parser.add_argument("--out", default=None, help="output folder (default runs/AGENT-DATASET-TIME)")
    parser.add_argument("--resume", action="store_true", help="continue the search in --out from its checkpoint")
    parser.add_argument("--seed", type=non_negative_int, action=Given, default=0, help="the agent's seed (default 0)")
    parser.add_argument(
        "--num-envs",
        type=positive_int,
        default=1,
        metavar="N",
        help="episodes run at once, in N copies of the environment whose networks are evaluated as one batch per "
        "step (with --ray, trained side by side on the cluster) (default 1)",
    )
    parser.add_argument(
        "--set",
        dest="hyperparameters",
        type=hyperparameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="agent hyperparameter, repeatable (e.g. --set batch_size=4)",
    )
    parser.add_argument(
        "--checkpoint-seconds",
        type=non_negative_number,
        default=10.0,
        help="save the agent at the first episode end this many seconds after the last save (default 10)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--start-from",
        default=None,
        metavar="AGENT.pt",
        help="begin with a saved agent (e.g. trained elsewhere) instead of a new one",
    )
    parser.add_argument("--frozen", action="store_true", help="with --start-from: run its policy without learning")
    parser.add_argument(
        "--curriculum",
        default=None,
        metavar="START:STEP:EVERY",
        help="with --env NAS-ZophLe-v0: networks of START layers for EVERY episodes, then STEP more every EVERY "
        "episodes, up to --layers (Zoph & Le: 2 more every 1600 networks); default: always --layers",
    )
    parser.add_argument(
        "--retrain-top",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="after the search, train its K best distinct networks from scratch with reward_source=trained and "
        "the search's settings; OUT/retrained.json and .csv (the ENAS workflow after --reward-source "
        "weight_sharing; default 0: none)",
    )
    add_protocol_option(parser)
    add_ray_option(parser)
    add_env_choice(parser)
    add_env_options(parser, default_help={"reward": "the protocol's: final for reinforce, per_step otherwise"})
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.frozen and not args.start_from:
        raise ConfigError("--frozen runs a trained policy: give it with --start-from AGENT.pt")
    if args.retrain_top and "weight_sharing" not in spaces.of_env(args.env).reward_sources:
        raise ConfigError(
            f"--retrain-top retrains a weight-sharing search's networks, which {args.env} has not; it "
            "trains every network from scratch already"
        )
    protocol = chosen_protocol(args)
    out = Path(args.out or f"runs/{args.agent}-{args.dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
    curriculum = Curriculum.parse(args.curriculum) if args.curriculum is not None else None
    hyperparameters = agent_hyperparameters(args.agent, args.hyperparameters)
    if "seed" in given(args) and hyperparameters.get("seed", args.seed) != args.seed:
        raise ConfigError(f"--seed {args.seed} and --set seed={hyperparameters['seed']} disagree; give the seed once")
    settings = SearchSettings(
        agent=args.agent,
        dataset=args.dataset,
        steps=args.steps,
        env_options=env_options(args, protocol_env=protocol.agent_env(args.agent)),
        agent_options={**protocol.hyperparameters(args.agent), "seed": args.seed, **hyperparameters},
        protocol=protocol.name,
        num_envs=args.num_envs,
        env=args.env,
        curriculum=[curriculum.start, curriculum.step, curriculum.every] if curriculum else None,
    )
    summary = run_search(
        out,
        settings,
        resume=args.resume,
        progress=not args.no_progress,
        checkpoint_seconds=args.checkpoint_seconds,
        start_from=args.start_from,
        learn=not args.frozen,
    )
    print(
        f"{summary['steps']} steps, {summary['episodes']} episodes, {summary['unique_networks']} networks, "
        f"{summary['trained']} {EVALUATED[summary['reward_source']].format(summary['train_seconds'])}; output in {out}"
    )
    if summary["best"]:
        best = summary["best"][0]
        print(
            f"best architecture: {best['architecture']}  reward {best['reward']:.4f}  "
            f"({best['parameters']:,} parameters, first at step {best['first_step']})"
        )
    if args.retrain_top:
        records = retrain_top(RunFolder(out), settings, args.retrain_top)
        print(f"retrained the {len(records)} best networks from scratch ({out / 'retrained.csv'}):")
        for record in records:
            print(
                f"  {record['rank']:>2}. {record['architecture']:<30} search reward {record['search_reward']:.4f} "
                f"({record['search_reward_source']})  trained {record['trained_reward']:.4f}"
            )
    return 0
