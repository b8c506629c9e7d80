"""Small helpers for the markdown reports the experiments write."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
