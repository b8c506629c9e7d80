"""The agents' shared API and each agent's mechanics, on environments whose reward is a cheap known function."""

from __future__ import annotations

import csv
import tempfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from support import TINY, toy_env, toy_reward

import agents
import nasgym  # noqa: F401  (registers NAS-v0)
from agents.encoding import features, masks
from agents.meta_a2c import MetaA2CState
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.observation import OBSERVATIONS
from nasgym.core.search_space import Architecture, action_mask
from nasgym.runners.episode_log import EpisodeLogger
from nasgym.runners.run_folder import RunFolder

LEARNING_AGENTS = ("reinforce", "dqn", "meta_a2c")
SEARCHES = ("regularized_evolution", "local_search")
"""Searches without a policy network: they propose whole networks (``agents.proposals``)."""


def random_architectures(count: int, image_size: int, seed: int = 0) -> list[Architecture]:
    """Every prefix of ``count`` random valid episodes."""
    rng, prefixes = np.random.default_rng(seed), []
    for _ in range(count):
        architecture = Architecture(())
        while not (architecture.is_terminated or len(architecture) >= 10):
            prefixes.append(architecture)
            allowed = np.flatnonzero(action_mask(architecture, image_size))
            architecture = architecture.append(int(rng.choice(allowed)))
        prefixes.append(architecture)
    return prefixes


def collect(agent: agents.Agent, steps: int, method: str = "learn") -> list[dict]:
    events: list[dict] = []
    getattr(agent, method)(steps, callback=events.append)
    return events


# -- what agents read from observations -------------------------------------------------------------------
@pytest.mark.parametrize("observation", OBSERVATIONS)
@pytest.mark.parametrize("image_size", [5, 16, 84])
def test_the_space_model_masks_batches_by_the_search_space_rule(image_size: int, observation: str) -> None:
    space = toy_env(image_size=image_size, observation=observation).unwrapped.space_model
    architectures = random_architectures(300, image_size)
    batch = np.stack([space.observe(a.actions) for a in architectures])
    expected = np.stack([action_mask(a, image_size) for a in architectures])
    assert (masks(space, batch).numpy() == expected).all()
    assert (masks(space, torch.tensor(batch).float()).numpy() == expected).all()  # as a replay buffer holds them
    assert [space.actions(o) for o in batch] == [a.actions for a in architectures]
    assert not expected.all(), "the sample should contain observations with invalid actions"


def test_features_are_one_hot_per_row() -> None:
    space = toy_env().unwrapped.space_model
    encoded = features(space, space.observe(Architecture.parse("c3-m2-t").actions)).reshape(10, 9)
    assert encoded.sum(1).tolist() == [1.0] * 10
    assert encoded.argmax(1).tolist()[:4] == [2, 4, 8, 0]  # action + 1, then empty rows


@pytest.mark.parametrize("observation", ["onehot", "nasgym"])
@pytest.mark.parametrize("name", ["random", "reinforce", "dqn", "meta_a2c", *SEARCHES])
def test_agents_search_the_other_observations_too(name: str, observation: str) -> None:
    agent = agents.make(name, toy_env(image_size=8, observation=observation))
    events = collect(agent, 30)
    assert all(event["info"]["valid"] for event in events)


# -- the API ---------------------------------------------------------------------------------------------
def test_unknown_names_list_the_known_ones() -> None:
    env = toy_env()
    with pytest.raises(
        ConfigError, match="known agents: dqn, local_search, meta_a2c, random, regularized_evolution, reinforce"
    ):
        agents.make("ppo", env)
    with pytest.raises(ConfigError, match=r"unknown reinforce hyperparameter 'm'; known: architectures_per_update"):
        agents.make("reinforce", env, m=8)


PAPERS = {
    "dqn": {
        "learning_rate": 5e-4,
        "exploration_initial_eps": 1.0,
        "exploration_final_eps": 0.1,
        "exploration_fraction": 1.0,
        "batch_size": 20,
        "gamma": 1.0,
        "target_update_interval": 100,
    },
    "meta_a2c": {
        "hidden_size": 128,
        "n_steps": 5,
        "gamma": 0.9,
        "entropy_coef": 0.01,
        "value_coef": 0.5,
        "learning_rate": 1e-3,
        "max_grad_norm": 0.5,
    },
    "reinforce": {"architectures_per_update": 8, "hidden_size": 35, "num_layers": 2, "learning_rate": 6e-4},
}
"""NasGym's (DQN, meta-A2C) and Zoph & Le's (REINFORCE) settings."""


@pytest.mark.parametrize("name", sorted(PAPERS))
def test_defaults_are_the_papers_settings(name: str) -> None:
    config = agents.make_config(name)
    assert {key: getattr(config, key) for key in PAPERS[name]} == PAPERS[name]


@pytest.mark.parametrize("name", ["random", *LEARNING_AGENTS, *SEARCHES])
def test_agents_take_only_valid_actions(name: str) -> None:
    """At image side 8 most layer sequences become invalid within a few steps."""
    agent = agents.make(name, toy_env(image_size=8), **({"learning_starts": 5} if name == "dqn" else {}))
    events = collect(agent, 150) + collect(agent, 50, "play")
    assert len(events) == 200
    assert all(event["info"]["valid"] for event in events)
    assert sum(event["terminated"] for event in events) >= 20
    assert agent.num_timesteps == 150


@pytest.mark.parametrize("name", ["random", *LEARNING_AGENTS, *SEARCHES])
def test_save_load_round_trip_predicts_identically(name: str, tmp_path) -> None:
    agent = agents.make(name, toy_env(), **({"learning_starts": 10} if name == "dqn" else {}))
    agent.learn(60)
    agent.save(tmp_path / "agent.pt")
    loaded = agents.load(tmp_path / "agent.pt", toy_env())
    assert type(loaded) is type(agent) and loaded.num_timesteps == agent.num_timesteps == 60
    observations = [a.nsc(10) for a in random_architectures(20, 84, seed=1)]
    states = {id(agent): None, id(loaded): None}
    for deterministic in (True, False):  # stochastic too: the random generators were saved
        for observation in observations:
            choices = []
            for policy in (agent, loaded):
                action, states[id(policy)] = policy.predict(observation, states[id(policy)], deterministic)
                choices.append(action)
            assert choices[0] == choices[1]


@pytest.mark.parametrize("name", LEARNING_AGENTS)
def test_play_acts_without_learning(name: str) -> None:
    agent = agents.make(name, toy_env(), **({"learning_starts": 10} if name == "dqn" else {}))
    agent.learn(30)
    weights = {key: value.clone() for key, value in agent.policy.state_dict().items()}
    events = collect(agent, 40, "play")
    assert [event["step"] for event in events] == list(range(1, 41))
    assert agent.num_timesteps == 30
    assert all(torch.equal(weights[key], value) for key, value in agent.policy.state_dict().items())
    agent.learn(10)  # learning continues after playing
    assert agent.num_timesteps == 40


@pytest.mark.parametrize("name", LEARNING_AGENTS)
def test_a_policy_moves_to_another_dataset_and_keeps_learning(name: str, tmp_path) -> None:
    agent = agents.make(name, toy_env(), **({"learning_starts": 10} if name == "dqn" else {}))
    agent.learn(40)
    agent.save(tmp_path / "agent.pt")
    other = toy_env(image_size=28, reward_fn=lambda network: len(network) / 10)  # another dataset, same spaces
    moved = agents.load(tmp_path / "agent.pt", other)
    moved.reset_trial()
    events = collect(moved, 40)
    assert moved.num_timesteps == 80 and len(events) == 40
    assert all(event["info"]["valid"] for event in events)  # masks follow the new image size
    with pytest.raises(ConfigError, match="the same max_layers and observation"):
        agents.load(tmp_path / "agent.pt", toy_env(max_layers=6))


# -- REINFORCE ---------------------------------------------------------------------------------------------
class RecordingEvaluator(FunctionEvaluator):
    """The toy reward; remembers what each call asked for."""

    def __init__(self):
        super().__init__(toy_reward)
        self.calls: list[list[str]] = []

    def evaluate(self, architectures):
        self.calls.append([str(a) for a in architectures])
        return super().evaluate(architectures)


@pytest.mark.parametrize("reward", ["final", "per_step"])
def test_reinforce_asks_for_a_whole_batch_before_playing_it(reward: str) -> None:
    evaluator = RecordingEvaluator()
    agent = agents.make("reinforce", gym.make("NAS-v0", evaluator=evaluator, reward=reward), architectures_per_update=4)
    agent.learn(1)
    lengths = range(1, 11) if reward == "per_step" else [None]
    wanted = {str(Architecture(tuple(a[:n])).network) for a in agent._batch for n in lengths}
    assert sorted(evaluator.calls[0]) == sorted(wanted)
    assert len(evaluator.calls) == (2 if reward == "per_step" else 1)  # then the environment's first step


def test_reinforce_batches_and_the_episode_log_credit_training_once(tmp_path) -> None:
    """With the real trainer behind EpisodeLogger: a batch is trained before its first step, every network
    once, and the episodes CSV credits each trained network to exactly one step."""
    base = gym.make("NAS-v0", dataset="digits", reward="final", max_samples=100, **TINY)
    env = EpisodeLogger(base, RunFolder(tmp_path))
    stats = env.unwrapped.evaluator.stats
    agent = agents.make("reinforce", env, architectures_per_update=3)
    trained_at_step_one = []
    agent.learn(1, callback=lambda event: trained_at_step_one.append(stats.trained))
    assert trained_at_step_one == [len({str(Architecture(tuple(a)).network) for a in agent._batch})]
    agent.learn(100, callback=lambda event: agent._batch is not None)  # to the batch's end
    env.close()
    with open(tmp_path / "episodes.csv", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["terminated"] == "True"]
    networks = [str(Architecture.parse(row["architecture"]).network) for row in rows]
    credited = [network for network, row in zip(networks, rows, strict=True) if row["trained"] == "True"]
    assert len(rows) == 3 and sorted(credited) == sorted(set(networks)) and len(credited) == stats.trained


# -- DQN ---------------------------------------------------------------------------------------------------
def test_dqn_greedy_and_target_max_see_only_valid_actions() -> None:
    agent = agents.make("dqn", toy_env(image_size=5))
    q_net = agent.model.q_net
    with torch.no_grad():  # make the invalid c5 (action 2) look best everywhere
        q_net.q_net[-1].bias[2] = 1e6
    observations = np.stack([a.nsc(10) for a in random_architectures(50, 5)])
    valid = masks(agent.space, observations)
    q_values = q_net(torch.tensor(observations).float())
    greedy = q_values.argmax(1)
    assert valid[torch.arange(len(greedy)), greedy].all()
    assert (q_values.max(1).values < 1e5).sum() == (~valid[:, 2]).sum()  # a max over valid actions only
    for observation in observations:
        action, _ = agent.predict(observation, deterministic=True)
        assert action_mask(Architecture.from_nsc(observation), 5)[action]


def test_dqn_buffer_is_half_the_run_and_epsilon_decays_over_it() -> None:
    agent = agents.make("dqn", toy_env())
    rates: list[float] = []
    agent.update_listener = lambda metrics: rates.append(metrics["exploration_rate"])
    agent.learn(200)
    assert agent.model.replay_buffer.buffer_size == 100
    assert rates[0] > 0.8 and rates[-1] == pytest.approx(0.1, abs=0.01)


def test_dqn_starts_a_new_trial_with_an_empty_buffer_and_full_exploration(tmp_path) -> None:
    agent = agents.make("dqn", toy_env())
    agent.learn(100)
    agent.save(tmp_path / "agent.pt")
    moved = agents.load(tmp_path / "agent.pt", toy_env(reward_fn=lambda network: 0.75))  # another dataset
    moved.reset_trial()
    assert moved.model.replay_buffer.size() == 0
    rates: list[float] = []
    moved.update_listener = lambda metrics: rates.append(metrics["exploration_rate"])
    moved.learn(200)
    buffer = moved.model.replay_buffer
    assert buffer.buffer_size == 100 and buffer.full  # half of this trial's first learn call
    assert (buffer.rewards == 0.75).all()  # no transition of the last dataset is left
    assert len(rates) == 180  # the warm-up counted from the trial's start: 20 steps of exploration first
    assert rates[0] == pytest.approx(1.0 - 0.9 * 21 / 200) and rates[-1] == pytest.approx(0.1)


def test_dqn_refuses_a_replay_buffer_larger_than_memory() -> None:
    agent = agents.make("dqn", toy_env())
    with pytest.raises(ConfigError) as refused:
        agent.learn(10**13)
    message = str(refused.value)
    assert message.startswith(
        "dqn's replay buffer of 5,000,000,000,000 transitions (half of the 10,000,000,000,000 steps to learn) "
        "would need 3,818,"  # 820 bytes a transition: 3,818,464 GiB
    )
    assert "cap it with the hyperparameter buffer_size (--set buffer_size=N), e.g. buffer_size=" in message
    assert agent.num_timesteps == 0 and not agent.model.replay_buffer.allocated
    with pytest.raises(ConfigError, match=r"of 10,000,000,000,000 transitions \(buffer_size\)"):
        agents.make("dqn", toy_env(), buffer_size=10**13).learn(10)
    agent.learn(30)  # the refusal left the agent usable
    assert agent.model.replay_buffer.buffer_size == 15


def test_dqn_leaves_no_logger_folders_in_the_temporary_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # SB3's default logger writes under gettempdir()
    agent = agents.make("dqn", toy_env())
    agent.learn(30)
    agent.save(tmp_path / "dqn.zip")
    agents.load(tmp_path / "dqn.zip", toy_env()).learn(10)
    assert not list(tmp_path.glob("SB3-*"))


# -- meta-A2C ----------------------------------------------------------------------------------------------
def test_meta_a2c_reads_the_previous_action_and_reward() -> None:
    agent = agents.make("meta_a2c", toy_env())
    agent.learn(20)
    observation = Architecture.parse("c3-m2").nsc(10)
    memory = agent.trial_state.memory
    probabilities = {
        (action, reward): agent.action_distribution(observation, MetaA2CState(memory, action, reward))[0]
        for action, reward in [(3, 0.5), (1, 0.5), (3, 0.9)]
    }
    assert not torch.allclose(probabilities[(3, 0.5)], probabilities[(1, 0.5)])
    assert not torch.allclose(probabilities[(3, 0.5)], probabilities[(3, 0.9)])
    inputs = agent.network.encode(observation, 3, 0.5)
    assert inputs[90 + 3] == 1 and inputs[90:98].sum() == 1 and inputs[98] == 0.5 and inputs[99] == 0.2


def test_meta_a2c_learns_from_a_rollout_that_play_interrupted() -> None:
    agent = agents.make("meta_a2c", toy_env())
    updates: list[dict] = []
    agent.update_listener = updates.append
    agent.learn(7)  # one update, two steps left in the rollout
    agent.play(5)  # moves the memory on
    agent.learn(10)  # first learns from the two steps, then two full rollouts
    assert [update["step"] for update in updates] == [5, 7, 12, 17]
    assert not agent.rollout.inputs
