"""More bad input (issue 22): each case is one line and exit 2 from the command line, nasgym's own error type from the
API, or it works. Grouped by the issue's items."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import pickle
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from support import TINY, TINY_FLAGS, colour_folder, one_line_error, read_rows, toy_env, toy_reward

import nasgym  # noqa: F401
from nasgym.core import settings
from nasgym.core.config import EnvConfig, make_configs
from nasgym.core.errors import ArchitectureError, ConfigError, NasGymError, NasGymWarning, RewardCacheError
from nasgym.core.evaluation import NO_ACCURACY, Evaluation
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.progress import bars_disabled
from nasgym.core.reward_cache import RewardCache
from nasgym.core.sampling import stratified_networks
from nasgym.core.training import TrainConfig
from nasgym.core.vector_env import NASVectorEnv
from nasgym.runners.cli import _one_line_warnings, main
from nasgym.runners.run_folder import RunFolder
from nasgym.runners.search import SearchSettings, run_search


def zophle(**options) -> gym.Env:
    return gym.make("NAS-ZophLe-v0", evaluator=FunctionEvaluator(lambda network: 0.5), layers=2, **options)


# -- 1: info["accuracy"] of an unrewarded step is -1.0, a number equal to itself ------------------------------------
def test_gymnasiums_checker_passes_on_final_rewards():
    env = toy_env(reward="final")
    check_env(env.unwrapped, skip_render_check=True)  # compares the infos of two identical steps with ==


def test_both_envs_report_the_same_finite_sentinel():
    assert Evaluation.none().accuracy == NO_ACCURACY == -1.0
    for env, action in ((toy_env(reward="final"), 1), (zophle(), 1)):
        env.reset()
        _, reward, _, _, info = env.step(action)
        assert (reward, info["rewarded"], info["accuracy"], info["parameters"]) == (0.0, False, -1.0, -1)


def test_a_search_logs_no_accuracy_on_unrewarded_steps(tmp_path):
    run_search(tmp_path, SearchSettings("random", "toy", 12), progress=False, env=toy_env(reward="final"))
    rows = RunFolder(tmp_path).episodes()
    assert any(row.rewarded for row in rows) and any(not row.rewarded for row in rows)
    assert all(row.accuracy is None for row in rows if not row.rewarded)  # the sentinel never reaches the log
    unfinished = [cells for cells in read_rows(tmp_path / "episodes.csv") if cells["terminated"] == "False"]
    assert unfinished and all(cells["accuracy"] == "" for cells in unfinished)
    best = json.loads((tmp_path / "summary.json").read_text())["best"]
    assert best and all(entry["reward"] >= 0 for entry in best)


# -- 2: sizes are bounded, and the bound is named ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"filters": 10_000_000}, "filters must be at most 65,536, got 10,000,000"),
        ({"dense_units": 10**9}, "dense_units must be at most 1,000,000"),
        ({"max_filters": 10**6}, "max_filters must be at most 65,536"),
        ({"max_filters": None, "filter_growth": 1000.0}, "above the limit of 65,536"),
        ({"max_filters": None, "filter_growth": 2.0, "filters": 64, "max_layers": 12}, "convolution 12 131,072"),
    ],
)
def test_network_sizes_have_a_named_limit(options, message):
    with pytest.raises(ConfigError) as error:
        toy_env(**options)
    assert message.replace("131,072", "1.31e+05") in str(error.value)
    assert "\n" not in str(error.value)


def test_growth_up_to_the_limit_is_fine():
    env = toy_env(max_filters=None, filter_growth=2.0, filters=64, max_layers=11)  # 64 * 2**10 = 65,536
    assert env.unwrapped.train_config.network.conv_filters(10) == 65_536


def test_zophle_depth_has_a_limit(capsys, tmp_path):
    with pytest.raises(ConfigError, match="layers must be at most 100, got 100,000"):
        gym.make("NAS-ZophLe-v0", evaluator=FunctionEvaluator(lambda network: 0.5), layers=100_000)
    argv = ["search", "--env", "NAS-ZophLe-v0", "--layers", "100000", "--out", str(tmp_path / "run"), *TINY_FLAGS]
    assert "layers must be at most 100" in one_line_error(argv, capsys)


@pytest.mark.parametrize(
    "flags",
    [
        ["--filters", "10000000"],
        ["--dense-units", "1000000000"],
        ["--max-filters", "none", "--filter-growth", "1000"],
    ],
)
def test_huge_sizes_on_the_command_line_are_one_line(flags, capsys, tmp_path):
    error = one_line_error(["search", "--out", str(tmp_path / "run"), "--no-progress", *flags, *TINY_FLAGS], capsys)
    assert "65,536" in error or "1,000,000" in error
    assert not RunFolder(tmp_path / "run").holds_search()


def test_a_sample_larger_than_the_space_stops_at_once():
    with pytest.raises(ConfigError, match=r"found only .* distinct valid networks of the 1000000 asked for"):
        stratified_networks(1_000_000, seed=0, image_size=4, max_layers=2)


# -- 3: a float setting must be finite ---------------------------------------------------------------------------
FLOAT_SETTINGS = [s for s in settings.settings_of(EnvConfig, TrainConfig) if "float" in str(s.type)]


def test_the_float_settings_are_the_expected_ones():
    names = {s.name for s in FLOAT_SETTINGS}
    assert {"learning_rate", "adam_epsilon", "betas", "dropout", "filter_growth", "ws_learning_rate"} <= names
    assert {"ray_task_cpus", "ray_task_gpus", "reward_exponent", "train_fraction", "test_fraction"} <= names


@pytest.mark.parametrize("value", [math.inf, -math.inf])
@pytest.mark.parametrize("setting", FLOAT_SETTINGS, ids=lambda s: s.name)
def test_every_float_setting_refuses_infinity(setting, value):
    bad = value if "tuple" not in str(setting.type) else (value, *setting.default[1:])
    with pytest.raises(ConfigError, match=f"{setting.name} must be a finite number, got .*inf"):
        make_configs({setting.name: bad})


def test_a_field_may_allow_infinity():
    @dataclasses.dataclass(frozen=True)
    class Limits:
        budget: float = dataclasses.field(default=1.0, metadata={settings.ALLOWS_INFINITY: True})
        rate: float = 1.0

        def __post_init__(self) -> None:
            settings.check_fields(self)

    assert Limits(budget=math.inf).budget == math.inf
    with pytest.raises(ConfigError, match="rate must be a finite number, got inf"):
        Limits(rate=math.inf)


@pytest.mark.parametrize(
    "flags", [["--adam-epsilon", "inf"], ["--ray-task-cpus", "inf"], ["--ws-learning-rate", "inf"]]
)
def test_infinite_flags_are_one_line(flags, capsys):
    error = one_line_error(["train", "c3", *flags, *TINY_FLAGS], capsys)
    assert f"{flags[0][2:].replace('-', '_')} must be a finite number, got inf" in error


def test_an_infinite_weight_sharing_rate_is_refused_by_the_api():
    with pytest.raises(ConfigError, match="ws_learning_rate must be a finite number"):
        gym.make("NAS-v0", reward_source="weight_sharing", ws_learning_rate=math.inf)


# -- 4: damaged run folders on --resume --------------------------------------------------------------------------
STEPS = 10


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory) -> Path:
    """A random search of STEPS steps on the toy reward, its checkpoint at the last step."""
    out = tmp_path_factory.mktemp("search") / "run"
    run_search(out, SearchSettings("random", "toy", STEPS), progress=False, checkpoint_seconds=0, env=toy_env())
    return out


def damaged(finished_search: Path, tmp_path: Path, name: str, change) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_search, out)
    path = out / name
    path.write_bytes(change(path.read_bytes()))
    return out


def resume(out: Path, steps: int = STEPS + 2) -> dict:
    return run_search(out, SearchSettings("random", "toy", steps), resume=True, progress=False, env=toy_env())


def lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def test_a_row_torn_by_a_crash_is_dropped_and_the_search_resumes(finished_search, tmp_path):
    """A crash while step 11 was written (the checkpoint at step 10) leaves half a row without its line end."""
    out = damaged(finished_search, tmp_path, "episodes.csv", lambda data: data + b"11,4,0,2,3,c3-m")
    resume(out)
    assert [row.step for row in RunFolder(out).episodes()] == list(range(1, STEPS + 3))
    assert (out / "episodes.csv").read_bytes().endswith(b"\r\n")


def test_a_torn_row_ending_inside_a_character_is_dropped_too(finished_search, tmp_path):
    out = damaged(finished_search, tmp_path, "episodes.csv", lambda data: data + "11,5,0,1,2,c5-é".encode()[:-1])
    assert len(RunFolder(out).episodes()) == STEPS
    resume(out)


def test_a_byte_order_mark_is_read_past(finished_search, tmp_path):
    out = damaged(finished_search, tmp_path, "episodes.csv", lambda data: b"\xef\xbb\xbf" + data)
    resume(out)
    assert [row.step for row in RunFolder(out).episodes()] == list(range(1, STEPS + 3))


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (lambda data: data + lines(data)[-1], f"{STEPS + 2}", f"step {STEPS} where step {STEPS + 1} belongs"),
        (lambda data: data + b"hello,world\r\n", f"{STEPS + 2}", "2 cells where the header has 16"),
        (lambda data: b"".join([*lines(data)[:3], b"garbage\r\n", *lines(data)[3:]]), "4", "1 cells where the header"),
        (lambda data: data.replace(b"\n5,", b"\nfive,", 1), "6", "step 'five' is not a whole number"),
        (lambda data: random.Random(1).randbytes(400) + b"\n", r"\d+", r"not text \(random bytes\?\)"),
        (lambda data: b"a,b,c\r\n1,2,3\r\n", "1", "not the header nasgym writes"),
    ],
    ids=["repeated-last-row", "garbage-row", "garbage-in-the-middle", "bad-step", "random-bytes", "foreign-header"],
)
def test_other_damage_is_one_line_naming_file_and_line(finished_search, tmp_path, change, line, message):
    out = damaged(finished_search, tmp_path, "episodes.csv", change)
    before = (out / "episodes.csv").read_bytes()
    with pytest.raises(NasGymError) as error:
        resume(out)
    text = str(error.value)
    assert re.search(f"{re.escape(str(out / 'episodes.csv'))} line {line}: .*{message}", text) and "\n" not in text
    assert "restore it from a copy, or start a new search in another --out" in text
    assert (out / "episodes.csv").read_bytes() == before  # refused before anything was rewritten


def test_a_non_numeric_reward_names_its_column(finished_search, tmp_path):
    def change(data: bytes) -> bytes:
        rows = lines(data)
        cells = rows[3].split(b",")
        cells[6] = b"abc"  # the reward column
        return b"".join([*rows[:3], b",".join(cells), *rows[4:]])

    out = damaged(finished_search, tmp_path, "episodes.csv", change)
    with pytest.raises(NasGymError, match=r"episodes.csv line 4: reward 'abc' is not a finite number"):
        resume(out)


def test_a_progress_log_of_random_bytes_is_one_line_and_deleting_it_resumes(finished_search, tmp_path):
    out = damaged(finished_search, tmp_path, "progress.csv", lambda data: random.Random(2).randbytes(300) + b"\n")
    with pytest.raises(NasGymError, match=r"progress.csv line \d+: not text .*delete it to resume without"):
        resume(out)
    (out / "progress.csv").unlink()
    resume(out)
    assert len(RunFolder(out).episodes()) == STEPS + 2


def test_a_damaged_log_is_one_line_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--steps", "4", "--out", str(out), "--no-progress", *TINY_FLAGS]
    assert main(argv) == 0
    capsys.readouterr()
    data = (out / "episodes.csv").read_bytes()
    (out / "episodes.csv").write_bytes(data + lines(data)[-1])
    error = one_line_error([*argv[:2], "6", *argv[3:], "--resume"], capsys)
    assert "episodes.csv line 6: step 4 where step 5 belongs" in error


# -- 5 and 8: a reward cache row nasgym cannot have written ---------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("accuracy", "abc", "accuracy 'abc'"), ("parameters", "x", "parameters 'x'"), ("accuracy", math.inf, "inf")],
)
def test_a_cache_row_with_text_or_inf_for_a_number_is_refused(tmp_path, column, value, shown):
    path = tmp_path / "rewards.sqlite"
    cache = RewardCache(path)
    cache.put("k1", Evaluation("c3", 0.5, 1.0, 100), "toy", {})
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE rewards SET {column} = ?", (value,))
    for read in (lambda: cache.get("k1"), lambda: cache.claim(["k1"])):
        with pytest.raises(RewardCacheError) as error:
            read()
        assert shown in str(error.value) and "DELETE FROM rewards WHERE key = 'k1'" in str(error.value)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM rewards WHERE key = 'k1'")  # what the message says to do
    assert cache.get("k1") is None
    cache.close()


def test_a_cached_infinite_accuracy_is_not_printed_as_a_result(tmp_path, capsys):
    argv = ["train", "c3-m2", *TINY_FLAGS, "--cache-path", str(tmp_path / "rewards.sqlite")]
    assert main(argv) == 0
    with sqlite3.connect(tmp_path / "rewards.sqlite") as db:
        db.execute("UPDATE rewards SET accuracy = ?", (math.inf,))
    capsys.readouterr()
    error = one_line_error(argv, capsys)
    assert "accuracy inf" in error and "DELETE FROM rewards" in error


# -- 6: empty lists and other values that name nothing ------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["transfer", "--eval", ""], "argument --eval: expected one or more comma-separated names, got ''"),
        (["transfer", "--train", ",,,"], "argument --train: expected one or more comma-separated names"),
        (["search", "--env", "NAS-ZophLe-v0", "--curriculum", "1:0:1"], "START, STEP and EVERY must be >= 1"),
        (["search", "--env", "NAS-ZophLe-v0", "--curriculum", ""], "--curriculum takes START:STEP:EVERY"),
    ],
)
def test_lists_and_schedules_that_name_nothing_are_refused(argv, message, capsys, tmp_path):
    assert message in one_line_error([*argv, "--out", str(tmp_path / "out")], capsys)
    assert not (tmp_path / "out").exists()


def test_a_data_dir_that_is_a_file_is_refused(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for data_dir in (afile, afile / "below"):
        error = one_line_error(["data", "list", "--data-dir", str(data_dir)], capsys)
        assert f"{afile} is a file, so nasgym cannot keep data in {data_dir}; move the file away" in error
    assert "is a file" in one_line_error(["data", "prepare", "dtd", "--data-dir", str(afile)], capsys)
    assert afile.read_text() == "x"


# -- 7: the API ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", [True, False, np.True_, None, "x", 1.5, [1], -1, 8])
@pytest.mark.parametrize("make", [toy_env, zophle], ids=["NAS-v0", "NAS-ZophLe-v0"])
def test_what_is_not_an_action_is_an_architecture_error(make, action):
    env = make()
    env.reset()
    with pytest.raises(ArchitectureError, match="outside the action space"):
        env.step(action)
    env.step(1)  # the env is unharmed


@pytest.mark.parametrize("actions", [[1], [1, 2, 3], [True, False], ["x", "y"], None, [1, [2]], [1.0, 2.0]])
def test_a_vector_env_takes_one_whole_number_per_copy(actions):
    env = NASVectorEnv(2, evaluator=FunctionEvaluator(toy_reward))
    env.reset()
    with pytest.raises(ArchitectureError, match="step takes 2 whole-number actions, one per copy"):
        env.step(actions)
    env.step([1, -1])


def test_a_vector_env_pickles_and_steps_after():
    env = NASVectorEnv(3, evaluator=FunctionEvaluator(toy_reward))
    env.reset()
    env.step([1, 1, 1])
    copy = pickle.loads(pickle.dumps(env))
    _, _, terminated, _, infos = copy.step([3, -1, 7])
    assert (infos["architecture"][0], infos["architecture"][2], list(terminated)) == ("c3-m2", "c3-t", [0, 0, 1])
    assert copy.envs[0].evaluator is copy.envs[2].evaluator  # still one shared evaluator


def test_a_path_is_a_folder_dataset(tmp_path):
    folder = colour_folder(tmp_path / "colours")
    env = gym.make("NAS-v0", dataset=pathlib.Path(folder), reward="final", **TINY)
    assert env.unwrapped.config.dataset == f"folder:{folder}"
    env.reset()
    for action in (1, 3, 7):
        _, reward, terminated, _, info = env.step(action)
    assert terminated and info["rewarded"] and info["failure"] == "" and reward > 0
    zophle_env = gym.make("NAS-ZophLe-v0", dataset=pathlib.Path(folder), layers=1, **TINY)
    assert zophle_env.unwrapped.config.dataset == f"folder:{folder}"


# -- 8: messages ---------------------------------------------------------------------------------------------------
def test_a_read_only_cache_warns_at_the_callers_line(tmp_path, monkeypatch):
    RewardCache(tmp_path / "rewards.sqlite").close()
    monkeypatch.setattr(RewardCache, "_writable", lambda self: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym.make("NAS-v0", dataset="digits", cache_path=str(tmp_path / "rewards.sqlite"), **TINY)
    mine = [w for w in caught if issubclass(w.category, NasGymWarning)]
    assert mine and all(w.filename == __file__ for w in mine), [(w.filename, w.lineno) for w in mine]


def test_the_command_line_prints_nasgyms_warnings_in_one_line():
    format_warning = _one_line_warnings(warnings.formatwarning)
    assert format_warning("read-only", NasGymWarning, "/x/nasgym/core/a.py", 3) == "nasgym: warning: read-only\n"
    assert "a.py:3: UserWarning: other" in format_warning("other", UserWarning, "a.py", 3)


def test_a_read_only_cache_warning_shows_no_source_line(tmp_path, small_disk):
    disk = small_disk("4m")
    command = [sys.executable, "-m", "nasgym", "train", "c3", *TINY_FLAGS, "--no-progress"]
    command += ["--cache-path", str(disk / "rewards.sqlite")]
    assert subprocess.run(command, capture_output=True, check=False).returncode == 0
    assert subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=False).returncode == 0
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "read-only" in line]
    assert warning == [f"nasgym: warning: the reward cache {disk / 'rewards.sqlite'} is read-only here: its rewards "
                       "are used, new ones will not be stored (choose a writable cache path to keep them)"]  # fmt: skip
    assert "reward_cache.py" not in result.stderr and "warn(" not in result.stderr


def test_no_progress_turns_off_the_image_cache_bar(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NASGYM_PROGRESS", raising=False)
    argv = ["train", "c3", *TINY_FLAGS, "--cache-path", str(tmp_path / "rewards.sqlite")]
    assert main([*argv, "--dataset", f"folder:{colour_folder(tmp_path / 'a')}"]) == 0
    assert "img" in capsys.readouterr().err  # the bar of the image cache being built
    assert main([*argv, "--dataset", f"folder:{colour_folder(tmp_path / 'b')}", "--no-progress"]) == 0
    assert "img" not in capsys.readouterr().err
    assert "NASGYM_PROGRESS" not in os.environ  # set for the command only


def test_the_progress_variable(monkeypatch):
    monkeypatch.setenv("NASGYM_PROGRESS", "0")
    assert bars_disabled() is True and bars_disabled(None) is True
    monkeypatch.setenv("NASGYM_PROGRESS", "1")
    assert bars_disabled() is False and bars_disabled(None) is None


def test_the_seed_is_given_once(tmp_path, capsys):
    argv = ["search", "--steps", "1", "--no-progress", *TINY_FLAGS]
    error = one_line_error([*argv, "--out", str(tmp_path / "a"), "--seed", "1", "--set", "seed=5"], capsys)
    assert "--seed 1 and --set seed=5 disagree; give the seed once" in error
    assert main([*argv, "--out", str(tmp_path / "b"), "--set", "seed=5"]) == 0
    assert main([*argv, "--out", str(tmp_path / "c"), "--seed", "5", "--set", "seed=5"]) == 0
    for run in ("b", "c"):
        assert json.loads((tmp_path / run / "run.json").read_text())["agent_options"]["seed"] == 5
