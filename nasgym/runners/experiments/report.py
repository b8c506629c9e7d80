"""Small helpers for the markdown reports the experiments write."""

from __future__ import annotations

import math
from collections.abc import Sequence

from nasgym.runners.envs import NAS_V0, EnvSettings


def format_value(value: float, interval: float = math.nan, digits: int = 3) -> str:
    """'0.912 +- 0.013', or just the value when there is no interval."""
    if math.isnan(value):
        return "n/a"
    text = f"{value:.{digits}f}"
    return text if math.isnan(interval) else f"{text} +- {interval:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def reward_mode(env_options: dict | EnvSettings, env_id: str = NAS_V0) -> str:
    """How a run's reward is computed, in words: the environment's reward mode and the trainer's reward (from the
    typed settings, or keywords parsed here)."""
    typed = env_options if isinstance(env_options, EnvSettings) else EnvSettings.parse(env_id, env_options)
    env_config, train_config = typed.configs
    epochs, exponent = train_config.reward_epochs, train_config.reward_exponent
    accuracy = "accuracy" if epochs == 1 else f"best accuracy of the last {epochs} epochs"
    if exponent != 1:
        accuracy = f"({accuracy})^{exponent:g}"
    when = "every step" if env_config.reward == "per_step" else "at the episode's end"
    return f"`{env_config.reward}` ({accuracy} on the reward split, {when})"
