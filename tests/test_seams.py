"""The seams a new part plugs into: every registered reward source builds an evaluator with every member of the
``Evaluator`` protocol, and the environments use those members rather than probing for them."""

from __future__ import annotations

import gymnasium as gym
import pytest
from support import toy_reward

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.config import make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import Evaluator, EvaluatorBase, FunctionEvaluator
from nasgym.core.reward_sources import REWARD_SOURCES, build_evaluator
from nasgym.core.search_space import Architecture

CHEAP = {
    "trained": {"dataset": "digits", "epochs": 1, "image_size": 16, "max_samples": 150, "device": "cpu"},
    "weight_sharing": {"dataset": "digits", "epochs": 1, "image_size": 16, "max_samples": 150, "device": "cpu"},
    "table": {"dataset": "omniglot_small1"},
    "surrogate": {"dataset": "omniglot_small1"},
}
"""Settings under which each reward source is built in moments (the look-up sources read shipped tables)."""
STATIONARY = {"trained": True, "weight_sharing": False, "table": True, "surrogate": True}


def test_every_registered_reward_source_has_cheap_settings_here():
    assert set(CHEAP) == set(REWARD_SOURCES)


@pytest.mark.parametrize("source", sorted(REWARD_SOURCES))
def test_every_reward_source_builds_an_evaluator_with_the_whole_protocol(source: str):
    evaluator = build_evaluator(*make_configs({**CHEAP[source], "reward_source": source}))
    try:
        assert isinstance(evaluator, Evaluator)
        assert evaluator.stationary is STATIONARY[source]
        state = evaluator.state_dict()
        assert (state is None) is evaluator.stationary  # a checkpoint holds the state of moving rewards only
        if state is not None:
            evaluator.load_state_dict(state)
    finally:
        evaluator.close()


def test_the_ray_backend_is_a_training_evaluator_and_so_an_evaluator():
    pytest.importorskip("ray")
    from nasgym.core.ray_backend import RayEvaluator

    assert issubclass(RayEvaluator, EvaluatorBase)
    assert all(callable(getattr(RayEvaluator, name)) for name in ("evaluate", "cached", "prepare", "close"))


def test_a_reward_function_evaluator_has_the_defaults():
    evaluator = FunctionEvaluator(toy_reward)
    network = Architecture.parse("c3-m2")
    assert isinstance(evaluator, Evaluator) and evaluator.stationary and evaluator.prepare() is evaluator
    assert evaluator.cached(network) is None and evaluator.state_dict() is None
    assert evaluator.evaluate([network], on_epoch=lambda _epoch: None)[0].accuracy == toy_reward(network)


class EvaluateOnly:
    def evaluate(self, architectures, on_epoch=None):
        return FunctionEvaluator(toy_reward).evaluate(architectures)


class Moving(EvaluatorBase):
    """A test double of a reward source whose rewards move: only ``evaluate`` and ``stationary`` written."""

    stationary = False

    def __init__(self):
        self.inner, self.asked = FunctionEvaluator(toy_reward), []

    def evaluate(self, architectures, on_epoch=None):
        self.asked.append(len(architectures))
        return self.inner.evaluate(architectures)


def test_an_evaluator_without_the_protocol_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="evaluator must have an evaluate") as caught:
        gym.make("NAS-v0", evaluator=EvaluateOnly())
    assert "EvaluatorBase" in str(caught.value) and "\n" not in str(caught.value)


def test_an_evaluator_declared_non_stationary_is_never_asked_ahead_of_the_steps():
    evaluator = Moving()
    env = gym.make("NAS-v0", evaluator=evaluator, reward="per_step")
    assert env.spec.nondeterministic
    env.reset()
    env.unwrapped.prefetch([[1, 3, 7]])
    assert evaluator.asked == []
    envs = gym.make_vec("NAS-v0", num_envs=2, evaluator=evaluator, reward="per_step")
    envs.reset()
    envs.step([1, 3])
    assert evaluator.asked == [1, 1]  # each copy's own step, none as a batch
