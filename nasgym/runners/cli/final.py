"""``nasgym final ARCH``: a found network and a VGG baseline, trained several times, scored on the test split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nasgym.core.search_space import Architecture
from nasgym.runners.cli.options import (
    Given,
    add_env_options,
    add_protocol_option,
    chosen_protocol,
    env_options,
    layer,
    positive_int,
)
from nasgym.runners.experiments.final import BASELINES, FinalResult, train_final


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "final",
        help="train a found architecture longer, against a VGG baseline, on the held-out test split",
        description="Train ARCH with the protocol's final training (modern: filters doubling per convolution, "
        "100 epochs, learning rate x0.95 per epoch; nasgym2019: NasGym's net_eval.py) and NasGym's two-block VGG "
        "baseline --repeats times with different training seeds, score every training on "
        "the test split that no search sees, and print mean +- 2 sd.",
    )
    parser.add_argument(
        "architecture", help="e.g. c5-a3, as nasgym search prints its best architecture (a final -t may be added)"
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        action=Given,
        default=5,
        help="trainings per network, training seeds --train-seed, +1, ... (default %(default)s, or the protocol's)",
    )
    parser.add_argument(
        "--baseline",
        choices=BASELINES,
        action=Given,
        default="vgg_two_blocks",
        help="vgg_two_blocks: NasGym's baseline, VGG19's first two blocks; vgg19_short: its first three blocks in this "
        "space's layers, from 52 px (default %(default)s, or the protocol's)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="the same as --baseline none")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    parser.add_argument("--no-progress", action="store_true")
    add_protocol_option(parser)
    add_env_options(parser)
    parser.set_defaults(handler=run, score_split="test")


def _line(result: FinalResult) -> str:
    evaluations = result.evaluations
    cached = sum(evaluation.from_cache for evaluation in evaluations)
    trained = len(evaluations) - cached
    source = f"{cached} from the reward cache" if not trained else f"{trained} trained now"
    failures = [evaluation.failure for evaluation in evaluations if evaluation.failure]
    failed = f"  failed: {failures[0]}" if failures else ""
    spread = "" if len(evaluations) < 2 else f" +- {2 * result.sd:.4f}"
    return (
        f"  {result.name:<14} {result.architecture:<34} accuracy {result.mean:.4f}{spread} (mean +- 2 sd of "
        f"{len(evaluations)})  {evaluations[0].parameters:>12,} parameters  "
        f"{sum(e.train_seconds for e in evaluations):8.1f} s ({source}){failed}"
    )


def run(args: argparse.Namespace) -> int:
    protocol = chosen_protocol(args)
    final = protocol.final
    options = env_options(args, with_dataset=False, protocol_env=protocol.final_env())
    values = layer(args, ("repeats", "baseline"), final)
    repeats = values["repeats"]
    baseline = "none" if args.no_baseline else values["baseline"]
    architecture = Architecture.parse(args.architecture)
    results = train_final(architecture, args.dataset, options, baseline, repeats, not args.no_progress)
    cap = "no cap" if options["max_filters"] is None else f"max {options['max_filters']}"
    schedule = (
        f"x{options['lr_decay_factor']:g} every {options['lr_decay_steps']} steps (continuously)"
        if options["lr_decay_steps"]
        else f"x{options['lr_decay_factor']:g} every {options['lr_decay_epochs']} epoch(s)"
        if options["lr_decay_epochs"]
        else "constant"
    )
    print(
        f"{args.dataset}, protocol {protocol.name}: {options['epochs']} epochs, filters {options['filters']} "
        f"x{options['filter_growth']:g} per conv ({cap}), dense {options['dense_units']}, learning rate "
        f"{options['learning_rate']:g} {schedule}; scored on the {options['score_split']} split"
    )
    for result in results:
        print(_line(result))
    if args.out:
        payload = {
            "dataset": args.dataset,
            "protocol": protocol.name,
            "options": options,
            "repeats": repeats,
            "baseline": baseline,
            "results": [
                {
                    "name": r.name,
                    "architecture": r.architecture,
                    "accuracies": r.accuracies,
                    "mean": r.mean,
                    "sd": r.sd,
                    "parameters": r.evaluations[0].parameters,
                    "train_seconds": [e.train_seconds for e in r.evaluations],
                    "failures": [e.failure for e in r.evaluations],
                    "spatial_sides": r.spatial_sides,
                }
                for r in results
            ],
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=2))
    return 0
