"""One agent path: every agent acts on a vector env, a plain env wrapped once as a vector env of one copy
(``agents.base.OneEnv``), so each agent has one learn loop and one play loop and a plain env runs as one copy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from support import toy_env, toy_reward

import agents
from agents.base import OneEnv
from agents.reinforce import Controller
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.search_space import TERMINAL_ACTION, Architecture
from nasgym.core.vector_env import HOLD, copy_info

SHORT = {"reinforce": {"architectures_per_update": 3}, "dqn": {"learning_starts": 5, "batch_size": 4}}
"""Hyperparameters that let each agent update within the few steps these tests take."""
SECOND_LOOPS = ("_learn_vector", "_play_vector", "_begin_step", "_begin_vector", "_update_vector")
"""Names the agents' second (plain-env or vector) loops had."""


def one_copy() -> gym.vector.VectorEnv:
    evaluator = FunctionEvaluator(toy_reward, image_size=84)
    return gym.make_vec(
        "NAS-v0", num_envs=1, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, evaluator=evaluator, image_size=84
    )


def run(agent: agents.Agent) -> list[tuple]:
    """What the agent does over learn, play (switching episodes mid-way) and learn again."""
    events: list[dict] = []
    agent.learn(23, callback=events.append)
    agent.play(9, callback=events.append)
    agent.learn(30, callback=events.append)
    return [(e["step"], e["info"]["architecture"], e["reward"], e["terminated"], e["env"]) for e in events]


@pytest.mark.parametrize("name", agents.agent_names())
def test_each_agent_has_one_learn_loop_and_one_play_loop(name: str) -> None:
    cls = agents.AGENTS[name]
    assert not [loop for loop in SECOND_LOOPS if hasattr(cls, loop)]
    assert not hasattr(agents.Agent, "_current_observation")


@pytest.mark.parametrize("name", agents.agent_names())
def test_a_plain_env_runs_as_a_vector_env_of_one_copy(name: str) -> None:
    env = toy_env()
    plain = agents.make(name, env, **SHORT.get(name, {}))
    assert plain.env is env and isinstance(plain.vec_env, OneEnv) and plain.vec_env.env is env
    assert plain.num_envs == 1 and not plain.vectorized
    copy = agents.make(name, one_copy(), **SHORT.get(name, {}))
    assert copy.vec_env is copy.env and copy.vectorized
    assert run(plain) == run(copy)
    assert plain.num_timesteps == copy.num_timesteps == 53


def test_one_env_steps_resets_and_holds_as_nas_vector_env_does() -> None:
    env = toy_env()
    envs = OneEnv(env)
    assert envs.num_envs == 1 and envs.unwrapped is envs
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
    assert envs.single_observation_space == env.observation_space and envs.single_action_space == env.action_space
    observations, _ = envs.reset()
    assert observations.shape == (1, *env.observation_space.shape) and not observations.any()
    observations, rewards, terminated, _, infos = envs.step(np.array([1]))
    assert observations.any() and not terminated[0] and copy_info(infos, 0)["architecture"] == "c3"
    held, rewards, terminated, _, infos = envs.step(np.array([HOLD]))
    assert np.array_equal(held, observations) and rewards[0] == 0.0 and not terminated[0] and copy_info(infos, 0) == {}
    assert envs.action_masks().shape == (1, env.action_space.n)
    observations, rewards, terminated, _, infos = envs.step(np.array([TERMINAL_ACTION]))
    assert terminated[0] and not observations.any()  # the step that ends the episode resets the env
    assert copy_info(infos, 0)["architecture"] == "c3-t" and rewards[0] == toy_reward(Architecture.parse("c3"))
    assert envs.get_attr("max_layers") == (env.unwrapped.max_layers,)
    assert callable(envs.prefetch)


def test_reinforce_takes_the_controller_of_its_space_by_name() -> None:
    agent = agents.make("reinforce", toy_env())
    assert agent.space.name == "chain" and type(agent.controller) is Controller
