"""``nasgym final``: the found network and the VGG19 baseline, trained with the final protocol."""

import json

import pytest

from nasgym.core.network import NetworkConfig, parameter_count
from nasgym.core.search_space import Architecture
from nasgym.runners.cli import main
from nasgym.runners.experiments.final import VGG19_SHORT


def test_final_trains_both_networks_with_growing_filters_and_caches_them(tmp_path, capsys):
    out = tmp_path / "final.json"
    argv = ["final", "c3-m2-c1-t", "--epochs", "1", "--image-size", "52", "--max-samples", "150",
            "--batch-size", "64", "--device", "cpu", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert results["found"]["architecture"] == "c3-m2-c1" and results["vgg19_short"]["architecture"] == str(VGG19_SHORT)
    doubling = NetworkConfig(filter_growth=2.0)
    for result in results.values():
        network = Architecture.parse(result["architecture"])
        assert result["parameters"] == parameter_count(network, 10, 52, doubling)
        assert 0.0 <= result["accuracy"] <= 1.0 and result["failure"] == ""
    assert results["vgg19_short"]["spatial_sides"] == [52, 50, 48, 24, 22, 20, 10, 8, 6, 4, 2, 1]
    assert "trained now" in capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out.count("(reward cache)") == 2


def test_final_refuses_images_too_small_for_the_baseline(capsys):
    assert main(["final", "c3", "--image-size", "32", "--epochs", "1"]) == 2
    assert "does not fit 32x32 images" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not fit"):
        main(["--debug", "final", "c3", "--image-size", "32", "--epochs", "1"])
