"""The ``nasgym`` command: train one architecture, run a random search, and fail in one clear line."""

import csv
import json
import subprocess
import sys

import pytest

from nasgym.runners.cli import main
from nasgym.runners.episode_log import EPISODE_COLUMNS

TINY_FLAGS = ["--epochs", "1", "--image-size", "16", "--batch-size", "64", "--max-samples", "300", "--device", "cpu"]


def test_train_prints_accuracy_time_and_parameters(capsys):
    assert main(["train", "c3-m2-t", *TINY_FLAGS]) == 0
    first = capsys.readouterr().out
    assert "accuracy" in first and "trained now" in first and "parameters    1,617,866" in first
    assert main(["train", "c3-m2", *TINY_FLAGS]) == 0
    assert "answered from the reward cache" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "c3-x2"], "unknown layer 'x2'"),
        (["train", "c5-m3-m3-m3-m3"], "is invalid at image size 84: spatial sides [84, 80, 26, 8, 2, 0]"),
        (["train", "c3", "--dataset", "imagenet"], "unknown dataset 'imagenet'; known datasets:"),
        (["search", "--steps", "3", "--set", "colour=blue", *TINY_FLAGS], "colour"),
    ],
)
def test_bad_input_is_one_line_without_traceback(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_the_installed_command_reports_errors_in_one_line():
    completed = subprocess.run(
        [sys.executable, "-m", "nasgym", "train", "c3-x2"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 2 and "Traceback" not in completed.stderr
    assert completed.stderr.strip() == "nasgym: error: unknown layer 'x2' in architecture 'c3-x2'; use tokens " + (
        "c1 c3 c5 m2 m3 a2 a3 t joined by '-', e.g. 'c3-m2-c5-t'"
    )


def test_random_search_writes_every_step_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--agent", "random", "--steps", "12", "--out", str(out), "--no-progress", *TINY_FLAGS]
    assert main(argv) == 0
    assert "best architecture:" in capsys.readouterr().out
    with open(out / "episodes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and tuple(rows[0]) == EPISODE_COLUMNS
    assert [int(row["step"]) for row in rows] == list(range(1, 13))
    summary = json.loads((out / "summary.json").read_text())
    best_valid = max(float(row["reward"]) for row in rows if row["valid"] == "True")
    assert summary["best"][0]["reward"] == best_valid

    assert main(argv) == 2  # the folder holds a search: refuse to overwrite it
    assert "pass --resume" in capsys.readouterr().err
    assert main([*argv[:4], "20", *argv[5:], "--resume"]) == 0
    with open(out / "episodes.csv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, 21))


def test_search_can_start_from_a_saved_policy_and_run_it_frozen(tmp_path, capsys):
    first = tmp_path / "first"
    assert (
        main(["search", "--agent", "meta_a2c", "--steps", "8", "--out", str(first), "--no-progress", *TINY_FLAGS]) == 0
    )
    assert main(["search", "--agent", "meta_a2c", "--frozen", "--steps", "4", "--out", str(tmp_path / "x")]) == 2
    assert "give it with --start-from" in capsys.readouterr().err
    frozen = tmp_path / "frozen"
    argv = [
        "search",
        "--agent",
        "meta_a2c",
        "--steps",
        "6",
        "--out",
        str(frozen),
        "--no-progress",
        "--start-from",
        str(first / "agent.pt"),
        "--frozen",
        *TINY_FLAGS,
    ]
    assert main(argv) == 0
    with open(frozen / "episodes.csv", newline="") as handle:
        assert [int(row["step"]) for row in csv.DictReader(handle)] == list(range(1, 7))
