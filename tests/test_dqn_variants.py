"""DQN as NasGym's baselines fork ran it: double Q-learning, a dueling head on a tanh trunk, unmasked actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import toy_env

import agents
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
    features = q_net.extract_features(observations, q_net.features_extractor)
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
    model.train(gradient_steps=1, batch_size=16)
    loss = model.logger.name_to_value["train/loss"]
    assert loss == pytest.approx(torch.nn.functional.smooth_l1_loss(current, double).item(), rel=1e-5)


def test_the_forks_dqn_learns_the_toy_problem() -> None:
    finals: list[float] = []
    agent = agents.make("dqn", toy_env(), **FORK)
    agent.learn(2000, callback=lambda e: finals.append(e["reward"]) if e["terminated"] else None)  # invalid: 0
    assert max(finals) == 1.0
    assert np.mean(finals[-50:]) > 0.25  # unmasked random search: about 0.06 on this problem
