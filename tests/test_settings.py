"""Each default is written once: the env, the CLI and the docstring all follow the settings dataclasses."""

from __future__ import annotations

import dataclasses
import inspect
import math

import gymnasium as gym
import pytest

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core import settings
from nasgym.core.config import SETTINGS_CLASSES, EnvConfig, make_configs
from nasgym.core.env import NASEnv
from nasgym.core.errors import ConfigError, NasGymError
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.runners.cli import build_parser
from nasgym.runners.cli.options import flag_of

ALL = settings.settings_of(*SETTINGS_CLASSES)


def toy(**options) -> gym.Env:
    return gym.make("NAS-v0", evaluator=FunctionEvaluator(lambda network: 0.5), **options)


def test_every_setting_has_help_and_a_unique_name():
    assert len({s.name for s in ALL}) == len(ALL) > 20
    assert all(s.help for s in ALL), [s.name for s in ALL if not s.help]


def test_the_env_takes_every_default_from_the_dataclasses():
    env = toy().unwrapped
    made = {**settings.flatten(env.config), **settings.flatten(env.train_config)}
    assert made == {s.name: s.default for s in ALL}


@pytest.mark.parametrize("command", ["train", "search", "final"])
def test_the_cli_flags_are_the_settings_with_their_defaults(command: str):
    argv = {"train": ["train", "c3"], "search": ["search"], "final": ["final", "c3"]}[command]
    args = build_parser().parse_args(argv)
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices[command].format_help().split())
    overridden = {"final": {"score_split"}}  # final scores on the test split; its protocol sets the rest
    for setting in ALL:
        assert flag_of(setting.name) in help_text, setting.name
        if setting.name not in overridden.get(command, set()):
            assert getattr(args, setting.name) == setting.default, setting.name


def test_a_flag_parses_to_what_the_keyword_takes():
    args = build_parser().parse_args(
        [
            "train",
            "c3",
            "--epochs",
            "3",
            "--betas",
            "0.8,0.99",
            "--max-samples",
            "none",
            "--no-cache",
            "--train-seed",
            "7",
        ]
    )
    assert (args.epochs, args.betas, args.max_samples, args.cache, args.seed) == (3, (0.8, 0.99), None, False, 7)


def test_the_docstring_table_lists_every_setting_with_its_default():
    doc = inspect.getdoc(NASEnv)
    for setting in ALL:
        assert f"| `{setting.name}` | `{setting.default!r}` | {setting.help} |" in doc


def test_gym_make_forwards_training_settings():
    env = toy(epochs=3, filters=16, dropout=0.0, betas=[0.5, 0.9], image_size=28)
    assert env.unwrapped.train_config.epochs == 3 and env.unwrapped.train_config.network.filters == 16
    assert env.unwrapped.train_config.betas == (0.5, 0.9) and env.unwrapped.image_size == 28


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epoch": 3}, "unknown NAS-v0 keyword 'epoch'; did you mean 'epochs'?"),
        ({"filters": 2.5}, "filters must be an int, got 2.5"),
        ({"epochs": 1.5}, "epochs must be an int, got 1.5"),
        ({"epochs": True}, "epochs must be an int, got True"),
        ({"betas": (0.9,)}, "betas must be a tuple (a number, a number)"),
        ({"seed": "a"}, "seed must be an int"),
        ({"seed": -1}, "seed must be in [0, 2**63)"),
        ({"seed": 2**70}, "seed must be in [0, 2**63)"),
        ({"dense_units": 0}, "dense_units must be at least 1"),
        ({"filter_growth": 0.0}, "filter_growth must be a positive number"),
        ({"max_filters": 0}, "max_filters must be at least 1"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"learning_rate": float("nan")}, "learning_rate must be a number, got nan"),
        ({"reward": "sparse"}, "reward must be one of 'per_step', 'final'"),
        ({"cache": "yes"}, "cache must be True or False"),
        ({"max_layers": 0}, "max_layers must be at least 1"),
        ({"image_size": 0}, "image_size must be at least 1"),
        ({"max_samples": 1}, "max_samples must be at least 2"),
        ({"dataset": None}, "dataset must be a string"),
        ({"dataset": 123}, "dataset must be a string"),
    ],
)
def test_bad_keywords_are_nasgyms_own_error_at_make(options, message):
    with pytest.raises(ConfigError) as caught:
        toy(**options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_evaluator_is_refused_at_make():
    with pytest.raises(NasGymError, match="evaluator must have an evaluate"):
        gym.make("NAS-v0", evaluator=object())


def test_values_convert_only_without_loss():
    assert settings.check_value("x", float, 3) == 3.0 and isinstance(settings.check_value("x", float, 3), float)
    assert settings.check_value("x", tuple[int, ...], [1, 2]) == (1, 2)
    assert settings.check_value("x", int | None, None) is None
    with pytest.raises(ConfigError):
        settings.check_value("x", int, 2.0)
    assert math.isinf(settings.parse_text("x", float, "inf"))
    assert settings.parse_text("x", tuple[float, float], "(0.5, 0.9)") == (0.5, 0.9)


def test_an_env_config_made_directly_is_checked_too():
    with pytest.raises(ConfigError, match="image_size must be an int"):
        EnvConfig(image_size="84")
    assert dataclasses.asdict(make_configs({})[0]) == dataclasses.asdict(EnvConfig())
