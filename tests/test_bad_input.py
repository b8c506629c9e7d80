"""Bad or hostile input to the command line: one line saying what is wrong and what to do, exit 2, never a
traceback, never a silent wrong result, never a lost search. Cases run in-process through ``main``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from support import TINY_FLAGS, fill, leftovers, one_line_error, read_rows, run_command

from nasgym.runners.cli import main
from nasgym.runners.run_folder import RunFolder


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["search", "--steps", "-3"], "must be >= 1"),
        (["search", "--steps", "1e9x"], "--steps"),
        (["search", "--checkpoint-seconds", "-1"], "argument --checkpoint-seconds: must be >= 0"),
        (["search", "--checkpoint-seconds", "nan"], "must be a number, got nan"),
        (["search", "--epochs", "1.5"], "argument --epochs: --epochs must be an int, got 1.5"),
        (["search", "--betas", "0.9"], "--betas must be a tuple"),
        (["search", "--image-size", "0"], "image_size must be at least 1 pixel"),
        (["search", "--image-size", "100000", "--dataset", "digits"], "image_size must be a whole number of pixels"),
        (["search", "--reward", "sparse"], "--reward must be one of 'per_step', 'final', got 'sparse'"),
        (["search", "--agent", "meta_a2c", "--set", "n_steps=[1,2]"], "n_steps must be an int, got [1, 2]"),
        (["search", "--agent", "dqn", "--set", "colour=blue"], "unknown dqn hyperparameter 'colour'"),
        (["search", "--set", "novalue"], "expected NAME=VALUE"),
        (["search", "--frozen"], "give it with --start-from"),
        (["train", "c3-" * 5000 + "x"], "unknown layer 'x' in architecture 'c3-c3-c3"),
        (["train", "c3", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["train", "c3", "--max-samples", "1"], "max_samples must be at least 2"),
        (["train", "c3", "--max-samples", "2", "--image-size", "8"], "fewer than the 10 classes on one side"),
        (["train", "c3", "--device", "foo", "--image-size", "8"], "device must be 'cuda', 'cuda:N', 'cpu' or 'auto'"),
        (["train", "c3", "--train-seed", "-1", "--image-size", "8"], "seed must be in [0, 2**63)"),
        (["bench", "agents", "--agents", "random,alien"], "unknown agent(s) alien"),
        (["search", "--env", "NAS-ZophLe-v0", "--num-envs", "2"], "NAS-ZophLe-v0 runs one env"),
        (["search", "--curriculum", "2,1,3"], "--curriculum takes START:STEP:EVERY"),
        (["search", "--curriculum", "2:1:3"], "NAS-v0 has none"),
        (["search", "--env", "NAS-ZophLe-v0", "--retrain-top", "2"], "--retrain-top retrains a weight-sharing"),
    ],
)
def test_bad_flags_are_one_line(argv, message, capsys, tmp_path):
    error = one_line_error(
        [*argv, *(["--out", str(tmp_path / "out")] if argv[0] in ("search", "bench") else [])], capsys
    )
    assert message in error
    assert len(error) < 400


def test_an_out_that_is_a_file_or_under_one_is_refused(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "something is already there" in one_line_error(["search", "--out", str(afile), *TINY_FLAGS], capsys)
    error = one_line_error(["search", "--out", str(afile / "run"), *TINY_FLAGS], capsys)
    assert "is a file, not a folder" in error and str(afile) in error
    assert afile.read_text() == "x"


def test_a_cache_path_that_cannot_hold_a_cache_is_refused(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    argv = ["train", "c3", *TINY_FLAGS]
    assert "is a directory" in one_line_error([*argv, "--cache-path", str(tmp_path)], capsys)
    assert "cannot create the reward cache" in one_line_error([*argv, "--cache-path", str(afile / "r.sqlite")], capsys)
    monkeypatch.setenv("NASGYM_HOME", str(afile))
    assert "cannot create the reward cache" in one_line_error(argv, capsys)


def test_a_search_whose_agent_cannot_be_built_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    missing = tmp_path / "missing.pt"
    one_line_error(["search", "--out", str(out), "--start-from", str(missing), "--no-progress", *TINY_FLAGS], capsys)
    assert not RunFolder(out).holds_search()
    assert main(["search", "--out", str(out), "--steps", "2", "--no-progress", *TINY_FLAGS]) == 0


def test_a_checkpoint_of_another_agent_is_refused(tmp_path, capsys):
    first = tmp_path / "first"
    assert (
        main(["search", "--agent", "meta_a2c", "--steps", "3", "--out", str(first), "--no-progress", *TINY_FLAGS]) == 0
    )
    capsys.readouterr()
    argv = ["search", "--agent", "dqn", "--start-from", str(first / "agent.pt"), "--out", str(tmp_path / "second")]
    error = one_line_error([*argv, "--no-progress", *TINY_FLAGS], capsys)
    assert "holds a meta_a2c agent, not dqn" in error
    assert not RunFolder(tmp_path / "second").holds_search()


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_resume_refuses_a_log_that_disagrees_with_the_checkpoint(tmp_path, capsys, damage):
    out = tmp_path / "run"
    argv = ["search", "--steps", "8", "--out", str(out), "--no-progress", *TINY_FLAGS]
    assert main(argv) == 0
    capsys.readouterr()
    if damage == "deleted":
        RunFolder(out).episodes_file.unlink()
    else:
        RunFolder(out).episodes_file.write_text("")
    error = one_line_error([*argv[:2], "12", *argv[3:], "--resume"], capsys)
    assert "the checkpoint is at step 8 but episodes.csv holds 0 steps" in error


def test_resume_may_change_what_does_not_change_rewards(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--steps", "3", "--out", str(out), "--no-progress", *TINY_FLAGS]
    assert main(argv) == 0
    changed = [a if a != "cpu" else "auto" for a in argv]  # --device cpu -> auto
    assert main([*changed[:2], "5", *changed[3:], "--resume", "--cache-path", str(tmp_path / "other.sqlite")]) == 0
    assert len(read_rows(out / "episodes.csv")) == 5
    assert "different settings" in one_line_error([*argv[:2], "6", *argv[3:], "--resume", "--epochs", "2"], capsys)


def test_a_second_search_on_a_folder_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with RunFolder(out).locked():
        error = one_line_error(["search", "--out", str(out), "--no-progress", *TINY_FLAGS], capsys)
    assert f"{out} is in use by another search (pid {os.getpid()}" in error
    assert main(["search", "--out", str(out), "--steps", "2", "--no-progress", *TINY_FLAGS]) == 0  # released


def test_two_processes_on_one_folder_never_lose_a_search(tmp_path):
    """Started together (different seeds), one search runs and the other is refused: nothing is overwritten."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "nasgym", "search", "--steps", "100", "--out", str(out), "--no-progress"]
    first = subprocess.Popen([*command, "--seed", "1", *TINY_FLAGS], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "episodes.csv").exists() and time.monotonic() < deadline:  # the first search is running
        time.sleep(0.05)
    second = subprocess.run([*command, "--seed", "2", *TINY_FLAGS], capture_output=True, text=True, timeout=120)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert second.returncode == 2  # in use, or (on a machine fast enough to finish first) already holds a search
    assert "is in use by another search" in second.stderr or "already holds a search" in second.stderr
    assert json.loads(RunFolder(out).run_file.read_text())["agent_options"]["seed"] == 1
    assert len(read_rows(out / "episodes.csv")) == 100


def test_a_full_disk_stops_a_search_cleanly_and_resume_finishes_it(tmp_path, capsys, small_disk):
    disk = small_disk("4m")
    out = disk / "run"
    argv = ["search", "--steps", "6", "--out", str(out), "--no-progress", "--checkpoint-seconds", "0", *TINY_FLAGS]
    argv += ["--cache-path", str(tmp_path / "rewards.sqlite")]
    assert main(argv) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    filler = fill(disk)
    error = one_line_error([*argv[:2], "12", *argv[3:], "--resume"], capsys)
    assert "no space left" in error and "--resume" in error
    assert not leftovers(out)
    for name in ("episodes.csv", "run.json", "summary.json", "agent.pt"):
        assert (out / name).read_bytes()[: len(before[name])] == before[name][: len((out / name).read_bytes())]
        assert len(RunFolder(out).episodes()) >= 6
    filler.unlink()
    assert main([*argv[:2], "12", *argv[3:], "--resume"]) == 0
    assert [row.step for row in RunFolder(out).episodes()] == list(range(1, 13))


def test_a_read_only_cache_still_answers_what_it_holds(tmp_path, capsys, small_disk):
    disk = small_disk("4m")
    cache = disk / "rewards.sqlite"
    argv = ["train", "c3-m2", *TINY_FLAGS, "--cache-path", str(cache)]
    assert main(argv) == 0 and "trained now" in capsys.readouterr().out
    assert run_command("mount", "-o", "remount,ro", str(disk)).returncode == 0
    with pytest.warns(UserWarning, match="read-only here: its rewards are used, new ones will not be stored"):
        assert main(argv) == 0
    assert "answered from the reward cache" in capsys.readouterr().out
    with pytest.warns(UserWarning):
        assert main(["train", "c3", *TINY_FLAGS, "--cache-path", str(cache)]) == 0
    assert "trained now" in capsys.readouterr().out


def test_an_out_on_a_read_only_disk_is_refused(capsys, small_disk):
    disk = small_disk("1m", read_only=True)
    error = one_line_error(["search", "--out", str(disk / "run"), "--no-progress", *TINY_FLAGS], capsys)
    assert "read-only filesystem" in error and str(disk) in error
