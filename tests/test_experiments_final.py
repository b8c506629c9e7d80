"""``nasgym final``: the found network and a VGG baseline, trained several times, scored on the held-out test
split, as mean +- 2 sd."""

import json
import re

import numpy as np
import pytest

from nasgym.core.network import NetworkConfig, parameter_count
from nasgym.core.search_space import Architecture
from nasgym.runners.cli import main
from nasgym.runners.experiments.final import VGG19_SHORT

TINY = ["--epochs", "1", "--max-samples", "150", "--batch-size", "64", "--device", "cpu", "--no-progress"]


def test_final_trains_both_networks_with_growing_filters_and_caches_them(tmp_path, capsys):
    out = tmp_path / "final.json"
    argv = ["final", "c3-m2-c1-t", "--image-size", "52", "--baseline", "vgg19_short", "--repeats", "2",
            "--out", str(out), *TINY]  # fmt: skip
    assert main(argv) == 0
    payload = json.loads(out.read_text())
    results = {r["name"]: r for r in payload["results"]}
    assert results["found"]["architecture"] == "c3-m2-c1" and results["vgg19_short"]["architecture"] == str(VGG19_SHORT)
    assert payload["protocol"] == "modern" and payload["options"]["score_split"] == "test"
    doubling = NetworkConfig(filter_growth=2.0)
    for result in results.values():
        network = Architecture.parse(result["architecture"])
        assert result["parameters"] == parameter_count(network, 10, 52, doubling)
        assert len(result["accuracies"]) == 2 and all(0.0 <= a <= 1.0 for a in result["accuracies"])
        assert result["mean"] == pytest.approx(np.mean(result["accuracies"]))
        assert result["sd"] == pytest.approx(np.std(result["accuracies"], ddof=1))
    assert results["vgg19_short"]["spatial_sides"] == [52, 50, 48, 24, 22, 20, 10, 8, 6, 4, 2, 1]
    assert "2 trained now" in capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out.count("2 from the reward cache") == 2


def test_final_prints_mean_and_two_sd_on_the_test_split_for_the_network_and_nasgyms_baseline(tmp_path, capsys):
    out = tmp_path / "final.json"
    assert main(["final", "c3-m2-c5-t", "--image-size", "16", "--repeats", "3", "--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert "scored on the test split" in printed
    payload = json.loads(out.read_text())
    for result in payload["results"]:
        assert len(result["accuracies"]) == 3 and len(set(result["train_seconds"])) > 1  # three separate trainings
        line = next(line for line in printed.splitlines() if line.strip().startswith(result["name"] + " "))
        shown = re.search(r"accuracy ([0-9.]+) \+- ([0-9.]+) \(mean \+- 2 sd of 3\)", line)
        assert shown and float(shown[1]) == pytest.approx(result["mean"], abs=1e-4)
        assert float(shown[2]) == pytest.approx(2 * result["sd"], abs=1e-4)
    assert [r["name"] for r in payload["results"]] == ["found", "vgg_two_blocks"]
    convs = sum(i * o * 9 + o for i, o in ((3, 64), (64, 64), (64, 128), (128, 128)))  # padded 3x3, 16 -> 4 px
    dense = (4 * 4 * 128 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 10
    assert payload["results"][1]["parameters"] == convs + dense


def test_final_under_the_nasgym_protocol_follows_net_eval(tmp_path, capsys):
    out = tmp_path / "final.json"
    argv = ["final", "c3-c3", "--protocol", "nasgym2019", "--image-size", "16", "--repeats", "2", "--out", str(out),
            *TINY]  # fmt: skip
    assert main(argv) == 0
    payload = json.loads(out.read_text())
    options = payload["options"]
    assert options["dense_units"] == 4096 and options["filters"] == 16 and options["max_filters"] is None
    assert options["lr_decay_steps"] == 100 and options["lr_decay_factor"] == 0.9 and options["epochs"] == 1
    found = payload["results"][0]
    nasgym = NetworkConfig(filters=16, filter_growth=2.0, max_filters=None, dense_units=4096)
    assert found["parameters"] == parameter_count(Architecture.parse("c3-c3"), 10, 16, nasgym)  # 16 then 32 filters
    assert "x0.9 every 100 steps (continuously)" in capsys.readouterr().out


def test_final_refuses_images_too_small_for_the_baseline(capsys):
    assert main(["final", "c3", "--image-size", "32", "--epochs", "1", "--baseline", "vgg19_short"]) == 2
    assert "does not fit 32x32 images" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not fit"):
        main(["--debug", "final", "c3", "--image-size", "32", "--epochs", "1", "--baseline", "vgg19_short"])
