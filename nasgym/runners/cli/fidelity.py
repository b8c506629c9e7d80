"""``nasgym fidelity``: rank agreement of every cheap reward with trained rewards on a sample of networks."""

from __future__ import annotations

import argparse
from pathlib import Path

from nasgym.runners.cli.options import add_env_options, comma_list, env_options, non_negative_int, positive_int
from nasgym.runners.experiments.fidelity import FidelityPlan, run_fidelity
from nasgym.runners.experiments.fidelity_report import table


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def _heads(text: str) -> tuple[str, ...]:
    heads = tuple(comma_list(text))
    unknown = [head for head in heads if head not in ("gap", "per_shape")]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown head {unknown[0]!r}; known: gap, per_shape")
    return heads


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fidelity",
        help="how well cheap rewards (weight sharing, low fidelity, NASWOT) rank networks against trained ones",
        description="Draw N valid networks (seeded, an equal share of each depth), train each at the budget the "
        "environment flags give (the reference) and compute every cheap reward; write OUT/report.md, "
        "results.json, fidelity.csv and a scatter plot per reward. Trained rewards use the reward cache, so a "
        "rerun trains only what is missing.",
    )
    parser.add_argument("--networks", type=positive_int, default=60, help="N, networks in the sample (default 60)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seeds the sample and the WS order")
    parser.add_argument(
        "--low-epochs",
        type=_ints,
        default=(1, 3),
        help="cheap rewards with these epochs, those below the reference's (1,3)",
    )
    parser.add_argument(
        "--low-image-size", type=positive_int, default=None, help="the smaller images' side (default 2/3 of it)"
    )
    parser.add_argument(
        "--data-fraction", type=float, default=0.25, help="the cheap reward on this share of the images (0.25)"
    )
    parser.add_argument("--ws-heads", type=_heads, default=("gap", "per_shape"), help="weight sharing heads")
    parser.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument(
        "--surrogate-table",
        default=None,
        metavar="TABLE",
        help="also score this look-up table's surrogate (a table file or a shipped table's dataset), refitted without "
        "the sampled networks; the environment flags must be the table's settings",
    )
    parser.add_argument("--out", default="runs/fidelity", help="output folder (default runs/fidelity)")
    parser.add_argument("--no-progress", action="store_true")
    add_env_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    plan = FidelityPlan(
        dataset=args.dataset,
        networks=args.networks,
        seed=args.seed,
        env_options=env_options(args),
        low_epochs=args.low_epochs,
        low_image_size=args.low_image_size,
        data_fraction=args.data_fraction,
        ws_heads=args.ws_heads,
        bootstrap=args.bootstrap,
        surrogate_table=args.surrogate_table,
    )
    results = run_fidelity(Path(args.out), plan, progress=not args.no_progress)
    print(table(results["sources"]))
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0
