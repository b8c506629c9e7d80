"""What the commands say about their results matches what was measured (issue 22, item 7): a weight-sharing score is
not called a trained accuracy, fidelity measures no "cheap" reward at the reference's own budget, a held-out
dataset was never trained on, and the help's example architecture is written as search prints it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import TINY_FLAGS, one_line_error

from nasgym.runners.cli import main
from nasgym.runners.experiments.fidelity import FidelityPlan, run_fidelity
from nasgym.runners.experiments.plots import reward_label

TINY = {"image_size": 16, "batch_size": 64, "device": "cpu", "max_samples": 150}


def test_a_weight_sharing_search_says_scored_not_trained(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    argv = ["search", "--steps", "6", "--reward-source", "weight_sharing", "--ws-warmup", "2", "--ws-steps", "1"]
    assert main([*argv, *TINY_FLAGS, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\d+ scored with the shared weights \(", printed), printed
    assert " trained (" not in printed
    assert json.loads((out / "summary.json").read_text())["reward_source"] == "weight_sharing"
    assert (out / "search.png").stat().st_size > 0


def test_reward_axes_name_what_the_rewards_are() -> None:
    assert reward_label() == "reward (accuracy)"
    assert "accuracy" not in reward_label("weight_sharing").split("(")[0]
    assert reward_label("weight_sharing").startswith("weight-sharing score")
    assert reward_label("trained", 3.0) == "reward (accuracy ^ 3)"
    assert reward_label("surrogate") == "reward (predicted accuracy)"


def test_fidelity_measures_no_low_epoch_reward_at_the_references_own_epochs(tmp_path: Path) -> None:
    plan = FidelityPlan("digits", networks=4, env_options={**TINY, "epochs": 3}, ws_heads=(), bootstrap=20)
    results = run_fidelity(tmp_path, plan, progress=False)  # the default low epochs, 1 and 3, against 3
    epochs_sources = sorted(name for name in results["sources"] if name.startswith("epochs_"))
    assert epochs_sources == ["epochs_1"]
    assert results["plan"]["low_epochs"] == [1]


def test_transfer_refuses_a_held_out_dataset_it_trains_on(capsys: pytest.CaptureFixture) -> None:
    error = one_line_error(["transfer", "--train", "digits", "--eval", "digits", "--out", "unused"], capsys)
    assert "digits is in both --train and --eval" in error


def test_finals_help_example_is_written_as_search_prints_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["search", "--steps", "4", *TINY_FLAGS, "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 0
    best = re.search(r"best architecture: (\S+)", capsys.readouterr().out).group(1)
    with pytest.raises(SystemExit):
        main(["final", "--help"])
    example = re.search(r"e\.g\. (\S+?),", capsys.readouterr().out).group(1)
    # Both are dash-joined tokens without the terminal "t": the form a user copies from one command to the other.
    pattern = r"^(c[135]|[ma][23])(-(c[135]|[ma][23]))*$"
    assert re.match(pattern, best) and re.match(pattern, example), (best, example)
