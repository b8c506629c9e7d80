"""``nasgym transfer`` end to end on real Omniglot: phases chain, the report matches its CSVs, plots are real."""

import csv
import json
import math

import numpy as np
from support import OMNIGLOT_DIR, assert_png_with_data, needs_omniglot

from nasgym.runners.cli import main
from nasgym.runners.experiments.transfer import VARIANTS

FLAGS = ["--epochs", "1", "--image-size", "12", "--max-samples", "480", "--batch-size", "64", "--device", "cpu",
         "--no-progress"]  # fmt: skip


def rewards(folder) -> list[float]:
    with open(folder / "episodes.csv", newline="") as handle:
        return [float(row["reward"]) for row in csv.DictReader(handle)]


@needs_omniglot
def test_transfer_chains_training_and_compares_four_ways_on_the_held_out_set(tmp_path):
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

    assert main(argv) == 0  # everything complete: nothing reruns, results are rewritten
    assert len(rewards(seed / "eval" / "omniglot_small2" / "random")) == 10
