"""Evaluators given something that is not an architecture refuse it in one line of nasgym's own error type
(issue 22, item 8), instead of an AttributeError from deep inside."""

from __future__ import annotations

import gymnasium as gym
import pytest
from support import TINY, toy_env

from nasgym.core.errors import ArchitectureError
from nasgym.core.search_space import Architecture


@pytest.mark.parametrize("item", ["not an architecture", "c3-m2", [1, 3], None])
@pytest.mark.parametrize("source", ["trained", "function", "weight_sharing"])
def test_evaluate_refuses_what_is_not_an_architecture(source: str, item: object) -> None:
    if source == "function":
        env = toy_env()
    else:
        options = {"ws_warmup": 0, "ws_valid_samples": 16} if source == "weight_sharing" else {}
        env = gym.make("NAS-v0", dataset="digits", reward_source=source, max_samples=150, **TINY, **options)
    evaluator = env.unwrapped.evaluator
    with pytest.raises(ArchitectureError, match=r"evaluate takes architectures, got \w+ .*Architecture\.parse"):
        evaluator.evaluate([Architecture.parse("c3"), item])
    assert evaluator.evaluate([Architecture.parse("m2")])[0].accuracy >= 0  # the evaluator still works
