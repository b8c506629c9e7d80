"""Where nasgym keeps what outlives a run: the reward cache and prepared datasets.

``NASGYM_HOME`` moves both (tests point it at a temporary folder); ``NASGYM_DATA_DIR`` moves only the data.
"""

from __future__ import annotations

import os
from pathlib import Path


def nasgym_home() -> Path:
    return Path(os.environ.get("NASGYM_HOME") or Path.home() / ".cache" / "nasgym").expanduser()


def default_cache_path() -> Path:
    return nasgym_home() / "rewards.sqlite"


def default_data_dir() -> Path:
    return Path(os.environ.get("NASGYM_DATA_DIR") or nasgym_home() / "data").expanduser()
