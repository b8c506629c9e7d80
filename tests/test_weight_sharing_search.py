"""Searches with ``reward_source="weight_sharing"``: interrupted ones resume exactly (the shared weights travel in
the checkpoint), and ``--retrain-top`` trains what the cheap search found."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
import torch
from support import CtrlCAtStep

from nasgym.core.search_space import Architecture
from nasgym.runners.cli import main
from nasgym.runners.search import SearchSettings, run_search

WS = {"image_size": 16, "batch_size": 32, "device": "cpu", "max_samples": 300, "reward_source": "weight_sharing"}
WS = {**WS, "ws_steps": 2, "ws_valid_samples": 64, "ws_warmup": 4, "ws_head": "per_shape"}
SHORT = {"dqn": {"learning_starts": 4, "batch_size": 4}}
TIMED = ("train_seconds",)
"""The one column that is a measurement, not a result: two runs never take the same time."""


def rows_without_timings(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMED} for row in csv.DictReader(handle)]


def shared_weights(out: Path) -> dict:
    return torch.load(out / "agent.pt", weights_only=True)["metadata"]["evaluator"]


@pytest.mark.parametrize("agent", ["random", "dqn"])
def test_an_interrupted_weight_sharing_search_resumes_exactly(agent: str, tmp_path: Path) -> None:
    settings = SearchSettings(agent, "digits", 40, env_options=WS, agent_options=SHORT.get(agent, {}))
    run_search(tmp_path / "whole", settings, progress=False, checkpoint_seconds=0)
    whole = rows_without_timings(tmp_path / "whole" / "episodes.csv")
    cut_at = next(step for step in range(25, 40) if whole[step - 1]["terminated"] == "False")  # mid-episode
    with pytest.raises(KeyboardInterrupt):
        env = CtrlCAtStep(gym.make("NAS-v0", dataset="digits", **WS), step=cut_at + 1)
        run_search(tmp_path / "cut", settings, progress=False, checkpoint_seconds=0, env=env)
    assert len(rows_without_timings(tmp_path / "cut" / "episodes.csv")) == cut_at
    assert torch.load(tmp_path / "cut" / "agent.pt", weights_only=True)["num_timesteps"] < cut_at  # steps to redo

    run_search(tmp_path / "cut", settings, resume=True, progress=False, checkpoint_seconds=0)
    assert rows_without_timings(tmp_path / "cut" / "episodes.csv") == whole
    assert {row["from_cache"] for row in whole if row["accuracy"]} == {"False"}
    assert len({row["reward"] for row in whole}) > 5  # real, varied rewards
    assert (tmp_path / "cut" / "progress.csv").read_text() == (tmp_path / "whole" / "progress.csv").read_text()
    final, resumed = shared_weights(tmp_path / "whole"), shared_weights(tmp_path / "cut")
    assert final["heads"] == resumed["heads"] and final["evaluations"] == resumed["evaluations"] == 40
    assert all(torch.equal(final["weights"][k], resumed["weights"][k]) for k in final["weights"])


def test_killing_a_weight_sharing_search_then_resuming_gives_the_same_episodes(tmp_path: Path) -> None:
    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "nasgym", "search", "--agent", "reinforce", "--dataset", "digits",
                "--steps", "60", "--image-size", "16", "--batch-size", "32", "--device", "cpu", "--max-samples",
                "300", "--reward-source", "weight_sharing", "--ws-steps", "2", "--ws-valid-samples", "64",
                "--ws-warmup", "5", "--reward", "per_step", "--set", "architectures_per_update=2", "--out", str(out),
                "--checkpoint-seconds", "0", "--no-progress"]  # fmt: skip

    whole = subprocess.run(command(tmp_path / "whole"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    process = subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "episodes.csv").exists() and len(rows_without_timings(out / "episodes.csv")) >= 25:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: only what was on disk counts
    process.communicate(timeout=60)
    assert 25 <= len(rows_without_timings(out / "episodes.csv")) < 60

    resumed = subprocess.run([*command(out), "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert rows_without_timings(out / "episodes.csv") == rows_without_timings(tmp_path / "whole" / "episodes.csv")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 60 and summary["best"][0]["reward"] > 0


def test_a_checkpoint_without_shared_weights_is_refused(tmp_path: Path) -> None:
    trained = {**WS, "reward_source": "trained", "epochs": 1}
    run_search(tmp_path, SearchSettings("random", "digits", 6, env_options=trained), progress=False)
    env = gym.make("NAS-v0", dataset="digits", **WS)
    settings = SearchSettings("random", "digits", 8, env_options=trained)
    with pytest.raises(Exception, match="holds no shared weights"):
        run_search(tmp_path, settings, resume=True, progress=False, env=env)


def test_retrain_top_trains_the_best_networks_of_a_cheap_search(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    flags = ["--dataset", "digits", "--image-size", "16", "--batch-size", "32", "--device", "cpu", "--max-samples",
             "300", "--epochs", "1"]  # fmt: skip
    code = main(["search", "--agent", "random", "--steps", "20", *flags, "--reward-source", "weight_sharing",
                 "--ws-steps", "2", "--ws-warmup", "5", "--out", str(out), "--no-progress",
                 "--retrain-top", "3"])  # fmt: skip
    assert code == 0
    records = json.loads((out / "retrained.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert [r["architecture"] for r in records] == [b["architecture"] for b in summary["best"][:3]]
    assert len({r["architecture"] for r in records}) == 3
    assert all(r["search_reward_source"] == "weight_sharing" and 0 <= r["trained_reward"] <= 1 for r in records)
    with open(out / "retrained.csv", newline="") as handle:
        assert [row["architecture"] for row in csv.DictReader(handle)] == [r["architecture"] for r in records]
    assert "retrained the 3 best networks" in capsys.readouterr().out
    # The trained rewards are the normal ones: a plain trained environment gets the same from the cache.
    env = gym.make("NAS-v0", dataset="digits", image_size=16, batch_size=32, device="cpu", max_samples=300, epochs=1)
    evaluations = env.unwrapped.evaluator.evaluate([Architecture.parse(r["architecture"]) for r in records])
    assert [e.accuracy for e in evaluations] == [r["trained_reward"] for r in records]
    assert all(e.from_cache for e in evaluations)


@pytest.mark.parametrize("command", ["train", "final"])
def test_commands_that_train_from_scratch_refuse_weight_sharing(command: str, capsys) -> None:
    assert main([command, "c3", "--reward-source", "weight_sharing"]) == 2
    assert "weight sharing is for searches" in capsys.readouterr().err
