"""The second half of the ENAS workflow: after a search with cheap rewards (weight sharing), train the best K
distinct networks it found from scratch with the search's own training settings, so the user gets trained
accuracies for them. The results go to ``retrained.json`` and ``retrained.csv`` in the search's folder."""

from __future__ import annotations

import csv
import json
from typing import Any

from nasgym.core.config import make_configs
from nasgym.core.errors import ConfigError
from nasgym.core.files import atomic_path, atomic_write_text
from nasgym.core.reward_sources import build_evaluator
from nasgym.core.search_space import Architecture
from nasgym.runners.run_folder import RESUME_ADVICE, RunFolder
from nasgym.runners.search import SearchSettings, summarise

COLUMNS = ("rank", "architecture", "search_reward", "search_reward_source", "trained_reward", "parameters",
           "train_seconds", "from_cache", "failure")  # fmt: skip


def retrain_top(folder: RunFolder, settings: SearchSettings, k: int) -> list[dict[str, Any]]:
    """Train the ``k`` networks with the best search reward (each network's best, as ``summary.json`` ranks them)
    with ``reward_source='trained'`` and otherwise the search's settings (the reward cache answers any trained
    before); write and return one record per network, in the search's order."""
    if k < 1:
        raise ConfigError(f"--retrain-top needs K >= 1, got {k}")
    rows = folder.episodes()
    best = summarise(rows, settings, top=k)["best"]
    source = "weight_sharing" if settings.typed.env.reward_source == "weight_sharing" else "trained"
    env_config, train_config = make_configs(
        {"dataset": settings.dataset, **settings.env_options, "reward_source": "trained"}
    )
    evaluator = build_evaluator(env_config, train_config)
    try:
        networks = [
            Architecture(()) if e["architecture"] == "(empty)" else Architecture.parse(e["architecture"]) for e in best
        ]
        evaluations = evaluator.evaluate(networks)
    finally:
        evaluator.close()
    records = [
        {
            "rank": rank,
            "architecture": entry["architecture"],
            "search_reward": entry["reward"],
            "search_reward_source": source,
            "trained_reward": evaluation.accuracy,
            "parameters": evaluation.parameters,
            "train_seconds": evaluation.train_seconds,
            "from_cache": evaluation.from_cache,
            "failure": evaluation.failure,
        }
        for rank, (entry, evaluation) in enumerate(zip(best, evaluations, strict=True), start=1)
    ]
    atomic_write_text(folder.retrained_json, json.dumps(records, indent=2), RESUME_ADVICE)
    with atomic_path(folder.retrained_csv, RESUME_ADVICE) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    return records
