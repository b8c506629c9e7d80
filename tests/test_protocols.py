"""Protocols: every value is a valid setting, ``--protocol`` applies one under the flags given, every output names
it, and NasGym's unmasked agents end episodes with invalid layers where ours never do."""

from __future__ import annotations

import json

import pytest
import torch
from support import OMNIGLOT_DIR, needs_omniglot

import agents
from nasgym.core.config import make_configs
from nasgym.core.datasets import dataset_names
from nasgym.core.errors import ConfigError
from nasgym.core.protocols import protocol, protocol_names
from nasgym.runners.cli import main
from nasgym.runners.experiments.metrics import RunData

FLAGS = ["--epochs", "1", "--image-size", "12", "--max-samples", "200", "--batch-size", "64", "--device", "cpu",
         "--no-progress"]  # fmt: skip


@pytest.mark.parametrize("name", protocol_names())
def test_every_value_of_every_protocol_is_a_valid_setting(name: str) -> None:
    chosen = protocol(name)
    make_configs(chosen.env)
    make_configs(chosen.final_env())
    for agent in agents.agent_names():
        make_configs(chosen.agent_env(agent))
        agents.make_config(agent, **chosen.hyperparameters(agent))
    named = [*chosen.bench.get("datasets", []), *chosen.transfer.get("train", []), *chosen.transfer.get("eval", [])]
    named += [dataset for spec in chosen.agents.values() for dataset in spec.get("steps", {})]
    assert set(named) <= set(dataset_names())
    assert set(chosen.bench.get("agents", [])) <= set(agents.agent_names())


def test_an_unknown_protocol_is_one_line_that_lists_the_known_ones(capsys) -> None:
    with pytest.raises(ConfigError, match="unknown protocol 'nasgym'; did you mean 'nasgym2019'"):
        protocol("nasgym")
    with pytest.raises(SystemExit) as usage:
        main(["search", "--protocol", "nasgym2020", "--steps", "1"])
    assert usage.value.code == 2 and "invalid choice: 'nasgym2020'" in capsys.readouterr().err


def test_a_search_under_the_nasgym_protocol_records_it_and_flags_given_override_it(tmp_path) -> None:
    out = tmp_path / "search"
    argv = ["search", "--agent", "meta_a2c", "--protocol", "nasgym2019", "--steps", "12", "--out", str(out), *FLAGS]
    assert main(argv) == 0
    stored = json.loads((out / "run.json").read_text())
    assert stored["protocol"] == "nasgym2019"
    env = stored["env_options"]
    assert env["observation"] == "nasgym" and env["batch_norm"] == "running_stats" and env["split_seed"] == 32
    assert env["epochs"] == 1 and env["image_size"] == 12  # the flags, not the protocol's 12 and 84
    assert stored["agent_options"]["memory"] == "nasgym" and stored["agent_options"]["mask_invalid"] is False
    assert json.loads((out / "summary.json").read_text())["protocol"] == "nasgym2019"
    saved = torch.load(out / "agent.pt", weights_only=True)
    assert saved["observation_shape"] == (10, 25) and saved["config"]["memory"] == "nasgym"

    modern = tmp_path / "modern"
    assert main(["search", "--agent", "reinforce", "--steps", "8", "--out", str(modern), *FLAGS]) == 0
    stored = json.loads((modern / "run.json").read_text())
    assert stored["protocol"] == "modern" and stored["env_options"]["reward"] == "final"  # REINFORCE's, Zoph & Le's


def test_bench_under_the_nasgym_protocol_shows_invalid_episodes_where_the_default_shows_none(tmp_path) -> None:
    shares = {}
    for name in ("nasgym2019", "modern"):
        out = tmp_path / name
        argv = ["bench", "agents", "--protocol", name, "--datasets", "digits", "--agents", "random,meta_a2c",
                "--steps", "40", "--seeds", "2", "--out", str(out), *FLAGS]  # fmt: skip
        assert main(argv) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["protocol"] == name and f"Protocol `{name}`" in (out / "report.md").read_text()
        shares[name] = {row["agent"]: row["invalid_episodes"] for row in results["aggregate"]}
        for seed in range(2):  # agent seed K trains children with seed K
            run = json.loads((out / "runs" / "digits" / "random" / f"seed{seed}" / "run.json").read_text())
            assert run["env_options"]["seed"] == seed and run["protocol"] == name
        random = RunData.load(out / "runs" / "digits" / "random" / "seed0")
        assert results["runs"][0]["invalid_episodes"] == pytest.approx((~random.episode_valid).mean())
    assert shares["modern"] == {"random": 0.0, "meta_a2c": 0.0}
    assert shares["nasgym2019"]["random"] > 0.3 and shares["nasgym2019"]["meta_a2c"] > 0  # 12 px: many layers fail


def test_a_given_train_seed_is_every_runs_training_seed(tmp_path) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--datasets", "digits", "--agents", "random", "--steps", "12", "--seeds", "2",
            "--train-seed", "7", "--out", str(out), *FLAGS]  # fmt: skip
    assert main(argv) == 0
    for seed in range(2):
        run = json.loads((out / "runs" / "digits" / "random" / f"seed{seed}" / "run.json").read_text())
        assert run["env_options"]["seed"] == 7 and run["agent_options"]["seed"] == seed


@needs_omniglot
def test_bench_carries_meta_a2cs_policy_through_the_datasets_and_starts_the_others_fresh(tmp_path) -> None:
    assert main(["data", "prepare", "omniglot_small1", "--manual-dir", str(OMNIGLOT_DIR)]) == 0
    out = tmp_path / "bench"
    argv = ["bench", "agents", "--datasets", "digits,omniglot_small1", "--agents", "meta_a2c,random", "--steps", "8",
            "--seeds", "1", "--out", str(out), *FLAGS[:4], "--max-samples", "480", *FLAGS[6:]]  # fmt: skip
    assert main(argv) == 0
    runs = out / "runs"
    lived = {
        agent: torch.load(runs / "omniglot_small1" / agent / "seed0" / "agent.pt", weights_only=True)["num_timesteps"]
        for agent in ("meta_a2c", "random")
    }
    assert lived == {"meta_a2c": 16, "random": 8}
    report = (out / "report.md").read_text()
    assert "meta_a2c: one policy per seed carried through digits -> omniglot_small1" in report
