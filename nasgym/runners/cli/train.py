"""``nasgym train ARCH``: train one architecture and report accuracy, time and parameters."""

from __future__ import annotations

import argparse

from tqdm.auto import tqdm

from nasgym.core.config import make_configs
from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.search_space import Architecture, shorten
from nasgym.core.training import split_for
from nasgym.runners.cli.options import add_env_options, add_protocol_option, chosen_protocol, env_options
from nasgym.runners.experiments import trained_evaluator


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one architecture and print its accuracy",
        description="Train one architecture, e.g. 'nasgym train c3-m2-c5-t --dataset digits'.",
    )
    parser.add_argument("architecture", help="layers joined by '-': c1 c3 c5 (conv), m2 m3 (max), a2 a3 (avg), t")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_protocol_option(parser)
    add_env_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    architecture = Architecture.parse(args.architecture)
    protocol = chosen_protocol(args)
    env_config, train_config = make_configs(env_options(args, with_dataset=True, protocol_env=protocol.env))
    sides = architecture.spatial_sizes(env_config.image_size)
    if len(architecture) > env_config.max_layers:
        raise ArchitectureError(
            f"{shorten(str(architecture))} has {len(architecture)} layers, "
            f"more than --max-layers {env_config.max_layers}"
        )
    if min(sides) < 1:
        raise ArchitectureError(
            f"{shorten(str(architecture))} is invalid at image size {env_config.image_size}: spatial sides "
            f"{shorten(str(sides))} fall below 1"
        )
    if env_config.reward_source != "trained":
        raise ConfigError(
            "nasgym train trains a network from scratch; drop --reward-source (weight sharing is for searches)"
        )
    evaluator = trained_evaluator(env_config, train_config)  # local, or Ray tasks with --backend ray
    epochs = 0 if evaluator.cached(architecture) else train_config.epochs
    if epochs:
        evaluator.prepare()
    with tqdm(total=epochs, desc="training", unit="epoch", disable=args.no_progress or not epochs, leave=False) as bar:
        result = evaluator.evaluate([architecture], on_epoch=lambda _epoch: bar.update())[0]
    evaluator.close()
    data, cfg = evaluator.data, train_config
    split = split_for(data, cfg)
    print(f"architecture  {result.architecture or '(empty)'}  (spatial sides {' -> '.join(map(str, sides))})")
    print(
        f"dataset       {data.name}: {len(data)} images, {data.n_classes} classes, {len(split.train)} train / "
        f"{len(split.reward)} reward / {len(split.test)} test (held out), scored on {cfg.score_split}, "
        f"{cfg.epochs} epochs on {evaluator.device}; protocol {protocol.name}"
    )
    print(f"accuracy      {result.accuracy:.4f}" + (f"  (failed: {result.failure})" if result.failure else ""))
    source = "answered from the reward cache" if result.from_cache else "trained now"
    print(f"time          {result.train_seconds:.1f} s  ({source})")
    print(f"parameters    {result.parameters:,}")
    return 0
