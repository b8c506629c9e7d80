"""``nasgym fidelity``: the sample, the rank statistics, NASWOT, and a tiny run end to end with its files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from support import assert_png_with_data

import nasgym
from nasgym.core.config import make_configs
from nasgym.core.lookup.build import build_table
from nasgym.core.lookup.plan import TablePlan
from nasgym.core.lookup.table import Table
from nasgym.core.network import parameter_count
from nasgym.core.sampling import random_network, stratified_networks
from nasgym.core.search_space import Architecture
from nasgym.core.zero_cost import naswot
from nasgym.runners.cli import main
from nasgym.runners.experiments.fidelity import FidelityPlan, run_fidelity
from nasgym.runners.experiments.fidelity_report import compare, precision_at_top

TINY = {"image_size": 16, "batch_size": 32, "device": "cpu", "max_samples": 300, "epochs": 2}


def test_the_sample_is_distinct_valid_seeded_and_stratified_by_depth() -> None:
    networks = stratified_networks(40, seed=3, image_size=12, max_layers=10)
    assert len({str(n) for n in networks}) == 40
    assert all(n.is_valid(12, 10) and not n.is_terminated for n in networks)
    depths = np.bincount([len(n) for n in networks], minlength=11)[1:]
    assert depths.max() - depths.min() <= 2  # an equal share of each depth
    assert [str(n) for n in stratified_networks(40, 3, 12, 10)] == [str(n) for n in networks]
    assert random_network(np.random.default_rng(0), 12, 10, depth=7).is_valid(12, 10)


def test_rank_statistics_say_what_they_should() -> None:
    reference = list(np.linspace(0, 1, 20))
    same = compare(reference, [2 * r + 1 for r in reference], bootstrap=50, seed=0)
    assert same["kendall_tau"] == pytest.approx(1) and same["spearman_rho"] == pytest.approx(1)
    assert same["precision_top10"] == 1
    reversed_ = compare(reference, reference[::-1], bootstrap=50, seed=0)
    assert reversed_["kendall_tau"] == pytest.approx(-1) and reversed_["precision_top10"] == 0
    noisy = compare(reference, list(np.random.default_rng(1).permutation(reference)), bootstrap=200, seed=0)
    low, high = noisy["kendall_tau_ci"]
    assert -1 <= low < noisy["kendall_tau"] < high <= 1 and abs(noisy["kendall_tau"]) < 0.6
    assert precision_at_top(np.array([3.0, 2, 1, 0]), np.array([0.0, 1, 2, 3]), share=0.5) == 0
    # Ranking the bad half right and the good half backwards: a fair overall tau, a negative one among the better half.
    flattered = compare(reference, reference[:10] + reference[10:][::-1], bootstrap=50, seed=0)
    assert flattered["kendall_tau"] > 0.4 and flattered["kendall_tau_better_half"] == pytest.approx(-1)


def test_naswot_is_repeatable_and_tells_networks_apart() -> None:
    trainer = gym.make("NAS-v0", dataset="digits", cache=False, **TINY).unwrapped.evaluator.trainer
    networks = [Architecture.parse(text) for text in ("c3", "c3-c3-c3", "m2", "c1-a2-c5")]
    scores = [naswot(trainer, network)[0] for network in networks]
    assert all(math.isfinite(score) for score in scores) and len(set(scores)) == 4
    assert naswot(trainer, networks[1])[0] == scores[1]


def test_a_tiny_fidelity_run_writes_its_report(tmp_path: Path) -> None:
    env_config, train_config = make_configs({"dataset": "digits", **TINY})
    table = tmp_path / "table.jsonl"
    build_table(table, env_config, train_config, TablePlan(depth=1, deep_per_depth=2, seeds=(0,)), progress=False)
    plan = FidelityPlan("digits", networks=6, env_options={**TINY, "ws_warmup": 10, "ws_steps": 2},
                        low_epochs=(1,), bootstrap=50, surrogate_table=str(table))  # fmt: skip
    results = run_fidelity(tmp_path, plan, progress=False)
    names = {"reference", "epochs_1", "pixels_11", "data_0.25", "naswot", "ws_gap", "ws_per_shape", "parameters",
             "flops", "surrogate"}  # fmt: skip
    sampled = {network["architecture"] for network in results["networks"]}
    assert (
        f"fitted on its {len(Table.load(table).networks) - len(sampled & set(Table.load(table).networks))} "
        in (results["sources"]["surrogate"]["description"])
    )
    assert set(results["sources"]) == names
    for name, figures in results["sources"].items():
        assert figures["seconds_per_eval"] > 0 and figures["cost_ratio"] > 0, name
        if name != "reference":
            assert -1 <= figures["kendall_tau"] <= 1 and 0 <= figures["precision_top10"] <= 1, name
            assert_png_with_data(tmp_path / f"scatter_{name}.png")
    assert results["warmup_seconds"]["ws_gap"] > 0
    assert json.loads((tmp_path / "results.json").read_text())["sources"].keys() == results["sources"].keys()
    report = (tmp_path / "report.md").read_text()
    assert "| `ws_gap` |" in report and "![naswot](scatter_naswot.png)" in report
    assert len((tmp_path / "fidelity.csv").read_text().splitlines()) == 7
    assert results["networks"][0]["rewards"]["parameters"] == parameter_count(
        Architecture.parse(results["networks"][0]["architecture"]), 10, TINY["image_size"]
    )
    # The reference is the normal trained reward: a plain environment with the same keywords gets it from the cache.
    env = gym.make("NAS-v0", dataset="digits", **TINY)
    first = Architecture.parse(results["networks"][0]["architecture"])
    evaluation = env.unwrapped.evaluator.evaluate([first])[0]
    assert evaluation.from_cache and evaluation.accuracy == results["networks"][0]["rewards"]["reference"]


def test_fidelity_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["fidelity", "--networks", "2", "--out", str(tmp_path)]) == 2
    assert "at least 4 networks" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fidelity", "--ws-heads", "mlp"])
    assert "unknown head 'mlp'" in capsys.readouterr().err
    with pytest.raises(nasgym.ConfigError, match="data fraction"):
        FidelityPlan("digits", data_fraction=1.5)
