"""Command-line options shared by the commands that build a ``NAS-v0`` environment."""

from __future__ import annotations

import argparse
from typing import Any

from nasgym.core.datasets import dataset_names


def comma_list(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] for options that take several names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def add_env_options(
    parser: argparse.ArgumentParser,
    seed_flag: str = "--seed",
    with_dataset: bool = True,
    reward_default: str | None = "per_step",
) -> None:
    """Every training setting of NAS-v0, NasGym's values as defaults (see ``help(nasgym.core.env.NASEnv)``).

    A command may change defaults with ``parser.set_defaults``; the help texts show the effective ones.
    ``reward_default=None`` leaves the reward mode to the command (``nasgym search`` picks it per agent).
    """
    group = parser.add_argument_group("environment and child training")
    if with_dataset:
        group.add_argument(
            "--dataset", default="digits", help=f"dataset name ({', '.join(dataset_names())}; default %(default)s)"
        )
    group.add_argument("--epochs", type=int, default=12, help="training epochs per child (default %(default)s)")
    group.add_argument("--batch-size", type=int, default=128, help="minibatch size (default %(default)s)")
    group.add_argument("--image-size", type=int, default=84, help="image side in pixels (default %(default)s)")
    group.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default %(default)s)")
    group.add_argument(
        "--lr-decay-epochs",
        type=int,
        default=5,
        help="multiply the rate by --lr-decay-factor every this many epochs; 0 = constant (default %(default)s)",
    )
    group.add_argument("--lr-decay-factor", type=float, default=0.2, help="(default %(default)s)")
    group.add_argument(
        "--max-layers", type=int, default=10, help="rows per episode, terminal included (default %(default)s)"
    )
    reward_help = (
        "(default %(default)s)"
        if reward_default
        else "(default final for reinforce, as in Zoph & Le; per_step otherwise)"
    )
    group.add_argument("--reward", choices=("per_step", "final"), default=reward_default, help=reward_help)
    group.add_argument(
        seed_flag,
        dest="train_seed",
        type=int,
        default=0,
        help="training seed: split, initialisation, batch order (default %(default)s)",
    )
    group.add_argument("--max-samples", type=int, default=None, help="use a fixed random subset of this many images")
    group.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="(default %(default)s)")
    group.add_argument("--device", default="auto", help="cuda, cpu or auto (default %(default)s)")
    group.add_argument("--data-dir", default=None, help="where prepared datasets live")
    group.add_argument(
        "--cache",
        dest="cache_path",
        default=None,
        help="reward cache file (default ~/.cache/nasgym/rewards.sqlite, or $NASGYM_HOME)",
    )
    group.add_argument("--no-cache", action="store_true", help="train every network, store nothing")


def env_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``gym.make`` keywords (besides ``dataset``) that the parsed options stand for."""
    options: dict[str, Any] = {
        "epochs": args.epochs, "batch_size": args.batch_size, "image_size": args.image_size,
        "learning_rate": args.lr, "lr_decay_epochs": args.lr_decay_epochs, "lr_decay_factor": args.lr_decay_factor,
        "max_layers": args.max_layers, "reward": args.reward, "seed": args.train_seed,
        "max_samples": args.max_samples, "precision": args.precision, "device": args.device,
        "data_dir": args.data_dir, "cache": not args.no_cache, "cache_path": args.cache_path,
    }  # fmt: skip
    return options
