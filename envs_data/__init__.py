"""Data about environments (dataset specs, presets) as JSON files installed with the package."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> Any:
    """The parsed contents of ``envs_data/NAME.json`` (read from the installed package, not the checkout)."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
