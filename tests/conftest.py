"""Shared test settings: nothing touches the user's home, nothing downloads, budgets stay tiny."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see nasgym/__init__.py

from pathlib import Path

import pytest

# Tests never read or write ~/.cache/nasgym: everything persistent goes to a per-session folder.
os.environ.pop("NASGYM_DATA_DIR", None)

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT_DIR = REPO.parent / "shared" / "data" / "omniglot"

# A child-training budget that takes well under a second per network on two CPU cores.
TINY = {"epochs": 1, "image_size": 16, "batch_size": 64, "device": "cpu"}


@pytest.fixture(autouse=True)
def nasgym_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("nasgym_home")
    monkeypatch.setenv("NASGYM_HOME", str(home))
    return home
