"""``nasgym train ARCH``: train one architecture and report accuracy, time and parameters."""

from __future__ import annotations

import argparse

import gymnasium as gym

from nasgym.core.errors import ArchitectureError
from nasgym.core.search_space import Architecture
from nasgym.runners.cli.options import add_env_options, env_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train one architecture and print its accuracy",
        description="Train one architecture, e.g. 'nasgym train c3-m2-c5-t --dataset digits'.",
    )  # fmt: skip
    parser.add_argument("architecture", help="layers joined by '-': c1 c3 c5 (conv), m2 m3 (max), a2 a3 (avg), t")
    add_env_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    architecture = Architecture.parse(args.architecture)
    sides = architecture.spatial_sizes(args.image_size)
    if len(architecture) > args.max_layers:
        raise ArchitectureError(
            f"{architecture} has {len(architecture)} layers, more than --max-layers {args.max_layers}"
        )
    if min(sides) < 1:
        raise ArchitectureError(
            f"{architecture} is invalid at image size {args.image_size}: spatial sides {sides} fall below 1"
        )
    env = gym.make("NAS-v0", dataset=args.dataset, **env_options(args))
    evaluator = env.unwrapped.evaluator
    result = evaluator.evaluate([architecture])[0]
    data = evaluator.data
    n_train = round(len(data) * evaluator.config.train_fraction)
    print(f"architecture  {result.architecture or '(empty)'}  (spatial sides {' -> '.join(map(str, sides))})")
    print(f"dataset       {data.name}: {len(data)} images, {data.n_classes} classes, "
          f"{n_train} train / {len(data) - n_train} reward, {args.epochs} epochs on {evaluator.device}")  # fmt: skip
    print(f"accuracy      {result.accuracy:.4f}" + (f"  (failed: {result.failure})" if result.failure else ""))
    source = "answered from the reward cache" if result.from_cache else "trained now"
    print(f"time          {result.train_seconds:.1f} s  ({source})")
    print(f"parameters    {result.parameters:,}")
    return 0
