"""Each learning agent, on a cheap known reward (``toy_reward``: 1.0 for c3-c3-m2-c5 only), finds the optimum
or beats random search by a clear margin within a small budget, under a fixed seed."""

from __future__ import annotations

import numpy as np
import pytest
from support import toy_env

import agents


def search(name: str, reward: str, steps: int, **hyperparameters) -> dict[str, float]:
    """Final accuracies and returns of the episodes an agent played while learning."""
    finals, returns, running, rewards = [], [], 0.0, []

    def record(event: dict) -> None:
        nonlocal running
        running += event["reward"]
        rewards.append(event["reward"])
        if event["terminated"]:
            finals.append(event["info"]["accuracy"])
            returns.append(running)
            running = 0.0

    agents.make(name, toy_env(reward), **hyperparameters).learn(steps, callback=record)
    return {
        "best": max(finals),
        "late_final": np.mean(finals[-50:]),
        "late_return": np.mean(returns[-50:]),
        "late_step_reward": np.mean(rewards[-200:]),
    }


@pytest.fixture(scope="module")
def random_search() -> dict[str, dict[str, float]]:
    """Random search with the budgets below: 3000 steps of final rewards, 2000 of per-step rewards."""
    return {"final": search("random", "final", 3000), "per_step": search("random", "per_step", 2000)}


def test_reinforce_finds_the_optimum(random_search) -> None:
    """Zoph & Le's setting (reward="final"), with a larger learning rate and an entropy bonus for a short run."""
    found = search("reinforce", "final", 3000, learning_rate=1e-2, entropy_coef=0.05)
    assert found["best"] == 1.0 > random_search["final"]["best"]
    assert found["late_final"] > random_search["final"]["late_final"] + 0.4


def test_reinforce_learns_per_step_rewards(random_search) -> None:
    """With NasGym's per-step reward REINFORCE maximises the episode's summed reward."""
    found = search("reinforce", "per_step", 2000, learning_rate=1e-2, entropy_coef=0.05)
    assert found["late_return"] > random_search["per_step"]["late_return"] + 2.0


def test_dqn_finds_the_optimum(random_search) -> None:
    """NasGym's settings, unchanged."""
    found = search("dqn", "per_step", 2000)
    assert found["best"] == 1.0 > random_search["per_step"]["best"]
    assert found["late_return"] > random_search["per_step"]["late_return"] + 2.0


@pytest.mark.parametrize("memory", ["rl2", "nasgym"])
def test_meta_a2c_beats_random_search(random_search, memory: str) -> None:
    """NasGym's settings, with either memory handling. Under RL² returns run across episode ends, so the agent
    maximises the reward per step of the trial rather than per episode, and its episodes are shorter: the reward
    per step and the final networks are what it is compared on."""
    found = search("meta_a2c", "per_step", 2000, memory=memory)
    assert found["late_step_reward"] > random_search["per_step"]["late_step_reward"] + 0.25
    assert found["late_final"] > random_search["per_step"]["late_final"] + 0.1
