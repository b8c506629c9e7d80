"""Bad input (issue 22) whose fixes live in config.py, the bench and fidelity commands, agents/checkpoint.py and the
evaluators: bounds named in one line, empty lists refused, a checkpoint cut short named."""

from __future__ import annotations

import gymnasium as gym
import pytest
from support import TINY_FLAGS, one_line_error, toy_env, toy_reward

import agents
import nasgym  # noqa: F401
from nasgym.core.errors import CheckpointError, ConfigError
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.runners.search import SearchSettings, run_search


def test_max_layers_has_a_named_limit(capsys, tmp_path):
    with pytest.raises(ConfigError, match="max_layers must be at most 1000, got 1,099,511,627,776"):
        gym.make("NAS-v0", evaluator=FunctionEvaluator(toy_reward), max_layers=2**40)
    assert toy_env(max_layers=1000).unwrapped.max_layers == 1000
    argv = ["search", "--max-layers", "1000000", "--out", str(tmp_path / "run"), "--no-progress", *TINY_FLAGS]
    assert "max_layers must be at most 1000" in one_line_error(argv, capsys)


def test_a_fidelity_sample_has_a_named_limit(capsys, tmp_path):
    argv = ["fidelity", "--networks", "1000000", "--out", str(tmp_path / "out"), "--no-progress", *TINY_FLAGS]
    assert "networks must be at most 10,000" in one_line_error(argv, capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--datasets", ""], "argument --datasets: expected one or more comma-separated names, got ''"),
        (["--agents", ",,,"], "argument --agents: expected one or more comma-separated names, got ',,,'"),
    ],
)
def test_a_bench_of_nothing_is_refused(argv, message, capsys, tmp_path):
    assert message in one_line_error(["bench", "agents", *argv, "--out", str(tmp_path / "out")], capsys)
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_cut_short_is_named(tmp_path, capsys):
    out = tmp_path / "run"
    run_search(out, SearchSettings("meta_a2c", "toy", 6), progress=False, env=toy_env())
    data = (out / "agent.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    for size in range(0, len(data), max(1, len(data) // 200)):  # some cuts make torch's reader fail with EINVAL
        cut.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match=f"^{cut} is not a nasgym agent checkpoint"):
            agents.load(cut, toy_env())
    argv = ["search", "--agent", "meta_a2c", "--start-from", str(cut), "--out", str(tmp_path / "b"), *TINY_FLAGS]
    assert str(cut) in one_line_error(argv, capsys)
