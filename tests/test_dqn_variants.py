"""DQN as NasGym's baselines fork ran it: double Q-learning, a dueling head on a tanh trunk, unmasked actions."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from support import toy_env, toy_reward

import agents
from agents import checkpoint
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.protocols import protocol

FORK = {**protocol("nasgym2019").hyperparameters("dqn"), "learning_starts": 20}
"""The protocol's DQN with the warm-up of this package's default, so that it learns within a short run."""


def test_the_forks_q_network_is_a_dueling_head_on_a_tanh_trunk() -> None:
    agent = agents.make("dqn", toy_env(), **FORK)
    q_net = agent.policy.q_net
    assert isinstance(q_net.q_net[1], torch.nn.Tanh) and isinstance(q_net.q_net[3], torch.nn.Tanh)
    assert [m.out_features for m in q_net.q_net if isinstance(m, torch.nn.Linear)] == [64, 64, 256, 8]
    assert [m.out_features for m in q_net.value if isinstance(m, torch.nn.Linear)] == [256, 1]
    observations = torch.as_tensor(np.stack([agent.space.observe(()), agent.space.observe((1, 3))]))
    features = q_net.features(observations)
    hidden = q_net.q_net[:4](features)
    advantages, value = q_net.q_net[4:](hidden), q_net.value(hidden)
    expected = value + advantages - advantages.mean(dim=1, keepdim=True)
    assert torch.allclose(q_net(observations), expected)  # unmasked: every action keeps its value


def test_double_q_values_the_online_networks_choice_with_the_target_network() -> None:
    agent = agents.make("dqn", toy_env(), **FORK, batch_size=16)
    agent.learn(200)
    model = agent.model
    with torch.no_grad():
        model.q_net_target.q_net[-1].bias.add_(torch.arange(8.0))  # make the target disagree with the online net
    state = model.replay_buffer.rng.bit_generator.state
    batch = model.replay_buffer.sample(16)
    model.replay_buffer.rng.bit_generator.state = state  # train draws the same batch
    with torch.no_grad():
        chosen = model.q_net(batch.next_observations).argmax(dim=1, keepdim=True)
        double = batch.rewards + (1 - batch.dones) * model.gamma * model.q_net_target(batch.next_observations).gather(
            1, chosen
        )
        plain = (
            batch.rewards
            + (1 - batch.dones)
            * model.gamma
            * model.q_net_target(batch.next_observations).max(dim=1, keepdim=True).values
        )
        current = model.q_net(batch.observations).gather(1, batch.actions.long())
    assert not torch.allclose(double, plain)
    loss = model.train(gradient_steps=1, batch_size=16)
    assert loss == pytest.approx(torch.nn.functional.smooth_l1_loss(current, double).item(), rel=1e-5)


def test_the_forks_dqn_learns_the_toy_problem() -> None:
    finals: list[float] = []
    agent = agents.make("dqn", toy_env(), **FORK)
    agent.learn(2000, callback=lambda e: finals.append(e["reward"]) if e["terminated"] else None)  # invalid: 0
    assert max(finals) == 1.0
    assert np.mean(finals[-50:]) > 0.25  # unmasked random search: about 0.06 on this problem


# -- the loop over copies, the target network, checkpoints of the SB3-based DQN -------------------------------
@pytest.mark.parametrize("train_freq", [1, 2, 3, 4])
def test_one_gradient_step_per_train_freq_transitions_however_many_copies(train_freq: int) -> None:
    env = gym.make_vec(
        "NAS-v0",
        num_envs=2,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        evaluator=FunctionEvaluator(toy_reward, image_size=84),
    )
    agent = agents.make("dqn", env, train_freq=train_freq, learning_starts=0, batch_size=4)
    agent.learn(40)
    assert agent.num_timesteps == 40 and agent.model.n_updates == 40 // train_freq


def test_the_target_network_is_the_online_one_right_after_every_interval() -> None:
    agent = agents.make("dqn", toy_env(), target_update_interval=10, learning_starts=5, batch_size=4)
    online, target = agent.model.q_net, agent.model.q_net_target

    def same(event: dict) -> bool:
        copied = all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters(), strict=True))
        return event["step"] <= 5 or copied == (event["step"] % 10 == 0)  # else stops the run: learning started

    agent.learn(60, callback=same)
    assert agent.num_timesteps == 60


def test_a_checkpoint_of_the_sb3_based_dqn_still_loads(tmp_path) -> None:
    """Its networks, optimiser and replay buffer were laid out as now; its counters had SB3's names."""
    agent = agents.make("dqn", toy_env(), learning_starts=5, batch_size=4)
    agent.learn(300, callback=lambda event: not (event["step"] >= 30 and event["terminated"]))  # at an episode end
    steps, state = agent.num_timesteps, agent.state_dict()
    counters = state["counters"]
    state["counters"] = {**counters, "_n_updates": counters.pop("n_updates"), "_n_calls": steps, "num_timesteps": steps}
    payload = {"agent": "dqn", "format": checkpoint.FORMAT, "config": dataclasses.asdict(agent.config)}
    payload |= {"num_timesteps": steps, "observation_shape": (10, 5), "state": state, "metadata": {}}
    checkpoint.write(tmp_path / "old.pt", payload)
    loaded = agents.load(tmp_path / "old.pt", toy_env())
    assert loaded.model.n_updates == agent.model.n_updates == steps - 5
    assert trajectory(loaded, 30) == trajectory(agent, 30)


def trajectory(agent: agents.Agent, steps: int) -> list[tuple]:
    events: list[dict] = []
    agent.learn(steps, callback=events.append)
    return [(e["step"], e["info"]["architecture"], e["reward"]) for e in events]
