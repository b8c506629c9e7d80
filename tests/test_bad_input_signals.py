"""Bad input of issue 22, item 8, last groups: agents' step counts, an unreachable Ray address, Ctrl-C and SIGTERM at
any moment of a command, and the small messages (a full disk, tensorflow-datasets' bars under --no-progress). Each is
one line and exit 2 (130 for a stop) from the command line, nasgym's own error type from the API, or it works."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from support import TINY_FLAGS, make_dtd, one_line_error, own_spec

import agents
import nasgym  # noqa: F401
from nasgym.core.datasets.prepare import prepare
from nasgym.core.errors import ConfigError
from nasgym.core.files import disk_full_error
from nasgym.core.ray_backend import check_reachable
from nasgym.runners.cli import INTERRUPTED, _describe_error


def table_env() -> gym.Env:
    """NAS-v0 answered from the shipped look-up table: a step takes microseconds."""
    return gym.make("NAS-v0", reward_source="table", dataset="omniglot_small1")


# -- agents: learn and play take a whole number of steps, at least 1 -------------------------------------------------
@pytest.mark.parametrize("name", agents.agent_names())
def test_every_agent_takes_a_positive_whole_number_of_steps(name):
    agent = agents.make(name, table_env())
    for steps in (1.5, -1, 0, True, "3", None, 2.0):
        for method in (agent.learn, agent.play):
            with pytest.raises(ConfigError, match="total_steps must be"):
                method(steps)
    assert agent.num_timesteps == 0
    agent.learn(np.int64(2))  # a NumPy integer is a whole number
    agent.play(2)
    assert agent.num_timesteps >= 2


# -- a Ray address nobody listens on fails in seconds ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_ray_address_is_one_line_at_once(tmp_path, capsys):
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at {address} "):
        check_reachable(address)
    started = time.monotonic()
    argv = ["search", "--ray", address, "--steps", "2", "--out", str(tmp_path / "run"), "--no-progress", *TINY_FLAGS]
    error = one_line_error(argv, capsys)
    assert time.monotonic() - started < 30  # Ray itself retried for minutes
    assert f"no Ray cluster answers at {address}" in error and "ray start --head" in error
    check_reachable("auto")  # left to Ray, as are addresses without a port
    check_reachable("ray://somewhere")


# -- Ctrl-C and SIGTERM stop any command cleanly, from its first moment -----------------------------------------------
def nasgym_process(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nasgym", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def loading_torch(process: subprocess.Popen) -> bool:
    """Whether the process has started to import PyTorch (the command's own imports, inside ``main``)."""
    try:
        return "libtorch" in Path(f"/proc/{process.pid}/maps").read_text()
    except OSError:
        return False


def assert_stopped_cleanly(process: subprocess.Popen, within: float) -> None:
    try:
        _, stderr = process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"still running {within} s after the signal") from None
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == INTERRUPTED, stderr


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="watches the child's imports in /proc")
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_while_the_command_starts_is_the_clean_line(stop, tmp_path):
    process = nasgym_process("search", "--steps", "2", "--out", str(tmp_path / "run"), "--no-progress", *TINY_FLAGS)
    deadline = time.monotonic() + 30
    time.sleep(0.3)
    while not loading_torch(process) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # past `import nasgym`, the Python start-up no program can guard
    process.send_signal(stop)
    assert_stopped_cleanly(process, within=30)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has its own SIGTERM handler (Python installs none: the command's entry point does)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1]
    return bool(int(caught, 16) >> (signal.SIGTERM - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="watches the child's signal handlers in /proc")
@pytest.mark.skipif(shutil.which("nasgym") is None, reason="needs the installed `nasgym` command")
def test_a_stop_while_the_package_imports_is_the_clean_line():
    process = subprocess.Popen(
        [shutil.which("nasgym"), "table", "show", "digits"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while not catches_sigterm(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    process.send_signal(signal.SIGINT)
    assert "_multiarray_umath" not in maps  # the signal came before `import nasgym` (NumPy, via Gymnasium) ended
    assert_stopped_cleanly(process, within=30)


def test_sigterm_stops_a_running_search_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    argv = ["search", "--reward-source", "table", "--dataset", "omniglot_small1", "--steps", "100000000"]
    process = nasgym_process(*argv, "--out", str(out), "--no-progress")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if (out / "episodes.csv").is_file() and (out / "episodes.csv").stat().st_size > 10_000:
            break
        time.sleep(0.1)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    assert_stopped_cleanly(process, within=30)  # a lost wake-up in TensorBoard's writer once held it for 120 s
    assert (out / "summary.json").is_file()


# -- small messages ----------------------------------------------------------------------------------------------------
def test_a_full_disk_says_where_and_how_much_is_free(tmp_path):
    message = _describe_error(disk_full_error(tmp_path / "run.json", "free space and continue with --resume"))
    assert message.startswith(f"no space left on the device of {tmp_path / 'run.json'} (")
    assert " bytes free); free space and continue with --resume" in message  # no "[Errno 28]" before it


def test_no_progress_turns_off_the_bars_of_dataset_preparation(tmp_path, capfd, monkeypatch):
    (tmp_path / "manual").mkdir()
    make_dtd(tmp_path / "manual")
    spec = own_spec("dtd", tmp_path / "manual", classes=3, images=12)
    monkeypatch.setenv("NASGYM_PROGRESS", "0")  # what --no-progress sets for a command
    prepare(spec, tmp_path / "data", tmp_path / "manual", download=False)
    assert "examples" not in capfd.readouterr().err  # tfds's "Generating train examples..." and shuffling bars
    from tensorflow_datasets.core.utils import tqdm_utils

    assert tqdm_utils._active  # tfds's own setting is put back
    monkeypatch.delenv("NASGYM_PROGRESS")
    prepare(spec, tmp_path / "again", tmp_path / "manual", download=False)
    assert "examples" in capfd.readouterr().err
