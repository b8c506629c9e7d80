"""benchmarks/child_training.py runs end to end, and its naive reference learns what nasgym's trainer learns."""

import importlib.util
import json
import statistics

import pytest
import torch
from support import REPO

from nasgym.core.datasets import load_dataset
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer, TrainConfig


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("child_training", REPO / "benchmarks" / "child_training.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        pytest.param(
            ["--device", "cuda"],
            "sees no CUDA GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here"),
        ),
    ],
)
def test_bad_input_is_one_line_not_a_traceback(bench, argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert ": error: " in error and message in error


def test_runs_end_to_end_and_writes_the_figures(bench, tmp_path, capsys):
    out = tmp_path / "result.json"
    argv = ["--device", "cpu", "--dataset", "digits", "--images", "150", "--image-size", "16", "--epochs", "1"]
    argv += ["--batch-size", "40", "--architectures", "3", "--concurrency", "2", "--threads", "1", "--out", str(out)]
    threads = torch.get_num_threads()
    try:
        bench.main(argv)
    finally:
        torch.set_num_threads(threads)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["device_name"] and result["data"]["images"] == 150
    assert result["threads"] == 1
    assert len(result["architectures"]) == 3
    for row in result["architectures"]:
        for method in ("naive", "nasgym"):
            assert row[method]["seconds"] > 0 and row[method]["images_per_s"] > 0
            assert 0 <= row[method]["accuracy"] <= 1
        assert row["ratio"] == pytest.approx(row["naive"]["seconds"] / row["nasgym"]["seconds"])
    total = result["total"]
    assert total["ratio"] == pytest.approx(total["naive_seconds"] / total["nasgym_seconds"])
    assert total["nasgym_images_per_s"] == pytest.approx(1 * result["n_train"] * 3 / total["nasgym_seconds"])
    batch = result["batch_evaluator"]
    assert batch["concurrency"] == 2 and batch["same_rewards"] and batch["ratio"] > 0
    printed = capsys.readouterr().out
    assert "total" in printed and "ratio" in printed and str(out) in printed


def test_the_fixed_set_spans_shallow_to_ten_layers(bench):
    architectures = bench.architecture_set(8, image_size=84)
    assert [str(a) for a in architectures] == list(bench.ARCHITECTURES)
    assert min(map(len, architectures)) == 1 and max(map(len, architectures)) == 10
    assert bench.NINE_LAYER_CHILD in bench.ARCHITECTURES
    small = bench.architecture_set(8, image_size=16)  # too small for some: seeded valid ones fill in
    assert len({str(a) for a in small}) == 8 and all(a.is_valid(16) for a in small)
    assert [str(a) for a in small] == [str(a) for a in bench.architecture_set(8, image_size=16)]


def test_synthetic_data_has_the_requested_shape_and_is_learnable(bench):
    data = bench.synthetic_data(200, 5, image_size=16)
    assert data.images.shape == (200, 16, 16, 3) and sorted(set(data.labels)) == list(range(5))
    result = ChildTrainer(data, TrainConfig(epochs=3, batch_size=32), "cpu").train(Architecture.parse("c3-m2"))
    assert result.accuracy > 0.5  # chance is 0.2


def test_naive_reference_and_nasgym_agree_within_noise(bench):
    """Same networks, data and settings: the fast path must not change what a reward means."""
    data = load_dataset("digits", 16, max_samples=450)
    config = TrainConfig(epochs=2, batch_size=64)
    architectures = [Architecture.parse(text) for text in ("c3-m2", "c5-a2", "c1-c3")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny budget gains nothing from threads; OpenMP's spin-waits cost a lot here
    try:
        naive = bench.NaiveReference(data, config, bench.resolve_device("cpu"))
        naive_accuracy = [naive.train(a) for a in architectures]
        fast = ChildTrainer(data, config, "cpu")
        fast_accuracy = [fast.train(a).accuracy for a in architectures]
    finally:
        torch.set_num_threads(threads)
    assert min(naive_accuracy) > 0.4 and min(fast_accuracy) > 0.4  # both learn (chance is 0.1)
    # 150 reward images: one accuracy's sampling noise is ~0.03; different dropout masks and batch orders
    # move single runs by a few of those.
    assert abs(statistics.mean(naive_accuracy) - statistics.mean(fast_accuracy)) < 0.08
