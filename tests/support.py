"""What several test modules share that is not a fixture: tiny budgets, toy rewards, the real Omniglot archives.

Test modules import this module, never each other. Fixtures live in conftest.py.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import gymnasium as gym
import pytest

from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.search_space import Architecture

REPO = Path(__file__).resolve().parents[1]

TINY = {"epochs": 1, "image_size": 16, "batch_size": 64, "device": "cpu"}
"""A child-training budget that takes well under a second per network on two CPU cores."""

OMNIGLOT_DIR = Path(os.environ.get("NASGYM_TEST_OMNIGLOT") or REPO.parent / "shared" / "data" / "omniglot")
"""The two small official Omniglot archives: beside the clone (../shared/data/omniglot) or $NASGYM_TEST_OMNIGLOT."""
OMNIGLOT_ARCHIVES = ("images_background_small1.zip", "images_background_small2.zip")
needs_omniglot = pytest.mark.skipif(
    not all((OMNIGLOT_DIR / name).is_file() for name in OMNIGLOT_ARCHIVES),
    reason=f"the real Omniglot archives are not in {OMNIGLOT_DIR} (set NASGYM_TEST_OMNIGLOT to their folder)",
)

TARGET = Architecture.parse("c3-c3-m2-c5")


def toy_reward(network: Architecture) -> float:
    """1.0 for TARGET only; otherwise the share of positions that match it (longer networks are diluted)."""
    matches = sum(a == b for a, b in zip(network.actions, TARGET.actions, strict=False))
    return matches / max(len(network), len(TARGET))


def toy_env(reward: str = "per_step", image_size: int = 84, reward_fn=toy_reward, **options) -> gym.Env:
    """NAS-v0 whose reward is ``reward_fn`` of the network, through the documented evaluator hook."""
    evaluator = FunctionEvaluator(reward_fn, image_size=image_size)
    return gym.make("NAS-v0", evaluator=evaluator, reward=reward, image_size=image_size, **options)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
