"""Shared fixtures: nothing touches the user's home, nothing downloads, slow tests run only where asked for."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see nasgym/__init__.py

import http.server
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from support import Mount, run_command

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


@pytest.fixture
def local_server(tmp_path: Path):
    """A plain HTTP server on 127.0.0.1 serving tmp_path/served: the download path without the internet."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Mount]:
    """``small_disk(size, read_only=False)``: a fresh tmpfs of ``size`` (as mount takes it), unmounted after."""
    mounted: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a small disk is a tmpfs mount, which needs root and the mount command")
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        result = run_command(
            "mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs", str(target)
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        if run_command("umount", str(target)).returncode != 0:
            run_command("umount", "-l", str(target))
