"""Do two or more sets of episodes choose actions differently? A permutation test over whole episodes.

The statistic is Pearson's chi-square of the (group x action) table of action counts. A plain chi-square test would
treat every action as independent, but the actions of one episode are chosen together (by one policy state, in
one sequence), so its p-value is too small; exchanging whole episodes between the groups respects that, and the
p-value is the share of exchanges whose statistic reaches the observed one (scipy.stats.permutation_test).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np
from scipy import stats

from nasgym.core.search_space import N_ACTIONS
from nasgym.runners.experiments.metrics import RunData

RESAMPLES = 2000


def episode_action_counts(run: RunData) -> np.ndarray:
    """``(finished episodes, N_ACTIONS)``: how often each finished episode of ``run`` chose each action."""
    ends = np.cumsum(run.episode_lengths.astype(int))
    counts = np.zeros((len(ends), N_ACTIONS), dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]]).astype(int)[: len(ends)]  # no finished episode: no rows
    for episode, (start, end) in enumerate(zip(starts, ends, strict=True)):
        counts[episode] = np.bincount(run.actions[start:end], minlength=N_ACTIONS)
    return counts


def chi_square(*groups: np.ndarray) -> float:
    """Pearson's chi-square of the table of summed action counts, actions no group chose left out."""
    table = np.stack([group.sum(axis=0) for group in groups])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


def compare_actions(groups: Mapping[str, np.ndarray], seed: int = 0) -> dict[str, float | int]:
    """The permutation test of ``groups`` (name -> per-episode action counts): statistic, p-value, episodes."""
    samples = [np.asarray(counts) for counts in groups.values()]
    episodes = int(sum(len(sample) for sample in samples))
    if len(samples) < 2 or any(len(sample) < 2 for sample in samples):
        return {"chi_square": math.nan, "p_value": math.nan, "episodes": episodes}
    pooled = np.concatenate(samples)
    bounds = np.cumsum([0, *(len(sample) for sample in samples)])
    # The test permutes episode numbers between the groups; each group's statistic reads its episodes' counts.
    numbers = [np.arange(start, end) for start, end in itertools.pairwise(bounds)]
    result = stats.permutation_test(
        numbers,
        lambda *groups_of_numbers: chi_square(*(pooled[group.astype(int)] for group in groups_of_numbers)),
        permutation_type="independent",
        alternative="greater",
        n_resamples=RESAMPLES,
        vectorized=False,
        rng=np.random.default_rng(seed),
    )
    return {"chi_square": float(result.statistic), "p_value": float(result.pvalue), "episodes": episodes}


def wilcoxon_action_shares(first: np.ndarray, second: np.ndarray) -> dict[str, float | int]:
    """NasGym's test: Wilcoxon's signed-rank test over each action's share of two sets of episodes (per-episode
    counts), the actions paired. It ignores that an episode's actions are chosen together, as theirs did."""
    shares = [counts.sum(axis=0) / max(int(counts.sum()), 1) for counts in (first, second)]
    difference = shares[0] - shares[1]
    p_value = float(stats.wilcoxon(difference).pvalue) if np.any(difference) else math.nan
    return {"chi_square": math.nan, "p_value": p_value, "episodes": int(len(first) + len(second))}
