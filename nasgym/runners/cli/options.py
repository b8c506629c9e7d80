"""Command-line options generated from the settings dataclasses, so a default is written once.

Every field of ``EnvConfig``, ``TrainConfig`` and ``NetworkConfig`` (the ``NAS-v0`` keywords) becomes a flag
``--field-name`` with the field's help and default; ``--set NAME=VALUE`` values of agent hyperparameters are
read against the agent config's field types the same way.

``--protocol NAME`` applies a protocol (``nasgym.core.protocols``) on top of a command's defaults; a flag given on
the command line overrides both. Every command layers its values with ``layer`` (flags typed > protocol > the
defaults of a mode > the parser's defaults); to tell a given flag from a default, these options record the flags the
user typed (``given``).
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import agents
from nasgym.core import settings
from nasgym.core.config import LOOKUP_SOURCES, SETTINGS_CLASSES
from nasgym.core.errors import ConfigError
from nasgym.core.protocols import DEFAULT_PROTOCOL, Protocol, protocol, protocol_names
from nasgym.core.ray_backend import check_reachable
from nasgym.runners.envs import ENV_IDS, NAS_V0, command_line_options, own_settings
from nasgym.runners.experiments.parallel import RUNS_AT_ONCE

FLAG_NAMES = {"seed": "--train-seed"}
"""Flags that differ from their field's name: ``--seed`` is the agent's seed in every command that has one."""


class Given(argparse.Action):
    """``store``, and a note that the user gave this flag (so a protocol does not override it)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        _note(namespace, self.dest)


class GivenBool(argparse.BooleanOptionalAction):
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        super().__call__(parser, namespace, values, option_string)
        _note(namespace, self.dest)


def _note(namespace: argparse.Namespace, dest: str) -> None:
    namespace.given = {*getattr(namespace, "given", set()), dest}


def given(args: argparse.Namespace) -> set[str]:
    """The options the user typed on the command line (their ``dest`` names)."""
    return set(getattr(args, "given", set()))


def add_protocol_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--protocol",
        choices=protocol_names(),
        default=DEFAULT_PROTOCOL,
        help="a named bundle of settings (envs_data/protocols.json): 'nasgym2019' is NasGym's code as it ran; "
        "flags given here override it (default %(default)s)",
    )


def chosen_protocol(args: argparse.Namespace) -> Protocol:
    return protocol(getattr(args, "protocol", DEFAULT_PROTOCOL))


def layer(
    args: argparse.Namespace,
    names: Iterable[str],
    protocol: Mapping[str, Any] | None = None,
    mode: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Each of ``names`` from the first layer that has it: the flag the user typed, the ``protocol``'s value, the
    defaults of the command's ``mode`` (the table budgets with ``--reward-source table``, say), the parser's default.

    Every command takes its values from here, so the precedence is written once; a name that only the protocol or
    the mode knows (no such flag) is taken from them."""
    typed, protocol, mode = given(args), protocol or {}, mode or {}
    values = {}
    for name in names:
        if name in typed:
            values[name] = getattr(args, name)
        elif name in protocol:
            values[name] = protocol[name]
        elif name in mode:
            values[name] = mode[name]
        else:
            values[name] = getattr(args, name)
    return values


def comma_list(text: str) -> list[str]:
    """'a, b,c' -> ['a', 'b', 'c'] for options that take several names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def name_list(text: str) -> list[str]:
    """``comma_list`` for options that need at least one name ('' or ',,' names none: a usage error)."""
    names = comma_list(text)
    if not names:
        raise argparse.ArgumentTypeError(f"expected one or more comma-separated names, got {text!r}")
    return names


def flag_of(name: str) -> str:
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def _reader(setting: settings.Setting):
    def read(text: str) -> Any:
        try:
            return settings.parse_text(flag_of(setting.name), setting.type, text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    read.__name__ = setting.name  # argparse names the type in some messages
    return read


def env_settings(with_dataset: bool = True) -> list[settings.Setting]:
    """The ``NAS-v0`` keywords a command takes as flags."""
    return [s for s in settings.settings_of(*SETTINGS_CLASSES) if with_dataset or s.name != "dataset"]


def add_env_options(
    parser: argparse.ArgumentParser, with_dataset: bool = True, default_help: dict[str, str] | None = None
) -> None:
    """A flag per ``NAS-v0`` keyword, NasGym's values as defaults (``help(nasgym.core.env.NASEnv)``).

    A command changes defaults with ``parser.set_defaults(name=value)``; the help shows the effective ones, or
    ``default_help[name]`` where a default depends on other flags.
    """
    group = parser.add_argument_group("environment and child training (the NAS-v0 keywords)")
    for setting in env_settings(with_dataset):
        _add_setting(group, setting, default_help)


def add_env_choice(parser: argparse.ArgumentParser) -> None:
    """``--env NAME`` and, per environment, the keywords only it has (``NAS-ZophLe-v0``'s ``--layers``, ...)."""
    parser.add_argument(
        "--env",
        choices=ENV_IDS,
        default=NAS_V0,
        help="the environment: NasGym's chain space, or Zoph & Le's token-by-token space (default %(default)s)",
    )
    for env_id in ENV_IDS:
        own = own_settings(env_id)
        if own:
            group = parser.add_argument_group(f"{env_id} keywords (with --env {env_id})")
            for setting in own:
                _add_setting(group, setting, None)


def _add_setting(group: Any, setting: settings.Setting, default_help: dict[str, str] | None) -> None:
    default = (default_help or {}).get(setting.name, "%(default)s")
    help_text = setting.help.replace("%", "%%") + f" (default {default})"
    if setting.type is bool:
        group.add_argument(
            flag_of(setting.name),
            dest=setting.name,
            action=GivenBool,
            default=setting.default,
            help=help_text,
        )
        return
    choices = typing.get_args(setting.type) if typing.get_origin(setting.type) is Literal else None
    group.add_argument(
        flag_of(setting.name),
        dest=setting.name,
        action=Given,
        type=_reader(setting),
        default=setting.default,
        choices=choices,
        metavar=setting.name.upper() if choices is None else None,
        help=help_text,
    )


def env_options(
    args: argparse.Namespace, with_dataset: bool = False, protocol_env: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``gym.make`` keywords the parsed flags stand for (``dataset`` only when asked for): the command's defaults,
    then ``protocol_env`` (a protocol's keywords), then the flags the user gave (``--ray [ADDRESS]`` as
    ``backend`` and ``ray_address``)."""
    own = [s.name for env_id in ENV_IDS for s in own_settings(env_id)]
    names = [name for name in [s.name for s in env_settings(with_dataset)] + own if hasattr(args, name)]
    typed = given(args)
    extra = [name for name in protocol_env or {} if name not in names and name not in typed]  # no flag: the protocol's
    values = layer(args, [*names, *extra], protocol_env)
    # Each environment gets its own keywords; another's given on the command line reach it, and it says no.
    values = command_line_options(getattr(args, "env", NAS_V0), values, typed)
    if getattr(args, "ray", None) is not None:
        values["backend"] = "ray"
        if args.ray:
            check_reachable(args.ray)  # now, before any data is loaded or a progress bar shows
            values["ray_address"] = args.ray
    if values.get("reward_source") in LOOKUP_SOURCES:  # a table's own settings, unless the user or a protocol says
        chosen = typed | set(protocol_env or {}) | {"dataset", "reward_source", "backend", "ray_address"}
        values = {name: value for name, value in values.items() if name in chosen}
    return values


def _number_type(name: str, kind: type, minimum: float, inclusive: bool):
    def read(text: str) -> Any:
        try:
            value = settings.parse_text(name, kind, text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        if value < minimum or (value == minimum and not inclusive):
            bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    read.__name__ = name
    return read


positive_int = _number_type("a positive int", int, 1, inclusive=True)
non_negative_int = _number_type("an int >= 0", int, 0, inclusive=True)
non_negative_number = _number_type("a number >= 0", float, 0.0, inclusive=True)


def hyperparameter(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` of ``--set``; the value is read against the agent's config later, when the agent is known."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip().replace("-", "_"), value


def agent_hyperparameters(agent: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``--set`` pairs read against the fields of the agent's hyperparameter dataclass."""
    known = {s.name: s for s in settings.settings_of(agents.AGENTS[agent].Config)}
    values = {}
    for name, text in pairs:
        if name not in known:
            raise settings.unknown_name_error(name, known, f"{agent} hyperparameter")
        values[name] = settings.parse_text(name, known[name].type, text)
    return values


def add_ray_option(parser: argparse.ArgumentParser, runs: bool = False) -> None:
    """``--ray [ADDRESS]``: short for ``--backend ray [--ray-address ADDRESS]``; with ``runs``, also ``--ray-runs``."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="train children as Ray tasks (pip install nasgym[ray]): ADDRESS 'auto' joins the cluster `ray start` "
        "runs on this machine, HOST:PORT another; without ADDRESS a local Ray instance starts"
        + ("; the searches run at once as Ray tasks on this machine" if runs else ""),
    )
    if runs:
        parser.add_argument(
            "--ray-runs",
            type=positive_int,
            default=RUNS_AT_ONCE,
            help="with --ray: searches running at once, each a process on this machine (default %(default)s)",
        )
