"""``nasgym transfer``: learn on some datasets, then run the policy on held-out ones (frozen, fine-tuned)."""

from __future__ import annotations

import argparse

import agents
import envs_data
from nasgym.core.config import LOOKUP_SOURCES
from nasgym.core.errors import ConfigError
from nasgym.core.lookup.table import complete_names, shipped, shipped_names
from nasgym.runners.cli.options import (
    Given,
    add_env_choice,
    add_env_options,
    add_protocol_option,
    add_ray_option,
    chosen_protocol,
    env_options,
    given,
    layer,
    name_list,
    positive_int,
)
from nasgym.runners.envs import accepted
from nasgym.runners.experiments.transfer import TransferSettings, run_transfer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = envs_data.load("experiments")
    parser = subparsers.add_parser(
        "transfer",
        help="train a policy across datasets and test it on held-out ones",
        description="Train one policy on --train datasets in turn, then run it on each --eval dataset frozen "
        "and fine-tuned, against random search and a policy trained from scratch on the same budget, with controls "
        "(meta-A2C frozen without memory across episodes or without the reward input, a transferred --control-agent) "
        "and a permutation test of the action distributions. Writes OUT/results.json, OUT/transfer.png and "
        "OUT/report.md; rerunning continues unfinished phases.",
    )
    transfer = defaults["transfer"]
    parser.add_argument(
        "--agent",
        action=Given,
        choices=agents.agent_names(),
        default="meta_a2c" if "meta_a2c" in agents.AGENTS else agents.agent_names()[0],
        help="(default %(default)s)",
    )
    parser.add_argument(
        "--train",
        type=name_list,
        action=Given,
        default=transfer["train"],
        help=f"training datasets in order (default {','.join(transfer['train'])})",
    )
    parser.add_argument(
        "--eval",
        type=name_list,
        action=Given,
        default=transfer["eval"],
        help=f"held-out datasets (default {','.join(transfer['eval'])})",
    )
    parser.add_argument(
        "--steps-train",
        type=positive_int,
        action=Given,
        default=transfer["steps_train"],
        help="steps on each training dataset (default %(default)s)",
    )
    parser.add_argument(
        "--steps-eval",
        type=positive_int,
        action=Given,
        default=transfer["steps_eval"],
        help="steps on each held-out dataset, per variant (default %(default)s)",
    )
    parser.add_argument(
        "--seeds", type=positive_int, action=Given, default=transfer["seeds"], help="(default %(default)s)"
    )
    parser.add_argument(
        "--control-agent",
        default="dqn",
        help="a non-meta agent trained through the same datasets and run frozen on the held-out ones; 'none' for no "
        "such control (default %(default)s)",
    )
    parser.add_argument("--out", default="runs/transfer", help="output folder (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true")
    add_protocol_option(parser)
    add_ray_option(parser, runs=True)
    add_env_options(parser, with_dataset=False)
    add_env_choice(parser)
    parser.set_defaults(handler=run, **defaults["env"])  # CPU-sized; see envs_data/experiments.json


def settings_from(args: argparse.Namespace) -> TransferSettings:
    """The experiment the parsed flags describe: command defaults, then the protocol, then the flags given."""
    protocol, typed = chosen_protocol(args), given(args)
    control = None if args.control_agent.lower() in ("", "none") else args.control_agent
    if control is not None and control not in agents.AGENTS:
        raise ConfigError(f"unknown --control-agent {control!r}; known agents: {', '.join(agents.agent_names())}")
    others = [name for name in ("random", control) if name]
    env = env_options(args, protocol_env=protocol.env)
    names = ("agent", "train", "eval", "steps_train", "steps_eval", "seeds")
    values = layer(args, names, protocol.transfer, _table_defaults(args, typed, env))
    agent, held_out, trained_on = values["agent"], values["eval"], values["train"]
    both = [dataset for dataset in held_out if dataset in trained_on]
    if both:
        raise ConfigError(
            f"{both[0]} is in both --train and --eval: a held-out dataset must be one the policy never trained on"
        )
    budgets = {}
    for name in (agent, *others):
        steps = dict(protocol.agents.get(name, {}).get("steps", {}))
        for dataset in list(steps):
            given_budget = "steps_eval" if dataset in held_out else "steps_train"
            if given_budget in typed:
                del steps[dataset]
        budgets[name] = steps
    return TransferSettings(
        agent=agent,
        train=trained_on,
        eval=held_out,
        steps_train=values["steps_train"],
        steps_eval=values["steps_eval"],
        seeds=values["seeds"],
        env_options={name: value for name, value in env.items() if name != "seed"},
        agent_options=protocol.hyperparameters(agent),
        protocol=protocol.name,
        control_agent=control,
        other_options={name: protocol.hyperparameters(name) for name in others},
        agent_env={
            name: accepted(args.env, {k: v for k, v in protocol.agent_env(name).items() if k not in typed})
            for name in (agent, *others)
        },
        agent_steps=budgets,
        train_seed=args.seed if "seed" in typed else None,
        env=args.env,
    )


def _table_defaults(args: argparse.Namespace, typed: set[str], env: dict) -> dict:
    """With rewards from look-up tables: budgets for many seeds (unless flags say otherwise); datasets not given must
    have complete tables (a table still being built would shrink the depth every dataset shares)."""
    if env.get("reward_source") not in LOOKUP_SOURCES:
        return {}
    table_defaults = envs_data.load("experiments")["transfer_table"]
    if args.table_path is None:
        chosen = [*(args.train if "train" not in typed else []), *(args.eval if "eval" not in typed else [])]
        growing = [name for name in chosen if name in shipped_names() and not shipped(name).complete]
        if growing:
            raise ConfigError(
                f"the shipped {', '.join(growing)} table(s) are still being built ('nasgym table show NAME'); give "
                f"--train and --eval datasets with complete tables: {', '.join(complete_names()) or 'none yet'}"
            )
    return {name: table_defaults[name] for name in ("steps_train", "steps_eval", "seeds")}


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    results = run_transfer(args.out, settings, progress=not args.no_progress, runs_at_once=args.ray_runs)
    for row in results["eval"]:
        print(
            f"{row['dataset']:>16} {row['variant']:>20}: best {row['best_reward']:.4f}, "
            f"mean {row['mean_reward']:.4f}, invalid episodes {row['invalid_episodes']:.2f}"
        )
    for test in results["action_tests"]:
        print(f"{test['dataset']:>16} {test['compared']:>36}: permutation p = {test['p_value']:.3f}")
    print(f"protocol {settings.protocol}; report: {args.out}/report.md")
    return 0
