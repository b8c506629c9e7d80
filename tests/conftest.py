"""Shared fixtures: nothing touches the user's home, nothing downloads, slow tests run only where asked for."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see nasgym/__init__.py

from pathlib import Path

import pytest

# Tests never read or write ~/.cache/nasgym: everything persistent goes to a per-session folder.
os.environ.pop("NASGYM_DATA_DIR", None)

SLOW = "NASGYM_SLOW_TESTS"


@pytest.fixture(autouse=True)
def nasgym_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("nasgym_home")
    monkeypatch.setenv("NASGYM_HOME", str(home))
    return home


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked slow (minutes on a CPU) run only with NASGYM_SLOW_TESTS=1, which CI sets."""
    if os.environ.get(SLOW) == "1":
        return
    skip = pytest.mark.skip(reason=f"slow (minutes on a CPU): set {SLOW}=1 to run it, as CI does")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


from support import OMNIGLOT_DIR, REPO, TINY  # noqa: E402,F401  interim re-export until every module imports support
