"""A surrogate's verdict checked by training: the best networks each agent found on a surrogate, trained live at the
table's settings, their live rewards beside the surrogate's.

A surrogate ranks networks it never saw, so an agent can "win" on its errors. Before a conclusion is drawn, each
agent's best final incumbents (the networks with the best observed reward at the end of a run, the ``LIVE_NETWORKS``
the surrogate rates highest) are trained from scratch with the settings the surrogate's table was built with, through
the reward cache (a rerun trains nothing twice). The dataset must be prepared; when it is not, the report says so.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from nasgym.core.errors import NasGymError
from nasgym.core.reward_sources import build_evaluator
from nasgym.core.search_space import Architecture
from nasgym.runners.envs import EnvSettings
from nasgym.runners.experiments.lookup_stats import TrueRewards
from nasgym.runners.experiments.report import markdown_table

LIVE_NETWORKS = 3
"""Networks per agent trained live: its best final incumbents by the surrogate's rating."""


def best_incumbents(incumbents: list[str], truth: TrueRewards, count: int = LIVE_NETWORKS) -> list[str]:
    """The ``count`` distinct networks of ``incumbents`` that the surrogate rates highest."""
    return sorted(set(incumbents), key=truth, reverse=True)[:count]


def live_rewards(networks: list[str], surrogate: EnvSettings) -> dict[str, float]:
    """Each network trained live (training seed 0) at the surrogate's settings: the same configs, rewards trained."""
    env_config = replace(surrogate.env, reward_source="trained")
    evaluator = build_evaluator(env_config, replace(surrogate.train, seed=0))
    try:
        evaluations = evaluator.evaluate([Architecture.parse(name) for name in networks])
    finally:
        evaluator.close()
    return {name: evaluation.accuracy for name, evaluation in zip(networks, evaluations, strict=True)}


def live_check(incumbents: dict[str, list[str]], truth: TrueRewards, surrogate: EnvSettings) -> dict[str, Any]:
    """Per agent, its best incumbents with surrogate and live reward (``surrogate``: the dataset's settings); or why
    the check could not run."""
    chosen = {agent: best_incumbents(names, truth) for agent, names in incumbents.items()}
    everyone = list(dict.fromkeys(name for names in chosen.values() for name in names))
    try:
        live = live_rewards(everyone, surrogate)
    except NasGymError as error:  # e.g. the dataset is not prepared: the surrogate's figures stand unchecked
        return {"skipped": str(error)}
    return {
        agent: [{"network": name, "surrogate": truth(name), "live": live[name]} for name in names]
        for agent, names in chosen.items()
    }


def live_markdown(check: dict[str, Any]) -> list[str]:
    lines = ["Live check: each agent's best final incumbents by the surrogate, trained from scratch at the table's "
             "settings (training seed 0).", ""]  # fmt: skip
    if "skipped" in check:
        return [*lines, f"Not run: {check['skipped']}", ""]
    rows = [
        [
            agent,
            f"`{row['network']}`",
            f"{row['surrogate']:.4f}",
            f"{row['live']:.4f}",
            f"{row['live'] - row['surrogate']:+.4f}",
        ]
        for agent, found in check.items()
        for row in found
    ]
    gaps = [abs(row["live"] - row["surrogate"]) for found in check.values() for row in found]
    summary = f"Mean absolute difference {np.mean(gaps):.4f} over {len(gaps)} networks." if gaps else ""
    return [
        *lines,
        markdown_table(["agent", "network", "surrogate", "live", "live - surrogate"], rows),
        "",
        summary,
        "",
    ]
