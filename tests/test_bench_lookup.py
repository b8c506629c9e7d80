"""``nasgym bench agents --reward-source table``: regret against the shipped table's best network, recomputed here from
the episode CSVs and the table itself; RL's statistics; no data prepared and nothing downloaded."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest
from support import OMNIGLOT_DIR, assert_png_with_data, needs_omniglot, read_rows

from nasgym.core.errors import ConfigError
from nasgym.core.lookup.source import common_defaults, table_defaults
from nasgym.core.lookup.table import Table, shipped_names
from nasgym.core.search_space import Architecture
from nasgym.runners.cli import main
from nasgym.runners.envs import network_name
from nasgym.runners.experiments import lookup_stats

DATASET = "omniglot_small1"


@pytest.fixture(scope="module")
def table() -> Table:
    return Table.open(DATASET)


def true_reward(table: Table, network: str, epochs: int = 12) -> float:
    return float(np.mean([table.accuracy(table.entries[(network, s)], epochs) for s in table.seeds_of[network]]))


def rewarded_rows(path) -> list[dict[str, str]]:
    """The rows whose step was rewarded, each with the network it rewarded (the layers before any terminal)."""
    rows = [row for row in read_rows(path) if row["accuracy"] not in ("", "None")]
    for row in rows:
        row["network"] = network_name(row["architecture"])
    return rows


def test_a_table_benchmark_reports_the_regret_the_csvs_and_the_table_give(tmp_path, table, monkeypatch):
    monkeypatch.setenv("NASGYM_DATA_DIR", str(tmp_path / "no-data"))  # nothing prepared: the table is the data
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--reward-source", "table", "--datasets", DATASET, "--agents",
            "random,regularized_evolution", "--steps", "60", "--seeds", "3", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    lookup = results["lookup"]["datasets"][DATASET]
    depth = table.complete_depth()
    in_space = {name: true_reward(table, name) for name in table.seeds_of if len(Architecture.parse(name)) <= depth}
    best = max(in_space.values())
    assert math.isclose(lookup["best_reward"], best) and in_space[lookup["best_network"]] == best
    for agent in ("random", "regularized_evolution"):
        regrets = []
        for seed in range(3):
            path = out / "runs" / DATASET / agent / f"seed{seed}" / "episodes.csv"
            assert len(read_rows(path)) == 60
            rewarded = rewarded_rows(path)
            incumbent = max(rewarded, key=lambda r: float(r["reward"]))  # the first of the best observed
            incumbent = next(r for r in rewarded if float(r["reward"]) == float(incumbent["reward"]))
            regrets.append(best - in_space[incumbent["network"]])
        assert np.allclose(lookup["agents"][agent]["runs"], regrets)
        assert all(r >= 0 for r in regrets)
        assert math.isclose(lookup["agents"][agent]["final_regret"], np.mean(regrets))
    aggregate = results["lookup"]["aggregate"]
    assert set(aggregate) == {"random", "regularized_evolution"}
    low, high = aggregate["regularized_evolution"]["iqm_ci"]
    assert low <= aggregate["regularized_evolution"]["iqm"] <= high
    assert 0 <= aggregate["regularized_evolution"]["improvement_over_random"] <= 1
    report = (out / "report.md").read_text()
    assert "## Regret against the table's best network" in report and f"`{lookup['best_network']}`" in report
    for name in (f"regret_steps_{DATASET}.png", f"regret_time_{DATASET}.png", "aggregates.png"):
        assert_png_with_data(out / name)
        assert f"]({name})" in report


def test_the_simulated_time_counts_each_network_once(tmp_path, table):
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--reward-source", "table", "--datasets", DATASET, "--agents", "random",
            "--steps", "80", "--seeds", "2", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    truth = lookup_stats.TrueRewards(table, epochs=12, max_layers=table.complete_depth())
    folder = out / "runs" / DATASET / "random" / "seed0"
    curve = lookup_stats.run_curve(folder, truth)
    first = {}
    for r in rewarded_rows(folder / "episodes.csv"):
        first.setdefault(r["network"], float(r["train_seconds"]))
    assert math.isclose(curve["seconds"][-1], sum(first.values()))
    assert np.all(np.diff(curve["regret"]) <= 0)  # the incumbent only improves (its observed reward does)


def test_regret_on_a_grid_is_the_best_so_far_at_each_point():
    curve = {"steps": np.array([3, 5, 9]), "regret": np.array([0.3, 0.2, 0.05])}
    grid = np.array([0, 3, 4, 5, 8, 9, 100])
    assert np.allclose(lookup_stats.regret_at(curve, grid), [0.3, 0.3, 0.3, 0.2, 0.2, 0.05, 0.05])


def test_pairs_differ_only_when_their_interval_excludes_zero():
    rng = np.random.default_rng(0)
    same = {"a": rng.normal(0.1, 0.01, 20), "b": rng.normal(0.1, 0.01, 20)}
    apart = {"a": rng.normal(0.1, 0.01, 20), "b": rng.normal(0.05, 0.01, 20)}
    (pair,) = lookup_stats.pairwise(same)
    assert not pair["differ"] and pair["ci"][0] < 0 < pair["ci"][1]
    (pair,) = lookup_stats.pairwise(apart)
    assert (
        pair["differ"] and pair["ci"][0] > 0 and math.isclose(pair["difference"], apart["a"].mean() - apart["b"].mean())
    )


def test_friedman_needs_three_datasets_and_ranks_lower_regret_first():
    two = lookup_stats.friedman({"a": [0.1, 0.2], "b": [0.2, 0.3], "c": [0.3, 0.4]})
    assert math.isnan(two["p_value"]) and two["mean_ranks"] == {"a": 1.0, "b": 2.0, "c": 3.0}
    three = lookup_stats.friedman({"a": [0.1, 0.2, 0.1], "b": [0.2, 0.3, 0.2], "c": [0.3, 0.4, 0.3]})
    assert three["p_value"] < 0.1 and three["mean_ranks"]["a"] == 1.0


def test_the_tables_of_one_experiment_share_the_smallest_complete_depth_and_must_share_a_size(tmp_path, table):
    """A policy carried from one dataset to the next sees one observation shape: the depth every table holds."""
    shallow = tmp_path / "shallow.jsonl"
    header, *rows = resources.files("envs_data").joinpath("tables", f"{DATASET}.jsonl").read_text().splitlines()
    shallow.write_text("\n".join([header, *(r for r in rows if json.loads(r)[0].count("-") < 2)]) + "\n")
    assert Table.load(shallow).complete_depth() == 2
    each = {DATASET: table_defaults(DATASET, None), "shallow": table_defaults("shallow", str(shallow))}
    assert common_defaults(each) == {"image_size": table.image_size, "max_layers": 2}
    each["shallow"]["image_size"] = 28
    with pytest.raises(ConfigError, match=f"must share an image size, found {DATASET} 16 px, shallow 28 px"):
        common_defaults(each)


def test_meta_a2c_carried_across_every_shipped_table_searches_the_depth_all_of_them_hold(tmp_path):
    datasets = shipped_names()
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--reward-source", "table", "--agents", "meta_a2c", "--steps", "12", "--seeds", "1",
            "--datasets", ",".join(datasets), "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    depth = min(Table.open(dataset).complete_depth() for dataset in datasets)
    results = json.loads((out / "results.json").read_text())
    assert set(results["lookup"]["datasets"]) == set(datasets)
    for dataset in datasets:
        rows = read_rows(out / "runs" / dataset / "meta_a2c" / "seed0" / "episodes.csv")
        assert max(int(row["episode_step"]) for row in rows) <= depth


def test_a_surrogate_bench_without_the_dataset_says_its_live_check_did_not_run(tmp_path, monkeypatch):
    monkeypatch.setenv("NASGYM_DATA_DIR", str(tmp_path / "no-data"))
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--reward-source", "surrogate", "--datasets", DATASET, "--agents", "random",
            "--steps", "20", "--seeds", "2", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    check = json.loads((out / "results.json").read_text())["lookup"]["datasets"][DATASET]["live_check"]
    assert "nasgym data prepare omniglot_small1" in check["skipped"]
    assert "Not run: " in (out / "report.md").read_text()


@pytest.mark.slow
@needs_omniglot
def test_a_surrogate_bench_trains_each_agents_best_networks_live_at_the_tables_settings(tmp_path, table, monkeypatch):
    data = tmp_path / "data"
    prepare = ["data", "prepare", DATASET, "--manual-dir", str(OMNIGLOT_DIR), "--data-dir", str(data), "--no-download"]
    assert main(prepare) == 0
    monkeypatch.setenv("NASGYM_DATA_DIR", str(data))
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--reward-source", "surrogate", "--datasets", DATASET, "--agents", "random",
            "--steps", "12", "--seeds", "2", "--max-layers", "3", "--out", str(out), "--no-progress",
            "--cache-path", str(tmp_path / "cache.sqlite")]  # fmt: skip
    assert main(argv) == 0
    check = json.loads((out / "results.json").read_text())["lookup"]["datasets"][DATASET]["live_check"]
    found = check["random"]
    assert 1 <= len(found) <= 2
    for row in found:  # a live training at the table's settings and seed 0 is the table's own seed-0 entry
        if (row["network"], 0) in table.entries:
            assert row["live"] == table.accuracy(table.entries[(row["network"], 0)], 12)
    assert "live - surrogate" in (out / "report.md").read_text()
