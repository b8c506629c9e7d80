"""Typed settings end to end: ``NAS-v0``'s grouped configs, ``SearchSettings`` parsed once, and the one layering of
a command's values (flag typed > protocol > mode default > argparse default)."""

from __future__ import annotations

import argparse
import dataclasses

import gymnasium as gym
import pytest

import envs_data
import nasgym  # noqa: F401 -- registers NAS-v0
from nasgym.core.config import EnvConfig
from nasgym.core.errors import ConfigError
from nasgym.core.lookup.table import complete_names
from nasgym.core.training import TrainConfig
from nasgym.runners.cli import bench as bench_cli
from nasgym.runners.cli import build_parser
from nasgym.runners.cli import transfer as transfer_cli
from nasgym.runners.cli.options import Given, layer
from nasgym.runners.search import SearchSettings


def _configs(env: gym.Env) -> tuple[EnvConfig, TrainConfig]:
    return env.unwrapped.config, env.unwrapped.train_config


def test_grouped_configs_give_the_settings_of_the_flat_keywords():
    flat = gym.make("NAS-v0", dataset="digits", epochs=1, image_size=16, max_layers=4, cache=False)
    grouped = gym.make(
        "NAS-v0",
        dataset="digits",
        env_config=EnvConfig(image_size=16, max_layers=4, cache=False),
        train_config=TrainConfig(epochs=1),
    )
    mixed = gym.make("NAS-v0", env_config=EnvConfig(image_size=16, max_layers=4, cache=False), epochs=1)
    assert _configs(flat) == _configs(grouped) == _configs(mixed)
    assert grouped.observation_space == flat.observation_space
    for env in (flat, grouped, mixed):
        env.close()


@pytest.mark.parametrize(
    ("keywords", "named"),
    [
        ({"env_config": EnvConfig(), "image_size": 16}, "image_size"),
        ({"train_config": TrainConfig(), "epochs": 1}, "epochs"),
        ({"env_config": EnvConfig(dataset="omniglot_small1"), "dataset": "digits"}, "dataset"),
        ({"env_config": TrainConfig()}, "env_config"),
    ],
)
def test_a_setting_given_twice_is_a_one_line_config_error(keywords, named):
    with pytest.raises(ConfigError, match=named) as error:
        gym.make("NAS-v0", **keywords)
    assert "\n" not in str(error.value)


def test_a_bad_env_option_fails_when_the_search_settings_are_made():
    with pytest.raises(ConfigError, match="epochs"):
        SearchSettings("random", "digits", 4, env_options={"epochs": "many"})
    with pytest.raises(ConfigError, match="image_sise"):
        SearchSettings("random", "digits", 4, env_options={"image_sise": 16})


def test_search_settings_read_typed_configs_and_store_the_dict():
    settings = SearchSettings("random", "digits", 4, env_options={"epochs": 2, "reward_source": "trained"})
    env_config, train_config = settings.configs
    assert (env_config.dataset, train_config.epochs) == ("digits", 2)
    assert dataclasses.asdict(settings)["env_options"] == {"epochs": 2, "reward_source": "trained"}
    assert SearchSettings(**dataclasses.asdict(settings)).comparable() == settings.comparable()
    changed = dataclasses.replace(settings, env_options={"epochs": 3})
    assert changed.configs[1].epochs == 3


def test_layer_takes_the_first_layer_that_has_a_value():
    parser = argparse.ArgumentParser()
    for name in ("a", "b", "c", "d"):
        parser.add_argument(f"--{name}", type=int, action=Given, default=0)
    args = parser.parse_args(["--a", "1"])
    protocol, mode = {"a": 2, "b": 2}, {"a": 3, "b": 3, "c": 3}
    assert layer(args, "abcd", protocol, mode) == {"a": 1, "b": 2, "c": 3, "d": 0}


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_bench_layers_flag_over_protocol_over_table_defaults_over_argparse():
    defaults, table = envs_data.load("experiments")["bench"], envs_data.load("experiments")["bench_table"]
    plain = bench_cli.settings_from(_args("bench", "agents"))
    assert (plain.datasets, plain.steps, plain.seeds) == (defaults["datasets"], defaults["steps"], defaults["seeds"])
    tables = bench_cli.settings_from(_args("bench", "agents", "--reward-source", "table"))
    assert (tables.datasets, tables.steps, tables.seeds) == (complete_names(), table["steps"], table["seeds"])
    protocol = bench_cli.settings_from(_args("bench", "agents", "--reward-source", "table", "--protocol", "nasgym2019"))
    assert protocol.datasets == ["omniglot", "vgg_flower", "dtd"] and protocol.seeds == table["seeds"]
    typed = _args("bench", "agents", "--reward-source", "table", "--protocol", "nasgym2019", "--datasets", "digits")
    flags = bench_cli.settings_from(typed)
    assert flags.datasets == ["digits"] and flags.steps == table["steps"]
    assert bench_cli.settings_from(_args("bench", "agents", "--reward-source", "table", "--steps", "7")).steps == 7


def test_transfer_layers_flag_over_protocol_over_table_defaults_over_argparse():
    defaults, table = envs_data.load("experiments")["transfer"], envs_data.load("experiments")["transfer_table"]
    plain = transfer_cli.settings_from(_args("transfer"))
    assert (plain.steps_eval, plain.seeds) == (defaults["steps_eval"], defaults["seeds"])
    tables = transfer_cli.settings_from(_args("transfer", "--reward-source", "table"))
    assert (tables.steps_train, tables.steps_eval, tables.seeds) == (
        table["steps_train"],
        table["steps_eval"],
        table["seeds"],
    )
    protocol = transfer_cli.settings_from(_args("transfer", "--reward-source", "table", "--protocol", "nasgym2019"))
    assert protocol.steps_eval == 2000 and protocol.steps_train == table["steps_train"]
    flags = transfer_cli.settings_from(
        _args("transfer", "--reward-source", "table", "--protocol", "nasgym2019", "--steps-eval", "5")
    )
    assert flags.steps_eval == 5 and flags.seeds == table["seeds"]


def test_a_bad_env_option_fails_when_bench_or_transfer_settings_are_made():
    from nasgym.runners.experiments.bench import BenchSettings
    from nasgym.runners.experiments.transfer import TransferSettings

    for options, named in (({"epochs": "many"}, "epochs"), ({"image_sise": 16}, "image_sise")):
        with pytest.raises(ConfigError, match=named) as error:
            BenchSettings(["digits"], ["random"], 4, env_options=options)
        assert "\n" not in str(error.value)
        with pytest.raises(ConfigError, match=named):
            TransferSettings("meta_a2c", ["digits"], ["omniglot_small1"], 4, 4, env_options=options)
    with pytest.raises(ConfigError, match="image_sise"):  # with a table too, checked before any table is opened
        BenchSettings(["no_such_table"], ["random"], 4, env_options={"reward_source": "table", "image_sise": 16})
    with pytest.raises(ConfigError, match="reward"):  # an agent's own keywords are checked as well
        BenchSettings(["digits"], ["random"], 4, agent_env={"random": {"reward": "sometimes"}})


def test_bench_and_transfer_settings_store_the_keywords_and_read_typed_configs():
    from nasgym.runners.experiments.bench import BenchSettings
    from nasgym.runners.experiments.transfer import TransferSettings

    bench = BenchSettings(["digits", "omniglot_small1"], ["random"], 4, env_options={"epochs": 2},
                          agent_env={"random": {"reward": "final"}})  # fmt: skip
    stored = dataclasses.asdict(bench)
    assert "typed" not in stored and stored["env_options"] == {"epochs": 2}
    assert [s.env.dataset for s in bench.typed.datasets.values()] == ["digits", "omniglot_small1"]
    assert bench.typed.agents["random"].env.reward == "final" and not bench.typed.uses_tables
    bench.env_options = {**bench.env_options, "epochs": 3}  # as run_bench rewrites it: parsed again
    assert bench.typed.datasets["digits"].train.epochs == 3
    assert BenchSettings(**stored).typed.datasets["digits"].train.epochs == 2
    transfer = TransferSettings(
        "meta_a2c", ["digits"], ["omniglot_small1"], 4, 4, env_options={"reward_source": "table"}
    )
    assert set(dataclasses.asdict(transfer)) == {f.name for f in dataclasses.fields(TransferSettings)}
    assert transfer.typed.uses_tables and set(transfer.typed.agents) == {"meta_a2c", "random", "dqn"}
    assert transfer.typed.datasets["omniglot_small1"].env.max_layers >= 1  # the table's depth, read on first use
