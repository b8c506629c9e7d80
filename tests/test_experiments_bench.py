"""``nasgym bench agents`` end to end: the report's numbers come from the episodes CSVs, the plots are real."""

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
from support import TINY, assert_png_with_data

import agents
from nasgym.runners.cli import main

FLAGS = ["--epochs", "1", "--image-size", "12", "--max-samples", "200", "--batch-size", str(TINY["batch_size"]),
         "--device", "cpu", "--no-progress"]  # fmt: skip


def episodes(folder: Path) -> list[dict[str, str]]:
    with open(folder / "episodes.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_bench_report_matches_the_episode_csvs(tmp_path):
    out = tmp_path / "bench"
    names = agents.agent_names()
    argv = ["bench", "agents", "--datasets", "digits", "--agents", ",".join(names), "--steps", "16",
            "--seeds", "2", "--out", str(out), *FLAGS]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    for row in results["aggregate"]:
        runs = [episodes(out / "runs" / "digits" / row["agent"] / f"seed{seed}") for seed in range(2)]
        assert all(len(rows) == 16 for rows in runs)
        best = [max(float(r["reward"]) for r in rows) for rows in runs]
        last = [np.mean([float(r["reward"]) for r in rows[-2:]]) for rows in runs]  # 10% of 16 steps -> 2
        trained_seconds = [sum(float(r["train_seconds"]) for r in rows if r["trained"] == "True") for rows in runs]
        assert math.isclose(row["best_reward"], np.mean(best))
        assert math.isclose(row["mean_reward_last10"], np.mean(last))
        assert math.isclose(row["train_seconds"], np.mean(trained_seconds))
        shares = np.mean([np.bincount([int(r["action"]) for r in rows], minlength=8) / 16 for rows in runs], axis=0)
        assert np.allclose([row[f"action_{t}"] for t in ("c1", "c3", "c5", "m2", "m3", "a2", "a3", "t")], shares)
        # The markdown table shows the same best reward.
        line = next(line for line in report.splitlines() if line.startswith(f"| {row['agent']} | "))
        assert re.search(rf"\| {np.mean(best):.3f}( \+- [0-9.]+)? \|", line), line
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"rewards_digits.png", "episode_length_digits.png", "action_proportions.png"}
    for png in pngs:
        assert_png_with_data(png)
        assert f"]({png.name})" in report

    # Rerunning finds every run complete and only rewrites the results.
    assert main(argv) == 0
    assert all(len(episodes(out / "runs" / "digits" / name / "seed0")) == 16 for name in names)


def test_an_unknown_or_unprepared_dataset_fails_before_any_run(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "agents", "--datasets", "digits,imagenet", "--out", str(out), *FLAGS]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err and not (out / "runs").exists()
    assert main(["transfer", "--train", "digits", "--eval", "dtd", "--out", str(out), *FLAGS]) == 2
    error = capsys.readouterr().err
    assert "dtd" in error and "dtd-r1.0.1.tar.gz" in error and len(error.strip().splitlines()) == 1
