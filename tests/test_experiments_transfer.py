"""``nasgym transfer`` end to end on real Omniglot: phases chain, the report matches its CSVs, plots are real."""

import csv
import json
import math

import numpy as np
from support import OMNIGLOT_DIR, assert_png_with_data, needs_omniglot

from nasgym.runners.cli import main
from nasgym.runners.experiments.transfer import VARIANTS

FLAGS = ["--epochs", "1", "--image-size", "12", "--max-samples", "540", "--batch-size", "64", "--device", "cpu",
         "--no-progress"]  # fmt: skip


def rewards(folder) -> list[float]:
    with open(folder / "episodes.csv", newline="") as handle:
        return [float(row["reward"]) for row in csv.DictReader(handle)]


@needs_omniglot
def test_transfer_chains_training_and_compares_the_policy_with_its_controls_on_the_held_out_set(tmp_path):
    assert main(["data", "prepare", "omniglot_small2", "--manual-dir", str(OMNIGLOT_DIR)]) == 0
    out = tmp_path / "transfer"
    argv = ["transfer", "--agent", "meta_a2c", "--train", "digits,digits", "--eval", "omniglot_small2",
            "--steps-train", "12", "--steps-eval", "10", "--out", str(out), *FLAGS]  # fmt: skip
    assert main(argv) == 0
    seed = out / "seed0"
    first, second = seed / "train" / "1-digits", seed / "train" / "2-digits"
    assert len(rewards(first)) == len(rewards(second)) == 12
    # The second phase continued the first phase's policy: its agent has lived through both phases.
    import torch

    assert torch.load(second / "agent.pt", weights_only=True)["num_timesteps"] == 24

    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert {row["variant"] for row in results["eval"]} == set(VARIANTS)
    for row in results["eval"]:
        values = rewards(seed / "eval" / "omniglot_small2" / row["variant"])
        assert len(values) == 10
        assert math.isclose(row["best_reward"], max(values)) and math.isclose(row["mean_reward"], np.mean(values))
        assert f"| {max(values):.3f} | {np.mean(values):.3f} |" in report
    frozen = torch.load(seed / "eval" / "omniglot_small2" / "frozen" / "agent.pt", weights_only=True)
    trained = torch.load(second / "agent.pt", weights_only=True)
    for name, tensor in trained["state"]["network"].items():  # frozen: the weights did not move
        assert torch.equal(tensor, frozen["state"]["network"][name]), name
    assert_png_with_data(out / "transfer.png")
    assert "](transfer.png)" in report
    # The controls: the same policy without its in-context inputs, and a DQN agent trained through the same datasets.
    held_out = seed / "eval" / "omniglot_small2"
    configs = {
        v: torch.load(held_out / v / "agent.pt", weights_only=True)["config"] for v in ("frozen", *VARIANTS[1:3])
    }
    assert configs["frozen"]["memory"] == "rl2" and configs["frozen_memory_reset"]["memory"] == "episode"
    assert configs["frozen_reward_zeroed"]["reward_input"] is False
    control = torch.load(held_out / "control_frozen" / "agent.pt", weights_only=True)
    assert control["agent"] == "dqn" and control["num_timesteps"] == 24  # learned on both training datasets
    tests = {test["compared"]: test for test in results["action_tests"]}
    assert set(tests) == {
        f"frozen vs {v}" for v in ("frozen_memory_reset", "frozen_reward_zeroed", "control_frozen", "random")
    }
    p_values = [test["p_value"] for test in tests.values()]  # NaN where a group finished fewer than 2 episodes
    assert all(math.isnan(p) or 0 < p <= 1 for p in p_values) and not all(map(math.isnan, p_values))
    assert results["protocol"] == "modern" and "Protocol `modern`" in report and "p-value" in report

    assert main(argv) == 0  # everything complete: nothing reruns, results are rewritten
    assert len(rewards(seed / "eval" / "omniglot_small2" / "random")) == 10
