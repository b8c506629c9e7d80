"""``transfer`` on look-up tables: zero-shot quality, regret and the paired in-context tests, recomputed here from the
episode CSVs and the tables; NasGym's Wilcoxon over action shares."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support import one_line_error, read_rows

import envs_data
from nasgym.core.lookup.table import Table
from nasgym.runners.cli import main
from nasgym.runners.envs import network_name
from nasgym.runners.experiments.action_test import wilcoxon_action_shares
from nasgym.runners.experiments.transfer import TransferSettings, run_transfer
from nasgym.runners.experiments.transfer_lookup import ZERO_SHOT_EPISODES


def true_reward(table: Table, network: str) -> float:
    return float(np.mean([table.accuracy(table.entries[(network, s)], 12) for s in table.seeds_of[network]]))


def test_a_table_transfer_scores_zero_shot_quality_and_tests_the_frozen_policy_against_its_controls(tmp_path):
    settings = TransferSettings(agent="meta_a2c", train=["omniglot_small1"], eval=["omniglot_small2"], steps_train=40,
                                steps_eval=60, seeds=3, env_options={"reward_source": "table"})  # fmt: skip
    results = run_transfer(tmp_path / "transfer", settings, progress=False)
    machine = json.loads((tmp_path / "transfer" / "results.json").read_text())["machine"]
    # per seed: meta-A2C and the DQN control trained, then seven runs on the held-out table
    assert machine["runs"] == 3 * (2 + 7) and machine["runs_wall_seconds"] > 0
    table = Table.open("omniglot_small2")
    lookup = results["lookup"]["omniglot_small2"]
    for variant in ("frozen", "frozen_memory_reset", "scratch", "random", "control_frozen"):
        zero_shot = []
        for seed in range(3):
            rows = read_rows(
                tmp_path / "transfer" / f"seed{seed}" / "eval" / "omniglot_small2" / variant / "episodes.csv"
            )
            assert len(rows) == 60
            last = {}
            for row in rows:
                if row["accuracy"] not in ("", "None"):
                    last[int(row["episode"])] = network_name(row["architecture"])
            first = [last[e] for e in sorted(last)][:ZERO_SHOT_EPISODES]
            zero_shot.append(np.mean([true_reward(table, n) for n in first]))
            assert math.isclose(lookup["runs"][variant][seed]["zero_shot"], zero_shot[-1])
        assert math.isclose(lookup["variants"][variant]["zero_shot"][0], np.mean(zero_shot))
    for control in ("frozen_memory_reset", "frozen_reward_zeroed", "control_frozen", "scratch", "random"):
        test = lookup["frozen_vs"][control]["mean_true_reward"]
        frozen = [r["mean_true_reward"] for r in lookup["runs"]["frozen"]]
        other = [r["mean_true_reward"] for r in lookup["runs"][control]]
        assert math.isclose(test["difference"], np.mean(np.subtract(frozen, other)))
        assert math.isnan(test["p_value"]) or 0 < test["p_value"] <= 1
    report = (tmp_path / "transfer" / "report.md").read_text()
    assert "## On the tables: regret, zero-shot quality and in-context adaptation" in report
    assert 0 <= lookup["variants"]["random"]["final_regret"][0] <= lookup["best_reward"]


def test_nasgyms_wilcoxon_pairs_the_actions_shares():
    same = np.array([[1, 2, 0, 1, 0, 0, 0, 1]] * 5)
    assert math.isnan(wilcoxon_action_shares(same, same)["p_value"])
    rng = np.random.default_rng(0)
    first = rng.multinomial(4, [0.3, 0.3, 0.3, 0.02, 0.02, 0.02, 0.02, 0.02], size=200)
    second = rng.multinomial(4, [0.02, 0.02, 0.02, 0.02, 0.3, 0.3, 0.3, 0.02], size=200)
    result = wilcoxon_action_shares(first, second)
    assert result["episodes"] == 400 and 0 < result["p_value"] <= 1


def test_the_command_line_runs_a_table_transfer_on_the_datasets_it_is_given(tmp_path, capsys):
    out = tmp_path / "transfer"
    argv = ["transfer", "--reward-source", "table", "--train", "omniglot_small1", "--eval", "omniglot_small2",
            "--seeds", "2", "--steps-train", "20", "--steps-eval", "20", "--control-agent", "none", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    settings = json.loads((out / "transfer.json").read_text())
    assert settings["seeds"] == 2 and settings["env_options"]["reward_source"] == "table"
    assert "## On the tables" in (out / "report.md").read_text()


def test_a_table_transfer_by_default_refuses_tables_still_being_built(tmp_path, capsys):
    defaults = envs_data.load("experiments")["transfer"]
    growing = [name for name in defaults["train"] + defaults["eval"] if not Table.open(name).complete]
    if not growing:
        pytest.skip("every default dataset's shipped table is complete: nothing to refuse")
    error = one_line_error(["transfer", "--reward-source", "table", "--out", str(tmp_path / "t")], capsys)
    assert f"the shipped {', '.join(growing)} table(s) are still being built" in error
