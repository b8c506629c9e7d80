"""``nasgym search --num-envs N``: each agent runs N episodes at once, the copies' networks reach the evaluator as
one batch, and a search over copies resumes exactly."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from support import TINY, CtrlCEvaluator, read_rows, toy_env, toy_reward

import agents
from nasgym.core.config import make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import FunctionEvaluator, TrainingEvaluator
from nasgym.core.search_space import Architecture
from nasgym.core.vector_env import HOLD, copy_info
from nasgym.runners.cli import main
from nasgym.runners.search import SearchSettings, run_search

AGENTS = ("random", "reinforce", "dqn", "meta_a2c")
SHORT = {"reinforce": {"architectures_per_update": 3}, "dqn": {"learning_starts": 4, "batch_size": 4}}
"""Hyperparameters that let each agent update within a few steps (REINFORCE's 3 episodes on 2 copies: one holds)."""
DIGITS = {"max_samples": 150, **TINY}
SAME_STEP = gym.vector.AutoresetMode.SAME_STEP


class RecordingEvaluator(TrainingEvaluator):
    """The real evaluator, noting per ``evaluate`` call how many networks it was asked for and how many it trained."""

    calls: list[tuple[int, int]]

    def evaluate(self, architectures, on_epoch=None):
        trained_before = self.stats.trained
        evaluations = super().evaluate(architectures, on_epoch)
        self.calls.append((len(architectures), self.stats.trained - trained_before))
        return evaluations


def copies(num_envs: int = 2, evaluator=None, **options) -> gym.vector.VectorEnv:
    evaluator = evaluator or FunctionEvaluator(toy_reward, image_size=84)
    return gym.make_vec("NAS-v0", num_envs=num_envs, autoreset_mode=SAME_STEP, evaluator=evaluator, **options)


@pytest.mark.parametrize("name", AGENTS)
def test_a_search_over_two_copies_hands_the_evaluator_batches(name: str, tmp_path: Path) -> None:
    evaluator = RecordingEvaluator.from_config(*make_configs({"dataset": "digits", **DIGITS}))
    evaluator.calls = []
    env = gym.make_vec("NAS-v0", num_envs=2, autoreset_mode=SAME_STEP, evaluator=evaluator, **DIGITS)
    settings = SearchSettings(name, "digits", 16, env_options=DIGITS, agent_options=SHORT.get(name, {}), num_envs=2)
    summary = run_search(tmp_path, settings, progress=False, env=env)

    rows = read_rows(tmp_path / "episodes.csv")
    assert 16 <= len(rows) <= 17  # a vector step may overshoot by one copy's step (two when no copy holds)
    assert [int(row["step"]) for row in rows] == list(range(1, len(rows) + 1))
    assert {row["env"] for row in rows} == {"0", "1"}
    assert all(row["valid"] == "True" and row["accuracy"] for row in rows)  # per_step: every step rewarded
    assert max(trained for _, trained in evaluator.calls) >= 2  # two networks trained in one call
    assert summary["trained"] == summary["unique_networks"]  # a fresh cache: each network trained once
    trainings = sum(trained for _, trained in evaluator.calls)  # REINFORCE's also the next batch's, not yet played
    assert trainings == summary["trained"] or (name == "reinforce" and trainings > summary["trained"])
    if name == "reinforce":  # the whole batch of 3 episodes in one call, before its first step
        assert evaluator.calls[0][0] >= 3 and evaluator.calls[0][1] == evaluator.calls[0][0]
    else:  # one call per vector step with both copies' networks; each copy's step then reads its answer
        assert [asked for asked, _ in evaluator.calls] == [2, 1, 1] * 8
    assert all(trained == 0 for asked, trained in evaluator.calls if asked == 1)  # nothing trained one at a time
    for copy in ("0", "1"):  # each copy's episodes are numbered apart and counted from 1
        steps = [int(row["episode_step"]) for row in rows if row["env"] == copy]
        assert steps[0] == 1 and all(b in (1, a + 1) for a, b in pairwise(steps))
    agent = agents.load(tmp_path / "agent.pt", copies())
    assert agent.num_envs == 2 and agent.num_timesteps == len(rows)


@pytest.mark.parametrize("name", AGENTS)
def test_an_interrupted_search_over_two_copies_resumes_exactly(name: str, tmp_path: Path) -> None:
    """Ctrl-C mid-search with --num-envs 2, then resume: the files end as if the search had never stopped, the
    copies' unfinished episodes included."""
    settings = SearchSettings(name, "toy", 150, agent_options=SHORT.get(name, {}), num_envs=2)
    run_search(tmp_path / "whole", settings, progress=False, checkpoint_seconds=0, env=copies())
    for after in (90, 75, 105, 60):  # the first interruption whose checkpoint leaves a copy mid-episode
        cut = tmp_path / f"cut{after}"
        with pytest.raises(KeyboardInterrupt):
            run_search(cut, settings, progress=False, checkpoint_seconds=0, env=copies(evaluator=CtrlCEvaluator(after)))
        kept = torch.load(cut / "agent.pt", weights_only=True)["metadata"]["search_steps"]
        written = read_rows(cut / "episodes.csv")
        assert 0 < kept <= len(written) < 150
        last = {row["env"]: row for row in written[:kept]}
        if any(row["terminated"] == "False" for row in last.values()):
            break
    else:
        pytest.fail("no checkpoint left a copy mid-episode")

    run_search(cut, settings, resume=True, progress=False, checkpoint_seconds=0, env=copies())
    for file in ("episodes.csv", "progress.csv", "summary.json"):
        assert (cut / file).read_text() == (tmp_path / "whole" / file).read_text(), file


def test_num_envs_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    flags = ["--epochs", "1", "--image-size", "16", "--batch-size", "64", "--max-samples", "150", "--device", "cpu"]
    out = tmp_path / "run"
    argv = ["search", "--agent", "random", "--steps", "6", "--out", str(out), "--no-progress", *flags]
    assert main([*argv, "--num-envs", "3"]) == 0
    assert json.loads((out / "run.json").read_text())["num_envs"] == 3
    assert [row["env"] for row in read_rows(out / "episodes.csv")] == ["0", "1", "2"] * 2
    capsys.readouterr()
    assert main([*argv, "--num-envs", "2", "--resume"]) == 2  # another number of copies: another search
    error = capsys.readouterr().err
    assert "different settings" in error and "num_envs" in error


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_bad_number_of_copies_is_one_line(value: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["search", "--num-envs", value, "--out", str(tmp_path / "x")])
    error = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --num-envs" in error and "Traceback" not in error


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_num_envs_in_the_api_is_a_config_error(value, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="num_envs"):
        run_search(tmp_path, SearchSettings("random", "toy", 4, num_envs=value), env=toy_env())
    with pytest.raises(ConfigError, match="num_envs"):
        gym.make_vec("NAS-v0", num_envs=value, evaluator=FunctionEvaluator(toy_reward))


def test_the_env_given_must_have_as_many_copies(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="num_envs is 2, but the env given runs 3 copies"):
        run_search(tmp_path, SearchSettings("random", "toy", 4, num_envs=2), env=copies(3))
    next_step = gym.make_vec("NAS-v0", num_envs=2, evaluator=FunctionEvaluator(toy_reward))  # the default autoreset
    with pytest.raises(ConfigError, match="SAME_STEP"):
        agents.make("random", next_step)


def test_one_copy_keeps_the_plain_env_and_logs_copy_zero(tmp_path: Path) -> None:
    settings = SearchSettings("random", "toy", 12)
    run_search(tmp_path, settings, progress=False, env=toy_env())
    rows = read_rows(tmp_path / "episodes.csv")
    assert {row["env"] for row in rows} == {"0"} and len(rows) == 12


def test_a_log_from_before_copies_gets_the_column_on_resume(tmp_path: Path) -> None:
    settings = SearchSettings("random", "toy", 30)
    run_search(tmp_path / "whole", settings, progress=False, checkpoint_seconds=0, env=toy_env())
    with pytest.raises(KeyboardInterrupt):
        env = gym.make("NAS-v0", evaluator=CtrlCEvaluator(after=20))
        run_search(tmp_path / "old", settings, progress=False, checkpoint_seconds=0, env=env)
    log = tmp_path / "old" / "episodes.csv"
    lines = [line.split(",") for line in log.read_text().splitlines()]
    log.write_text("\n".join(",".join(line[:2] + line[3:]) for line in lines) + "\n")  # drop the env column
    run_search(tmp_path / "old", settings, resume=True, progress=False, checkpoint_seconds=0, env=toy_env())
    assert log.read_text() == (tmp_path / "whole" / "episodes.csv").read_text()


def test_hold_leaves_a_copy_as_it_is_and_reset_puts_episodes_back() -> None:
    envs = copies(2)
    observations, _ = envs.reset(options={"episodes": [[1, 3], []]})
    assert envs.unwrapped.envs[0].architecture.actions == (1, 3) and not observations[1].any()
    observations, rewards, terminated, _, infos = envs.step(np.array([HOLD, 1]))
    assert np.array_equal(observations[0], envs.unwrapped.envs[0]._observation()) and rewards[0] == 0.0
    assert copy_info(infos, 0) == {} and copy_info(infos, 1)["architecture"] == "c3"
    _, rewards, terminated, _, infos = envs.step(np.array([7, 7]))
    assert terminated.all() and copy_info(infos, 0)["architecture"] == "c3-m2-t"  # the final step's info
    assert rewards[0] == toy_reward(Architecture.parse("c3-m2"))
    with pytest.raises(Exception, match="invalid or already ended"):
        envs.reset(options={"episodes": [[1, 7], []]})


@pytest.mark.parametrize("name", AGENTS)
def test_a_policy_learned_on_copies_runs_on_one_env_and_back(name: str, tmp_path: Path) -> None:
    agent = agents.make(name, copies(2), **SHORT.get(name, {}))
    agent.learn(20)
    agent.save(tmp_path / "a.pt")
    single = agents.load(tmp_path / "a.pt", toy_env())
    if name == "dqn":  # the replay buffer's transitions, two per row, now one per row, oldest first
        pairs, rows = agent.replay_buffer, single.replay_buffer
        assert rows.size() == 2 * pairs.size() and rows.full == pairs.full
        newest = pairs.observations[(pairs.pos - 1) % pairs.buffer_size, 1]
        assert np.array_equal(rows.observations[(rows.pos - 1) % rows.buffer_size, 0], newest)
    single.learn(6)
    single.play(4)
    assert single.num_envs == 1 and single.num_timesteps == 26
    single.save(tmp_path / "b.pt")
    again = agents.load(tmp_path / "b.pt", copies(3))
    again.learn(6)
    again.play(6)
    assert again.num_envs == 3 and again.num_timesteps == 32


@pytest.mark.parametrize("name", AGENTS)
def test_a_vector_env_of_one_copy_searches_exactly_as_the_plain_env(name: str, tmp_path: Path) -> None:
    """The agents' paths for copies, run on one copy, take the very steps and updates of their one-env paths."""
    settings = SearchSettings(name, "toy", 60, agent_options=SHORT.get(name, {}))
    run_search(tmp_path / "plain", settings, progress=False, env=toy_env())
    run_search(tmp_path / "vector", settings, progress=False, env=copies(1))
    for file in ("episodes.csv", "progress.csv"):
        assert (tmp_path / "vector" / file).read_text() == (tmp_path / "plain" / file).read_text(), file
