"""meta-A2C's memory handling: RL² (the default) against NasGym's and a memoryless control."""

from __future__ import annotations

import pytest
import torch
from support import toy_env

import agents
from agents.meta_a2c import n_step_returns


def first_episode(memory: str, **hyperparameters) -> tuple[agents.Agent, list[dict]]:
    """An agent that learned until its first episode ended, and the events of that episode (every network earns a
    reward of at least 0.5, so the last reward is never 0)."""
    env = toy_env(reward_fn=lambda network: 0.5 + 0.1 * len(network))
    agent = agents.make("meta_a2c", env, memory=memory, n_steps=50, **hyperparameters)
    events: list[dict] = []
    agent.learn(100, callback=lambda event: events.append(event) or not event["terminated"])
    return agent, events


def test_nasgym_memory_zeroes_the_lstm_at_an_episode_end_and_carries_the_previous_action_and_reward() -> None:
    agent, events = first_episode("nasgym")
    state, last = agent.trial_state, events[-1]
    assert all(bool((part == 0).all()) for part in state.memory)
    assert state.previous_action == agent.rollout.actions[-1] >= 0
    assert last["reward"] > 0 and state.previous_reward == pytest.approx(last["reward"])
    inputs = agent._inputs(agent.space.observe(()), state)  # what the next episode's first step reads
    assert inputs[90 + state.previous_action] == 1 and inputs[98] == pytest.approx(last["reward"])


def test_rl2_memory_runs_on_through_episode_ends_and_episode_memory_clears_everything() -> None:
    rl2, _ = first_episode("rl2")
    assert rl2.trial_state.memory[0].abs().sum() > 0 and rl2.trial_state.previous_action >= 0
    episode, _ = first_episode("episode")
    assert episode.trial_state.memory[0].abs().sum() == 0 and episode.trial_state.previous_action == -1
    for agent in (rl2, episode):
        agent.reset_trial()
        assert agent.trial_state.memory[0].abs().sum() == 0 and agent.trial_state.previous_action == -1


@pytest.mark.parametrize("memory", ["rl2", "nasgym", "episode"])
def test_returns_cross_episode_ends_only_under_rl2(memory: str) -> None:
    agent = agents.make("meta_a2c", toy_env(), memory=memory, n_steps=50)
    agent.learn(30)  # several episodes, no update yet
    rollout = agent.rollout
    assert any(rollout.dones[:-1]), "the rollout should hold an episode end"
    assert rollout.cuts == ([False] * len(rollout.dones) if memory == "rl2" else rollout.dones)
    end = rollout.dones.index(True)
    returns = n_step_returns(rollout.rewards, rollout.cuts, 0.9, next_value=0.0)
    after = n_step_returns(rollout.rewards[end + 1 :], rollout.cuts[end + 1 :], 0.9, next_value=0.0)[0]
    crossed = rollout.rewards[end] + (0.9 * after if memory == "rl2" else 0.0)
    assert returns[end] == pytest.approx(crossed)
    if memory == "rl2":
        assert returns[end] > rollout.rewards[end]  # the next episode's rewards reach back


def test_the_reward_input_control_feeds_zero() -> None:
    agent, events = first_episode("rl2", reward_input=False)
    assert events[-1]["reward"] > 0 and agent.trial_state.previous_reward == pytest.approx(events[-1]["reward"])
    inputs = agent._inputs(agent.space.observe(()), agent.trial_state)
    assert inputs[98] == 0


def test_an_unmasked_meta_a2c_may_choose_invalid_layers() -> None:
    agent = agents.make("meta_a2c", toy_env(image_size=8), mask_invalid=False)
    events: list[dict] = []
    agent.learn(300, callback=events.append)
    assert any(not event["info"]["valid"] for event in events)
    distribution, _ = agent.action_distribution(agent.space.observe((2, 2)), agent.trial_state)
    assert torch.all(distribution > 0)  # a 5x5 conv no longer fits, yet keeps its probability
