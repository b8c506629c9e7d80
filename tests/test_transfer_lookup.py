"""``transfer`` on look-up tables: zero-shot quality, regret and the paired in-context tests, recomputed here from the
episode CSVs and the tables; NasGym's Wilcoxon over action shares."""

from __future__ import annotations

import math

import numpy as np
from support import read_rows

from nasgym.core.lookup.table import Table
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
