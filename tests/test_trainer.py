"""The child trainer: deterministic on the CPU, NasGym's schedule, failures become reward 0 with a reason."""

import math

import numpy as np
import pytest
import torch
from support import TINY

from nasgym.core.datasets import load_dataset
from nasgym.core.errors import ConfigError
from nasgym.core.network import MAX_DENSE_UNITS, MAX_FILTERS, NetworkConfig, parameter_count
from nasgym.core.search_space import Architecture
from nasgym.core.training import ChildTrainer, TrainConfig, cuda_graphs, resolve_device, split_indices
from nasgym.core.training.device import is_out_of_memory

TINY_CONFIG = TrainConfig(epochs=TINY["epochs"], batch_size=TINY["batch_size"])


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", TINY["image_size"], max_samples=300)


def test_same_seed_same_result_on_cpu(digits):
    architecture = Architecture.parse("c3-m2-c1")
    config = TrainConfig(epochs=1, batch_size=48, seed=3)  # a partial last batch, dropout, a changed seed
    first = ChildTrainer(digits, config, "cpu").train(architecture)
    second = ChildTrainer(digits, config, "cpu").train(architecture)
    assert first.failure == "" and 0 < first.accuracy <= 1
    assert (first.accuracy, first.parameters) == (second.accuracy, second.parameters)
    assert "cpu" in first.execution and "fp32" in first.execution


def test_other_work_between_trainings_does_not_change_the_result(digits):
    """Each training draws from its own generators, not from the process's global random state."""
    trainer = ChildTrainer(digits, TINY_CONFIG, "cpu")
    first = trainer.train(Architecture.parse("c3-a2"))
    torch.manual_seed(1234)
    torch.rand(1000)
    trainer.train(Architecture.parse("c5"))
    assert trainer.train(Architecture.parse("c3-a2")).accuracy == first.accuracy


def test_learning_rate_follows_the_step_schedule():
    config = TrainConfig(learning_rate=1e-3, lr_decay_factor=0.2, lr_decay_epochs=5)
    rates = [config.learning_rate_at(epoch) for epoch in range(12)]
    assert rates[:5] == [1e-3] * 5 and math.isclose(rates[5], 2e-4) and math.isclose(rates[11], 4e-5)
    assert TrainConfig(lr_decay_epochs=0).learning_rate_at(11) == 1e-3  # NasGym's TF1 code: constant


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning_rate": float("nan")}, "learning_rate must be a number, got nan"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive number"),
        ({"train_fraction": 1.0}, "train_fraction must be in (0, 1)"),
        ({"seed": -1}, "seed must be in [0, 2**63)"),
        ({"epochs": 0}, "epochs and batch_size must be at least 1"),
        ({"betas": (0.9, 1.5)}, "betas in [0, 1)"),
        ({"precision": "fp16"}, "precision must be"),
    ],
)
def test_bad_settings_are_refused_up_front(settings, message):
    with pytest.raises(ConfigError) as caught:
        TrainConfig(**settings)
    assert message in str(caught.value)


def test_a_split_with_fewer_images_than_classes_on_a_side_is_refused():
    labels = np.arange(10) % 5
    with pytest.raises(ConfigError, match="give 7 to train and 3 to score, fewer than the 5 classes"):
        split_indices(labels, 2 / 3, 0, 5)
    train, reward, _ = split_indices(np.arange(30) % 5, 2 / 3, 0, 5)
    assert len(train) == 20 and len(reward) == 10 and not set(train) & set(reward)


def test_device_names_are_checked():
    with pytest.raises(ConfigError, match="device must be 'cuda', 'cuda:N', 'cpu' or 'auto', got 'foo'"):
        resolve_device("foo")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("mps")


def test_diverging_loss_gives_zero_with_the_reason(digits):
    result = ChildTrainer(digits, TrainConfig(epochs=2, batch_size=64, learning_rate=1e30), "cpu").train(
        Architecture.parse("c3")
    )
    assert result.accuracy == 0.0 and result.failure == "non-finite training loss in epoch 1"
    assert result.parameters > 0


def test_impossible_network_fails_fast_as_out_of_memory(digits):
    """The widest network the bounds allow wants terabytes: refused before anything is allocated, reward 0, and why."""
    config = TrainConfig(epochs=1, network=NetworkConfig(filters=MAX_FILTERS, dense_units=MAX_DENSE_UNITS))
    result = ChildTrainer(digits, config, "cpu").train(Architecture.parse("c3"))
    expected = parameter_count(Architecture.parse("c3"), 10, TINY["image_size"], config.network)
    assert result.accuracy == 0.0 and result.failure.startswith(f"out of memory: {expected:,} parameters need")
    assert result.parameters == expected and result.train_seconds < 1  # not a speed claim: nothing ran
    assert ChildTrainer(digits, TINY_CONFIG, "cpu").train(Architecture.parse("c3")).failure == ""


def test_allocator_and_cuda_out_of_memory_errors_are_recognised():
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried")
    assert is_out_of_memory(cpu) and is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory."))
    try:  # as a failed CUDA graph capture reports it: another error raised while handling the first
        try:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        except RuntimeError:
            raise RuntimeError("operation failed due to a previous error during capture") from None
    except RuntimeError as wrapped:
        assert is_out_of_memory(wrapped)
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def test_failed_graph_capture_retrains_eagerly_from_scratch_and_says_so(digits, monkeypatch):
    """A capture failure must cost speed, never the reward: the eager retraining gives the eager result.

    On the CPU capture always fails (no CUDA), which exercises the real fallback path.
    """
    monkeypatch.setattr(cuda_graphs, "_FAILURE", None)  # graphs on, as in a process where no capture failed yet
    config = TrainConfig(epochs=1, batch_size=32)  # 200 training images: 2 eager steps, then capture
    eager = ChildTrainer(digits, config, "cpu").train(Architecture.parse("c3-a2"))
    trainer = ChildTrainer(digits, config, "cpu")
    trainer.cuda_graphs = True  # what a CUDA trainer does
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        fallback = trainer.train(Architecture.parse("c3-a2"))
    assert "CUDA graph capture failed, trained eagerly" in fallback.execution
    assert fallback.failure == "" and fallback.accuracy == eager.accuracy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_training_matches_eager_within_noise():
    data = load_dataset("digits", 28)
    config = TrainConfig(epochs=3, batch_size=128)
    architecture = Architecture.parse("c3-m2-c3")
    graphed = ChildTrainer(data, config, "cuda").train(architecture)
    eager = ChildTrainer(data, config, "cuda", cuda_graphs=False).train(architecture)
    assert graphed.failure == "" and "CUDA graph" in graphed.execution and "failed" not in graphed.execution
    assert abs(graphed.accuracy - eager.accuracy) < 0.05, (graphed, eager)
