"""``nasgym final ARCH``: NasGym's final protocol for a found network, beside a shortened VGG19."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nasgym.core.search_space import Architecture
from nasgym.runners.cli.options import add_env_options, env_options
from nasgym.runners.experiments.final import FINAL_PROTOCOL, VGG19_SHORT, train_final


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "final",
        help="train a found architecture longer, against a shortened VGG19",
        description="Train ARCH with NasGym's final protocol (filters doubling per convolution, 100 epochs, "
        f"exponential learning-rate decay) and the baseline {VGG19_SHORT} the same way; print both accuracies.",
    )
    parser.add_argument("architecture", help="e.g. c3-m2-c5-t (as printed by nasgym search)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the VGG19 baseline")
    parser.add_argument("--out", default=None, help="also write the results to this JSON file")
    parser.add_argument("--no-progress", action="store_true")
    add_env_options(parser)
    parser.set_defaults(handler=run, **FINAL_PROTOCOL)


def run(args: argparse.Namespace) -> int:
    options = env_options(args)
    architecture = Architecture.parse(args.architecture)
    results = train_final(architecture, args.dataset, options, not args.no_baseline, not args.no_progress)
    print(
        f"{args.dataset}: {args.epochs} epochs, filters x{args.filter_growth:g} per conv (max {args.max_filters}), "
        f"learning rate x{args.lr_decay_factor:g} every {args.lr_decay_epochs} epoch(s)"
    )
    for result in results:
        evaluation = result.evaluation
        source = "reward cache" if evaluation.from_cache else "trained now"
        failed = f"  failed: {evaluation.failure}" if evaluation.failure else ""
        print(
            f"  {result.name:<12} {evaluation.architecture:<34} accuracy {evaluation.accuracy:.4f}  "
            f"{evaluation.parameters:>12,} parameters  "
            f"{evaluation.train_seconds:8.1f} s ({source}){failed}"
        )
    if args.out:
        payload = {
            "dataset": args.dataset,
            "options": options,
            "results": [
                {
                    "name": r.name,
                    "architecture": r.evaluation.architecture,
                    "accuracy": r.evaluation.accuracy,
                    "parameters": r.evaluation.parameters,
                    "train_seconds": r.evaluation.train_seconds,
                    "failure": r.evaluation.failure,
                    "spatial_sides": r.spatial_sides,
                }
                for r in results
            ],
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(payload, indent=2))
    return 0
