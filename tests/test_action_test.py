"""The permutation test of action distributions: it tells different policies apart and not equal ones."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from nasgym.runners.experiments.action_test import chi_square, compare_actions

CONV_HEAVY = [0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
POOL_HEAVY = [0.1, 0.1, 0.1, 0.3, 0.2, 0.1, 0.05, 0.05]


def episodes(probabilities: list[float], count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).multinomial(5, probabilities, size=count)


def test_different_policies_are_told_apart_and_equal_ones_are_not() -> None:
    assert compare_actions({"a": episodes(CONV_HEAVY, 40, 0), "b": episodes(POOL_HEAVY, 40, 1)})["p_value"] < 0.01
    same = compare_actions({"a": episodes(CONV_HEAVY, 40, 2), "b": episodes(CONV_HEAVY, 40, 3)})
    assert same["p_value"] > 0.05 and same["episodes"] == 80
    three = compare_actions({k: episodes(CONV_HEAVY, 30, s) for s, k in enumerate("xyz")})
    assert three["p_value"] > 0.05


def test_the_statistic_is_pearsons_chi_square_and_too_few_episodes_give_nan() -> None:
    a, b = episodes(CONV_HEAVY, 20, 4), episodes(POOL_HEAVY, 20, 5)
    table = np.stack([a.sum(0), b.sum(0)])
    assert math.isclose(chi_square(a, b), stats.chi2_contingency(table[:, table.sum(0) > 0], correction=False)[0])
    assert math.isnan(compare_actions({"a": a[:1], "b": b})["p_value"])
