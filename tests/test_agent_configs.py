"""Every agent's hyperparameters are checked where they are made: a wrong type or a value out of range is one
clean ConfigError line naming the field, never a run that silently never updates or trains on NaN."""

from __future__ import annotations

import typing

import numpy as np
import pytest
from support import toy_env

import agents
from agents.hyperparameters import Range
from nasgym.core.errors import ConfigError

BAD = {
    "dqn": [
        ("batch_size", 0, "batch_size must be >= 1, got 0"),
        ("learning_starts", -5, "learning_starts must be >= 0, got -5"),
        ("learning_rate", 0, "learning_rate must be > 0, got 0.0"),
        ("learning_rate", float("nan"), "learning_rate must be a number, got nan"),
        ("learning_rate", "fast", "learning_rate must be a number, got 'fast'"),
        ("buffer_size", 0, "buffer_size must be >= 1, got 0"),
        ("buffer_size", 2.5, "buffer_size must be an int or None, got 2.5"),
        ("exploration_initial_eps", 1.5, "exploration_initial_eps must be in [0, 1], got 1.5"),
        ("exploration_fraction", 0, "exploration_fraction must be in (0, 1], got 0.0"),
        ("gamma", 1.01, "gamma must be in [0, 1], got 1.01"),
        ("target_update_interval", 0, "target_update_interval must be >= 1, got 0"),
        ("train_freq", True, "train_freq must be an int, got True"),
        ("net_arch", (64, 0), "net_arch must hold numbers >= 1, got (64, 0)"),
        ("net_arch", "64", "net_arch must be a tuple of an int, got '64'"),
        ("max_grad_norm", -1, "max_grad_norm must be > 0, got -1.0"),
        ("seed", -1, "seed must be in [0, 2**63), got -1"),
        ("seed", 2**63, "seed must be in [0, 2**63), got 9223372036854775808"),
    ],
    "meta_a2c": [
        ("n_steps", [1, 2], "n_steps must be an int, got [1, 2]"),
        ("n_steps", 0, "n_steps must be >= 1, got 0"),
        ("hidden_size", 2.0, "hidden_size must be an int, got 2.0"),
        ("gamma", -0.1, "gamma must be in [0, 1], got -0.1"),
        ("entropy_coef", -0.01, "entropy_coef must be >= 0, got -0.01"),
        ("rmsprop_eps", 0, "rmsprop_eps must be > 0, got 0.0"),
        ("memory", "lstm", "memory must be one of 'rl2', 'nasgym', 'episode', got 'lstm'"),
        ("reward_input", 0, "reward_input must be True or False, got 0"),
        ("seed", 1.5, "seed must be an int, got 1.5"),
    ],
    "reinforce": [
        ("architectures_per_update", 0, "architectures_per_update must be >= 1, got 0"),
        ("num_layers", 0, "num_layers must be >= 1, got 0"),
        ("baseline_decay", 1.5, "baseline_decay must be in [0, 1], got 1.5"),
        ("init_range", -0.1, "init_range must be >= 0, got -0.1"),
        ("learning_rate", float("inf"), "learning_rate must be > 0, got inf"),
        ("seed", True, "seed must be an int, got True"),
    ],
    "random": [
        ("seed", -1, "seed must be in [0, 2**63), got -1"),
        ("mask_invalid", "yes", "mask_invalid must be True or False, got 'yes'"),
    ],
}


@pytest.mark.parametrize(
    ("agent", "field", "value", "message"), [(agent, *case) for agent, cases in BAD.items() for case in cases]
)
def test_a_bad_hyperparameter_is_one_clean_line(agent: str, field: str, value, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        agents.make_config(agent, **{field: value})
    assert str(refused.value) == f"bad {agent} hyperparameters: {message}"
    with pytest.raises(ConfigError) as refused:
        agents.AGENTS[agent].Config(**{field: value})  # the dataclass itself checks, not only make_config
    assert str(refused.value) == message


def test_every_bad_field_is_named_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        agents.make_config("dqn", batch_size=0, learning_starts=-5, gamma=2)
    message = str(refused.value)
    assert len(message.splitlines()) == 1
    assert all(f"{name} must" in message for name in ("batch_size", "learning_starts", "gamma"))


def test_good_values_are_converted_losslessly() -> None:
    config = agents.make_config("dqn", learning_rate=1, net_arch=[32, 16], seed=np.int64(2**63 - 1), buffer_size=None)
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.net_arch == (32, 16) and config.seed == 2**63 - 1 and type(config.seed) is int
    assert agents.make_config("meta_a2c", gamma=0, value_coef=0).gamma == 0.0


def test_an_agent_rechecks_a_config_object_changed_after_it_was_made() -> None:
    config = agents.make_config("dqn")
    config.batch_size = 0
    with pytest.raises(ConfigError, match="bad dqn hyperparameters: batch_size must be >= 1"):
        agents.AGENTS["dqn"](toy_env(), config)


def test_unknown_names_are_config_errors_that_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown dqn hyperparameter 'batch'; did you mean 'batch_size'\? known: "):
        agents.make_config("dqn", batch=8)
    known = "dqn, local_search, meta_a2c, random, regularized_evolution, reinforce"
    with pytest.raises(ConfigError, match=f"unknown agent 'ppo'; known agents: {known}"):
        agents.make_config("ppo")


def ranges(kind) -> list[Range]:
    """The Range markers anywhere in an annotated type."""
    if typing.get_origin(kind) is typing.Annotated:
        return [m for m in typing.get_args(kind)[1:] if isinstance(m, Range)] + ranges(typing.get_args(kind)[0])
    return [found for argument in typing.get_args(kind) for found in ranges(argument)]


@pytest.mark.parametrize("agent", sorted(agents.AGENTS))
def test_every_numeric_hyperparameter_has_a_range(agent: str) -> None:
    """So a field added later cannot skip the range check."""
    config = agents.AGENTS[agent].Config
    plain, annotated = typing.get_type_hints(config), typing.get_type_hints(config, include_extras=True)
    numeric = [
        name for name, kind in plain.items() if kind is not bool and typing.get_origin(kind) is not typing.Literal
    ]
    assert numeric and all(ranges(annotated[name]) for name in numeric), [
        n for n in numeric if not ranges(annotated[n])
    ]
