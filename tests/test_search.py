"""``run_search`` and ``nasgym search``: complete output, and interrupted searches that resume exactly."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from support import TINY, CtrlCAtStep, CtrlCEvaluator, toy_env
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import agents
from nasgym.runners.cli import main
from nasgym.runners.search import SearchSettings, run_search

AGENTS = ("random", "reinforce", "dqn", "meta_a2c")
SHORT = {"reinforce": {"architectures_per_update": 2}, "dqn": {"learning_starts": 4, "batch_size": 4}}
"""Hyperparameters that let each agent update within a few steps."""
DIGITS = {"max_samples": 150, **TINY}
METRICS = {
    "random": {"step"},
    "reinforce": {"step", "policy_loss", "entropy", "baseline"},
    "dqn": {"step", "loss", "exploration_rate"},
    "meta_a2c": {"step", "policy_loss", "value_loss", "entropy"},
}
"""Columns each agent's progress.csv must have."""


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def checkpoint_step(out: Path) -> int:
    return torch.load(out / "agent.pt", weights_only=True)["num_timesteps"]


@pytest.mark.parametrize("name", AGENTS)
def test_a_short_search_on_digits_leaves_complete_output(name: str, tmp_path: Path) -> None:
    settings = SearchSettings(name, "digits", 20, env_options=DIGITS, agent_options=SHORT.get(name, {}))
    summary = run_search(tmp_path, settings, progress=False)

    rows = read_rows(tmp_path / "episodes.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, 21))
    assert all(row["valid"] == "True" and row["accuracy"] for row in rows)  # per_step: every step is rewarded
    progress = read_rows(tmp_path / "progress.csv")
    assert METRICS[name] <= set(progress[0] if progress else {"step"})
    assert len(progress) > 0 or name == "random"
    scalars = EventAccumulator(str(tmp_path / "tensorboard"))
    scalars.Reload()
    assert [event.step for event in scalars.Scalars("search/best_reward")] == list(range(1, 21))
    assert agents.load(tmp_path / "agent.pt", toy_env()).num_timesteps == 20
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["steps"] == 20 and summary["best"][0]["reward"] > 0.2  # chance is 0.1 on ten digits
    assert summary["trained"] == summary["unique_networks"]  # a fresh cache: each network trained once
    assert (tmp_path / "search.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", AGENTS)
def test_an_interrupted_search_resumes_exactly(name: str, tmp_path: Path) -> None:
    """Ctrl-C mid-search, then resume: every file ends as if the search had never stopped."""
    settings = SearchSettings(name, "toy", 150, agent_options=SHORT.get(name, {}))
    run_search(tmp_path / "whole", settings, progress=False, checkpoint_seconds=0, env=toy_env())
    interrupted_env = gym.make("NAS-v0", evaluator=CtrlCEvaluator(after=90))
    with pytest.raises(KeyboardInterrupt):
        run_search(tmp_path / "cut", settings, progress=False, checkpoint_seconds=0, env=interrupted_env)
    written = len(read_rows(tmp_path / "cut" / "episodes.csv"))
    assert 0 < checkpoint_step(tmp_path / "cut") <= written < 150
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["steps"] == written

    run_search(tmp_path / "cut", settings, resume=True, progress=False, checkpoint_seconds=0, env=toy_env())
    for name_ in ("episodes.csv", "progress.csv", "summary.json"):
        assert (tmp_path / "cut" / name_).read_text() == (tmp_path / "whole" / name_).read_text(), name_
    scalars = EventAccumulator(str(tmp_path / "cut" / "tensorboard"))
    scalars.Reload()
    assert [event.step for event in scalars.Scalars("search/reward")] == list(range(1, 151))


def test_a_resumed_search_takes_evaluated_rewards_from_the_cache(tmp_path: Path) -> None:
    settings = SearchSettings("random", "digits", 16, env_options=DIGITS)
    with pytest.raises(KeyboardInterrupt):
        env = CtrlCAtStep(gym.make("NAS-v0", dataset="digits", **DIGITS), step=12)
        run_search(tmp_path, settings, progress=False, checkpoint_seconds=0, env=env)
    first = read_rows(tmp_path / "episodes.csv")
    resumed_from = checkpoint_step(tmp_path)
    assert resumed_from < len(first) == 11  # some evaluated steps came after the checkpoint

    run_search(tmp_path, settings, resume=True, progress=False)
    rows = read_rows(tmp_path / "episodes.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, 17))
    assert [row["architecture"] for row in rows[: len(first)]] == [row["architecture"] for row in first]
    redone = rows[resumed_from : len(first)]
    assert all(row["from_cache"] == "True" and row["trained"] == "False" for row in redone)
    assert [row["reward"] for row in redone] == [row["reward"] for row in first[resumed_from:]]


def test_killing_the_command_then_resuming_finishes_the_search(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "nasgym", "search", "--agent", "meta_a2c", "--dataset", "digits",
               "--steps", "24", "--epochs", "1", "--image-size", "16", "--batch-size", "64", "--device", "cpu",
               "--max-samples", "150", "--out", str(out), "--checkpoint-seconds", "0", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "episodes.csv").exists() and len(read_rows(out / "episodes.csv")) >= 6:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode == 130, error
    assert "interrupted" in error and "Traceback" not in error
    assert 6 <= len(read_rows(out / "episodes.csv")) < 24

    finished = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=os.environ, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert [int(row["step"]) for row in read_rows(out / "episodes.csv")] == list(range(1, 25))
    assert "best architecture:" in finished.stdout


def test_search_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["search", "--out", str(empty), "--resume"]) == 2
    assert "holds no search to resume" in capsys.readouterr().err
    assert main(["search", "--agent", "dqn", "--set", "m=8", "--out", str(tmp_path / "new")]) == 2
    assert "unknown dqn hyperparameter 'm'; known: activation, batch_size" in capsys.readouterr().err

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "episodes.csv").write_text("step\n")
    assert main(["search", "--out", str(taken)]) == 2
    assert "already holds a search; pass --resume" in capsys.readouterr().err
    (taken / "run.json").write_text(json.dumps({"agent": "dqn", "dataset": "digits", "steps": 5,
                                                "env_options": {}, "agent_options": {}}))  # fmt: skip
    assert main(["search", "--out", str(taken), "--resume"]) == 2
    assert "different settings" in capsys.readouterr().err


def test_reinforce_searches_final_rewards_and_tuple_options_resume(tmp_path: Path) -> None:
    common = ["--steps", "1", "--max-samples", "50", "--image-size", "16", "--epochs", "1", "--device", "cpu"]
    common += ["--no-progress"]
    assert main(["search", "--agent", "reinforce", "--out", str(tmp_path / "r"), *common]) == 0
    assert json.loads((tmp_path / "r" / "run.json").read_text())["env_options"]["reward"] == "final"
    dqn = ["search", "--agent", "dqn", "--set", "net_arch=(32, 32)", "--out", str(tmp_path / "d"), *common]
    assert main(dqn) == 0
    assert json.loads((tmp_path / "d" / "run.json").read_text())["env_options"]["reward"] == "per_step"
    assert main([*dqn, "--resume"]) == 0  # the stored list matches the given tuple
    assert agents.load(tmp_path / "d" / "agent.pt", toy_env()).config.net_arch == (32, 32)
