"""``nasgym table build|show``: look-up tables of real trainings, built by the environment's own trainer."""

from __future__ import annotations

import argparse

from nasgym.core.config import make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.lookup import TABLE_IMAGE_SIZE
from nasgym.core.lookup.build import build_table
from nasgym.core.lookup.plan import TablePlan, exhaustive_count
from nasgym.core.lookup.table import Table, describe
from nasgym.core.settings import settings_of
from nasgym.runners.cli.options import _add_setting, add_env_options, add_ray_option, env_options, positive_int


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "table",
        help="build or inspect a look-up table of trained networks (reward_source='table')",
        description="Look-up tables hold real trainings of a named set of networks, with the reward split's accuracy "
        "after every epoch, so a search answers from them in microseconds (reward_source='table').",
    )
    commands = parser.add_subparsers(title="table commands", required=True, metavar="COMMAND")
    build = commands.add_parser(
        "build",
        help="train a plan of networks into a table file (resumes a killed build)",
        description="Train every valid network up to --depth, --deep-per-depth networks of each deeper depth and a "
        "--seed-subset with further --seeds, and append each learning curve to OUT as it finishes. Rerun the same "
        "command to resume; a file built with other settings is refused.",
    )
    build.add_argument("out", help="the table file (JSON Lines), e.g. envs_data/tables/omniglot_small1.jsonl")
    build.add_argument("--limit", type=positive_int, default=None, help="train at most this many more networks")
    build.add_argument("--no-progress", action="store_true")
    group = build.add_argument_group("the plan")
    for setting in settings_of(TablePlan):
        _add_setting(group, setting, None)
    add_ray_option(build)
    add_env_options(build)
    build.set_defaults(handler=run_build, image_size=TABLE_IMAGE_SIZE, device="cpu")
    show = commands.add_parser("show", help="what a table holds: networks, seeds, best and median reward, seed sd")
    show.add_argument("table", help="a table file, or a dataset name for the table shipped with nasgym")
    show.set_defaults(handler=run_show)


def run_build(args: argparse.Namespace) -> int:
    env_config, train_config = make_configs(env_options(args, with_dataset=True))
    if env_config.reward_source != "trained":
        raise ConfigError("a table records trained rewards; drop --reward-source")
    plan = TablePlan(**{s.name: getattr(args, s.name) for s in settings_of(TablePlan)})
    planned = len(plan.jobs(env_config.image_size, env_config.max_layers))
    print(
        f"plan: {exhaustive_count(env_config.image_size, plan.depth):,} networks up to depth {plan.depth} and "
        f"{plan.deep_per_depth} per deeper depth, seeds {list(plan.seeds)} ({planned:,} trainings in all)"
    )
    table = build_table(args.out, env_config, train_config, plan, limit=args.limit, progress=not args.no_progress)
    print(describe(Table(table.header, list(table.entries.values()), args.out)))
    return 0


def run_show(args: argparse.Namespace) -> int:
    print(describe(Table.open(args.table)))
    return 0
