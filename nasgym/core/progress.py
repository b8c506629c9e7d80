"""Whether nasgym's own progress bars show: ``NASGYM_PROGRESS=0`` turns them all off (``--no-progress`` sets it for
the command, and the processes it starts inherit it)."""

from __future__ import annotations

import os

PROGRESS_VARIABLE = "NASGYM_PROGRESS"


def bars_disabled(default: bool | None = False) -> bool | None:
    """tqdm's ``disable``: True when ``NASGYM_PROGRESS=0``, else ``default`` (None: shown on a terminal only)."""
    return True if os.environ.get(PROGRESS_VARIABLE, "").strip() == "0" else default
