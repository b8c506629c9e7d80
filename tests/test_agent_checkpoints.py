"""Agent checkpoints hold tensors and plain data only: every one loads with ``torch.load(weights_only=True)``, a
reloaded agent continues exactly, and a file that is not a checkpoint (hostile, damaged, foreign) is refused in
one line without running anything from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from support import toy_env

import agents
from agents import checkpoint
from nasgym.core.errors import CheckpointError, ConfigError
from nasgym.core.protocols import protocol
from nasgym.runners.search import SearchSettings, run_search

AGENTS = ("random", "reinforce", "dqn", "meta_a2c", "regularized_evolution", "local_search")
SHORT = {"reinforce": {"architectures_per_update": 3}, "dqn": {"learning_starts": 5, "batch_size": 4}}
"""Hyperparameters that make each agent update within a few steps, so its state holds batches, buffers, rollouts."""


NASGYM = protocol("nasgym2019")


def learned(name: str, steps: int, **hyperparameters) -> agents.Agent:
    """An agent that learned for at least ``steps`` steps, stopped at an episode end (where searches save)."""
    agent = agents.make(name, toy_env(), **{**SHORT.get(name, {}), **hyperparameters})
    agent.learn(10 * steps, callback=lambda event: not (event["step"] >= steps and event["terminated"]))
    return agent


def trajectory(agent: agents.Agent, steps: int) -> list[tuple]:
    events: list[dict] = []
    agent.learn(steps, callback=events.append)
    return [(e["step"], e["info"]["architecture"], e["reward"], e["terminated"]) for e in events]


def ran_code(marker: str) -> dict:
    """What a hostile pickle calls while it is un-pickled: leaves ``marker`` behind."""
    Path(marker).write_text("ran")
    return {}


class Hostile:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return ran_code, (self.marker,)


class Custom:
    """An ordinary object of a class that weights_only does not know."""


def one_line_refusal(path: Path, *fragments: str, **load_options) -> str:
    with pytest.raises(CheckpointError) as refused:
        agents.load(path, toy_env(), **load_options)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message
    return message


# -- what an agent writes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", [False, True], ids=["modern", "nasgym2019"])
@pytest.mark.parametrize("name", AGENTS)
def test_a_checkpoint_is_tensors_and_plain_data_and_resumes_exactly(name: str, preset: bool, tmp_path: Path) -> None:
    """Also with the NasGym protocol's hyperparameters (unmasked, its meta-A2C memory, double Q and a dueling head),
    whose warm-up is shortened so that DQN learns within the run."""
    hyperparameters = {**NASGYM.hyperparameters(name), **SHORT.get(name, {})} if preset else {}
    agent = learned(name, 37, **hyperparameters)
    agent.save(tmp_path / "agent.pt", {"search_steps": agent.num_timesteps, "note": "plain"})
    payload = torch.load(tmp_path / "agent.pt", weights_only=True)
    assert payload["agent"] == name and payload["metadata"]["note"] == "plain"
    checkpoint.check_plain(payload)  # nothing in it but what weights_only builds
    assert agents.checkpoint_info(tmp_path / "agent.pt") == {
        "agent": name,
        "num_timesteps": agent.num_timesteps,
        "metadata": {"search_steps": agent.num_timesteps, "note": "plain"},
    }

    loaded = agents.load(tmp_path / "agent.pt", toy_env(), agent=name)
    assert trajectory(loaded, 60) == trajectory(agent, 60)
    assert agent.policy is None or all(
        torch.equal(value, loaded.policy.state_dict()[key]) for key, value in agent.policy.state_dict().items()
    )


def test_a_load_may_change_hyperparameters_that_leave_the_weights_alone(tmp_path: Path) -> None:
    agent = learned("meta_a2c", 20)
    agent.save(tmp_path / "agent.pt")
    control = agents.load(tmp_path / "agent.pt", toy_env(), memory="episode", reward_input=False)
    assert control.config.memory == "episode" and control.config.reward_input is False
    assert all(torch.equal(v, control.network.state_dict()[k]) for k, v in agent.network.state_dict().items())
    with pytest.raises(ConfigError, match="memory must be one of"):
        agents.load(tmp_path / "agent.pt", toy_env(), memory="none")
    with pytest.raises(CheckpointError, match="state does not fit"):
        agents.load(tmp_path / "agent.pt", toy_env(), hidden_size=16)


def test_dqn_checkpoint_holds_its_replay_buffer_as_arrays(tmp_path: Path) -> None:
    agent = learned("dqn", 30)
    agent.save(tmp_path / "agent.pt")
    state = torch.load(tmp_path / "agent.pt", weights_only=True)["state"]
    assert "model_zip" not in state and set(state["policy"]) >= {"q_net.q_net.0.weight", "q_net_target.q_net.0.weight"}
    stored = state["replay_buffer"]
    buffer = agent.model.replay_buffer
    assert stored["pos"] == buffer.pos and stored["capacity"] == buffer.buffer_size
    assert np.array_equal(stored["arrays"]["rewards"].numpy(), buffer.rewards[: buffer.size()])
    assert state["counters"]["n_updates"] == agent.model.n_updates > 0


def test_a_dqn_agent_saved_between_trials_starts_its_next_trial_on_load(tmp_path: Path) -> None:
    agent = learned("dqn", 30)
    agent.reset_trial()
    agent.save(tmp_path / "agent.pt")
    loaded = agents.load(tmp_path / "agent.pt", toy_env())
    assert not loaded.model.replay_buffer.allocated
    loaded.learn(40)
    assert loaded.model.replay_buffer.buffer_size == 20 and loaded.num_timesteps == agent.num_timesteps + 40


def test_save_refuses_metadata_that_is_not_plain_data_and_writes_nothing(tmp_path: Path) -> None:
    agent = agents.make("random", toy_env())
    with pytest.raises(TypeError, match=r"checkpoint\['metadata'\]\['where'\] is a PosixPath"):
        agent.save(tmp_path / "agent.pt", {"where": tmp_path})
    assert not list(tmp_path.iterdir())


# -- what a load refuses -----------------------------------------------------------------------------------
def test_a_checkpoint_carrying_a_pickled_object_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.pt"
    torch.save({"agent": "random", "format": checkpoint.FORMAT, "state": {"rng": Hostile(marker)}}, path)
    one_line_refusal(path, "is not a nasgym agent checkpoint (it holds a pickled Python object", "ran_code")
    with pytest.raises(CheckpointError):
        agents.checkpoint_info(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the control: an unsafe load would have run it
    assert marker.read_text() == "ran"


def test_a_checkpoint_holding_an_object_of_an_unknown_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.pt"
    torch.save({"agent": "random", "format": checkpoint.FORMAT, "metadata": {"x": Custom()}}, path)
    one_line_refusal(path, "it holds a pickled Python object", "Custom")


def test_truncated_random_empty_and_foreign_files_are_refused(tmp_path: Path) -> None:
    agents.make("random", toy_env()).save(tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    one_line_refusal(tmp_path / "truncated.pt", "(the file is empty, cut short or damaged)")
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    one_line_refusal(tmp_path / "random.pt", "(not a PyTorch file of tensors and plain data)")
    (tmp_path / "empty.pt").write_bytes(b"")
    one_line_refusal(tmp_path / "empty.pt", "is not a nasgym agent checkpoint")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "weights.pt")  # loads safely, but is no agent
    one_line_refusal(tmp_path / "weights.pt", "(no agent name in it)")
    torch.save({"agent": "random", "config": {}, "state": {}}, tmp_path / "old.pt")
    one_line_refusal(tmp_path / "old.pt", "checkpoint format 1, from another version of nasgym")
    one_line_refusal(tmp_path / "missing.pt", "does not exist")
    one_line_refusal(tmp_path, "is a folder")


def test_a_checkpoint_whose_state_does_not_fit_its_agent_is_refused(tmp_path: Path) -> None:
    agent = agents.make("meta_a2c", toy_env())
    agent.save(tmp_path / "agent.pt")
    payload = torch.load(tmp_path / "agent.pt", weights_only=True)
    del payload["state"]["network"]
    torch.save(payload, tmp_path / "damaged.pt")
    one_line_refusal(tmp_path / "damaged.pt", "its meta_a2c state does not fit this version", "'network'")
    payload = torch.load(tmp_path / "agent.pt", weights_only=True)
    payload["config"]["n_steps"] = 0
    torch.save(payload, tmp_path / "config.pt")
    one_line_refusal(tmp_path / "config.pt", "its meta_a2c hyperparameters do not fit", "n_steps must be >= 1")


def test_a_checkpoint_of_another_agent_is_refused_before_building(tmp_path: Path) -> None:
    agents.make("meta_a2c", toy_env()).save(tmp_path / "agent.pt")
    one_line_refusal(tmp_path / "agent.pt", "holds a meta_a2c agent, not dqn; give a dqn checkpoint", agent="dqn")
    with pytest.raises(ConfigError, match="unknown agent 'ppo'"):
        agents.load(tmp_path / "agent.pt", toy_env(), agent="ppo")
    assert agents.load(tmp_path / "agent.pt", toy_env(), agent="meta_a2c").name == "meta_a2c"


def test_resuming_a_search_whose_checkpoint_was_damaged_is_one_clean_error(tmp_path: Path) -> None:
    settings = SearchSettings("random", "toy", 12)
    run_search(tmp_path, settings, progress=False, env=toy_env())
    (tmp_path / "agent.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"agent.pt is not a nasgym agent checkpoint \("):
        run_search(tmp_path, SearchSettings("random", "toy", 20), resume=True, progress=False, env=toy_env())
