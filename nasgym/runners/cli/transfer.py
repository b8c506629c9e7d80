"""``nasgym transfer``: learn on some datasets, then run the policy on held-out ones (frozen, fine-tuned)."""

from __future__ import annotations

import argparse

import agents
import envs_data
from nasgym.runners.cli.options import add_env_options, comma_list, env_options, positive_int
from nasgym.runners.experiments.transfer import TransferSettings, run_transfer


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    defaults = envs_data.load("experiments")
    parser = subparsers.add_parser(
        "transfer",
        help="train a policy across datasets and test it on held-out ones",
        description="Train one policy on --train datasets in turn, then run it on each --eval dataset frozen "
        "and fine-tuned, against random search and a policy trained from scratch on the same budget. "
        "Writes OUT/results.json, OUT/transfer.png and OUT/report.md; rerunning continues unfinished phases.",
    )
    transfer = defaults["transfer"]
    parser.add_argument(
        "--agent",
        choices=agents.agent_names(),
        default="meta_a2c" if "meta_a2c" in agents.AGENTS else agents.agent_names()[0],
        help="(default %(default)s)",
    )
    parser.add_argument(
        "--train",
        type=comma_list,
        default=transfer["train"],
        help=f"training datasets in order (default {','.join(transfer['train'])})",
    )
    parser.add_argument(
        "--eval",
        type=comma_list,
        default=transfer["eval"],
        help=f"held-out datasets (default {','.join(transfer['eval'])})",
    )
    parser.add_argument(
        "--steps-train",
        type=positive_int,
        default=transfer["steps_train"],
        help="steps on each training dataset (default %(default)s)",
    )
    parser.add_argument(
        "--steps-eval",
        type=positive_int,
        default=transfer["steps_eval"],
        help="steps on each held-out dataset, per variant (default %(default)s)",
    )
    parser.add_argument("--seeds", type=positive_int, default=transfer["seeds"], help="(default %(default)s)")
    parser.add_argument("--out", default="runs/transfer", help="output folder (default %(default)s)")
    parser.add_argument("--no-progress", action="store_true")
    add_env_options(parser, with_dataset=False)
    parser.set_defaults(handler=run, **defaults["env"])  # CPU-sized; see envs_data/experiments.json


def run(args: argparse.Namespace) -> int:
    settings = TransferSettings(
        agent=args.agent,
        train=args.train,
        eval=args.eval,
        steps_train=args.steps_train,
        steps_eval=args.steps_eval,
        seeds=args.seeds,
        env_options=env_options(args),
    )
    results = run_transfer(args.out, settings, progress=not args.no_progress)
    for row in results["eval"]:
        print(
            f"{row['dataset']:>16} {row['variant']:>10}: best {row['best_reward']:.4f}, mean {row['mean_reward']:.4f}"
        )
    print(f"report: {args.out}/report.md")
    return 0
