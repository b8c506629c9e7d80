"""Look-up tables: a table entry is the live reward, every recorded epoch answers, a killed build resumes to the same
table, and damaged, foreign or mismatched tables and networks outside a table are one-line errors."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.config import make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.lookup.build import build_table
from nasgym.core.lookup.plan import TablePlan, exhaustive, exhaustive_count, sample_depth
from nasgym.core.lookup.table import Table, TableError, TableFile, describe
from nasgym.core.search_space import Architecture

SETTINGS = {"dataset": "digits", "image_size": 8, "epochs": 3, "batch_size": 64, "dense_units": 32, "device": "cpu"}
"""A table of digits at 8 px, 3 epochs: every training well under a second."""
PLAN = TablePlan(depth=1, deep_per_depth=1, seeds=(0, 1), seed_subset=3)


def build(path: Path, plan: TablePlan = PLAN, **changes) -> Table:
    env_config, train_config = make_configs({**SETTINGS, "max_layers": 3, **changes})
    build_table(path, env_config, train_config, plan, progress=False)
    return Table.load(path)


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("table") / "digits.jsonl"
    build(path)
    return path


def table_env(table_path: Path, **options) -> gym.Env:
    return gym.make("NAS-v0", reward_source="table", table_path=str(table_path), **{**SETTINGS, **options})


def test_the_plan_is_every_network_to_the_depth_and_a_sample_of_each_deeper_one():
    every = [Architecture(actions) for depth in range(3) for actions in itertools.product(range(7), repeat=depth)]
    valid = {str(n) for n in every if n.is_valid(8, 10)}
    assert {str(n) for n in exhaustive(8, 2)} == valid and exhaustive_count(8, 2) == len(valid) == 46
    drawn = sample_depth(16, 6, 20, np.random.default_rng(0))
    assert len({str(n) for n in drawn}) == 20 and all(len(n) == 6 and n.is_valid(16, 10) for n in drawn)
    jobs = PLAN.jobs(8, 3)
    assert len(jobs) == 8 + 2 + 3  # depth <= 1, one of depth 2 and of 3, three with seed 1
    assert [seed for _, seed in jobs[:10]] == [0] * 10


def test_a_table_entry_is_the_live_reward_of_every_recorded_epoch(table_path: Path):
    table = Table.load(table_path)
    network, seed = "c3", 1 if ("c3", 1) in table.entries else 0
    for epochs in (1, 2, 3):
        looked_up = table_env(table_path, epochs=epochs, seed=seed, table_seed="train_seed")
        looked_up.reset()
        _, reward, _, _, info = looked_up.step(1)
        live = gym.make("NAS-v0", **{**SETTINGS, "epochs": epochs, "seed": seed, "cache": False})
        live.reset()
        _, live_reward, _, _, live_info = live.step(1)
        assert info["reward_source"] == "table" and live_info["reward_source"] == "trained"
        assert reward == live_reward == table.accuracy(table.entry(network, seed), epochs)
        assert info["parameters"] == live_info["parameters"] and info["train_seconds"] > 0
    with pytest.raises(ConfigError, match=r"epochs=4 .*recorded epochs 1\.\.3"):
        table_env(table_path, epochs=4)


def test_the_table_mode_passes_both_env_checkers_and_trains_nothing(table_path: Path):
    env = table_env(table_path)
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)
    env.reset()
    env.step(2)
    assert env.unwrapped.evaluator.stats.trained == 0 and env.unwrapped.config.max_layers == 1


def test_drawn_seeds_differ_between_training_seeds_and_repeat_within_one(table_path: Path):
    table = Table.load(table_path)
    two_seeds = [n for n, seeds in table.seeds_of.items() if len(seeds) == 2]
    drawn = {
        seed: [table_env(table_path, seed=seed).unwrapped.evaluator.seed_for(n) for n in two_seeds] for seed in range(6)
    }
    assert all(set(seeds) <= {0, 1} for seeds in drawn.values())
    assert len({tuple(seeds) for seeds in drawn.values()}) > 1
    evaluator = table_env(table_path, seed=3).unwrapped.evaluator
    assert evaluator.seed_for(two_seeds[0]) == evaluator.seed_for(two_seeds[0])


def test_a_network_outside_the_table_and_other_settings_are_one_line_errors(table_path: Path):
    env = table_env(table_path, max_layers=3)
    env.reset()
    env.step(0)
    with pytest.raises(TableError, match=r"has no training of c1-c1: it holds \d+ networks, every one of depth <= 1"):
        env.step(0)
    with pytest.raises(ConfigError, match=r"learning_rate=0\.01 .*trained with 0\.001") as error:
        table_env(table_path, learning_rate=0.01)
    assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="image_size=10"):
        table_env(table_path, image_size=10)
    with pytest.raises(ConfigError, match="reward_source='table' runs in this process"):
        table_env(table_path, backend="ray")


def test_damaged_and_foreign_table_files_are_one_line_errors(table_path: Path, tmp_path: Path):
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"format": "something else"}\n')
    with pytest.raises(TableError, match="is not a nasgym look-up table"):
        Table.load(foreign)
    lines = table_path.read_text().splitlines(keepends=True)
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("".join([*lines[:3], '["c3", 0, "not a curve"]\n', *lines[3:]]))
    with pytest.raises(TableError, match=r"damaged\.jsonl, line 4 is damaged"):
        Table.load(damaged)
    newer = tmp_path / "newer.jsonl"
    header = {**json.loads(lines[0]), "format_version": 99}
    newer.write_text(json.dumps(header) + "\n" + "".join(lines[1:]))
    with pytest.raises(TableError, match="version-99 table"):
        Table.load(newer)
    torn = tmp_path / "torn.jsonl"
    torn.write_text("".join(lines) + lines[-1][:10])  # what a build killed mid-write leaves
    assert len(Table.load(torn).entries) == len(lines) - 1
    with pytest.raises(TableError, match=r"built with other settings .*epochs: 3 there, 2 asked"):
        build(torn, epochs=2)


def test_a_build_killed_at_any_point_resumes_to_the_uninterrupted_table(table_path: Path, tmp_path: Path):
    path = tmp_path / "killed.jsonl"
    command = [
        sys.executable,
        "-m",
        "nasgym",
        "table",
        "build",
        str(path),
        "--no-progress",
        *[f"--{k.replace('_', '-')}={v}" for k, v in SETTINGS.items()],
        "--max-layers=3",
        "--depth=1",
        "--deep-per-depth=1",
        "--seeds=0,1",
        "--seed-subset=3",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not path.exists() or path.read_text().count("\n") < 4):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = TableFile(path)
    assert 3 <= len(killed.entries) < len(Table.load(table_path).entries)
    resumed = build(path)
    expected = Table.load(table_path)
    assert resumed.entries.keys() == expected.entries.keys()
    for key, entry in expected.entries.items():
        got = resumed.entries[key]
        assert (got.reward_correct, got.test_correct, got.parameters, got.flops) == (
            entry.reward_correct,
            entry.test_correct,
            entry.parameters,
            entry.flops,
        )
    assert path.read_text().count("\n") == len(expected.entries) + 1  # no line twice


def test_the_shipped_table_needs_no_data_and_no_training():
    env = gym.make("NAS-v0", dataset="omniglot_small1", reward_source="table")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(1)
    assert 0 < reward < 1 and info["reward_source"] == "table"
    assert env.unwrapped.config.image_size == 16 and env.unwrapped.evaluator.stats.trained == 0
    assert str(Architecture.parse("c3")) in env.unwrapped.evaluator.table.seeds_of


def test_the_surrogate_answers_every_network_refitted_without_unpickling(table_path: Path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the surrogate must not unpickle anything")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    env = gym.make("NAS-v0", reward_source="surrogate", table_path=str(table_path), **{**SETTINGS, "max_layers": 3})
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)
    env.reset()
    rewards = [env.step(action)[1] for action in (1, 0, 0)]  # c3-c1-c1: deeper than the table's every-network depth
    assert all(0 <= reward <= 1 for reward in rewards)
    evaluator = env.unwrapped.evaluator
    deep = Architecture.parse("c3-c1-c1")
    assert evaluator.evaluate([deep])[0].accuracy == rewards[-1]
    assert evaluator.evaluate([deep])[0].source == "surrogate"
    table = Table.load(table_path)
    assert evaluator.surrogate.noise_sd == pytest.approx(table.seed_sd())
    other_seed = gym.make(
        "NAS-v0", reward_source="surrogate", table_path=str(table_path), seed=5, **{**SETTINGS, "max_layers": 3}
    )
    if evaluator.surrogate.noise_sd > 0:
        assert other_seed.unwrapped.evaluator.evaluate([deep])[0].accuracy != rewards[-1]


def test_the_surrogate_predicts_each_network_once_and_answers_repeats_from_memory(table_path: Path):
    env = gym.make("NAS-v0", reward_source="surrogate", table_path=str(table_path), **{**SETTINGS, "max_layers": 3})
    evaluator = env.unwrapped.evaluator
    predicted: list[str] = []
    predict = evaluator.surrogate.predict

    def counted(networks):
        predicted.extend(str(network) for network in networks)
        return predict(networks)

    evaluator.surrogate.predict = counted
    networks = [Architecture.parse(text) for text in ("c3-c1-c1", "c1", "c3-c1-c1", "c5-m2")]
    first = evaluator.evaluate(networks)
    again = evaluator.evaluate(networks[::-1])
    assert predicted == ["c3-c1-c1", "c1", "c5-m2"]  # one batch of the distinct new networks, then none
    assert [a.accuracy for a in again] == [a.accuracy for a in first[::-1]]
    fresh = gym.make("NAS-v0", reward_source="surrogate", table_path=str(table_path), **{**SETTINGS, "max_layers": 3})
    assert [a.accuracy for a in fresh.unwrapped.evaluator.evaluate(networks)] == [a.accuracy for a in first]
    assert evaluator.stats.cache_hits == 8  # every answer counted, as before the memory


def test_a_second_build_of_the_same_table_file_is_refused_until_the_first_ends(table_path: Path, tmp_path: Path):
    copy = tmp_path / "digits.jsonl"
    copy.write_bytes(table_path.read_bytes())
    header = Table.load(copy).header
    first = TableFile(copy, header)
    with pytest.raises(TableError, match=r"another 'nasgym table build' is writing .*digits\.jsonl; wait for it"):
        TableFile(copy, header)
    assert Table.load(copy).networks == Table.load(table_path).networks  # readers are never refused
    del first  # the builder's process ends: its lock goes with it
    assert TableFile(copy, header).entries.keys() == Table.load(table_path).entries.keys()


def test_a_table_is_complete_when_it_holds_every_planned_training(table_path: Path, tmp_path: Path):
    assert Table.load(table_path).complete and len(Table.load(table_path).planned) == len(
        Table.load(table_path).entries
    )
    growing = tmp_path / "digits.jsonl"
    growing.write_text("".join(table_path.read_text().splitlines(keepends=True)[:-1]))
    table = Table.load(growing)
    assert not table.complete and "still being built: " in describe(table)
