"""NAS-ZophLe-v0: Zoph & Le's token-by-token space, its child network, its masks and its searches."""

from __future__ import annotations

import hashlib
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from support import colour_folder, read_rows

import agents
from nasgym.core.errors import ArchitectureError, ConfigError
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.reward_cache import REWARD_CODE_VERSION, reward_key
from nasgym.core.zophle.network import ZophLeNetwork, output_sides, parameter_count
from nasgym.core.zophle.space import ANCHOR, CHOICES, ZophLeArchitecture, schedule, space_size
from nasgym.runners.cli import main

TINY_FLAGS = ["--epochs", "1", "--image-size", "16", "--batch-size", "64", "--max-samples", "200", "--device", "cpu"]


def toy_reward(network: ZophLeArchitecture) -> float:
    """Wide layers and many connections score high: a known optimum for learning checks."""
    layers = network.layers
    return (
        sum(layer.filters for layer in layers) / (64 * len(layers)) / 2
        + sum(len(layer.inputs) for layer in layers) / max(1, len(layers) * (len(layers) - 1) / 2) / 2
    )


def toy_env(layers: int = 3, **options) -> gym.Env:
    evaluator = FunctionEvaluator(toy_reward, image_size=16)
    return gym.make("NAS-ZophLe-v0", evaluator=evaluator, layers=layers, image_size=16, **options)


# -- the environment -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strides", [True, False])
def test_both_env_checkers_accept_nas_zophle_v0(strides: bool):
    env = toy_env(strides=strides)
    gymnasium_check_env(env.unwrapped)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        sb3_check_env(env.unwrapped, warn=True)
    assert [str(w.message) for w in warned] == []


def test_tokens_come_in_zoph_and_les_order_and_the_space_size_is_their_product():
    tokens = schedule(3)
    kinds = [token.type for token in tokens]
    assert kinds == [0, 1, 2, 3, 0, 1, 2, 3, ANCHOR, 0, 1, 2, 3, ANCHOR, ANCHOR]
    assert [token.source for token in tokens if token.type == ANCHOR] == [0, 0, 1]
    assert len(schedule(3, strides=False)) == 3 * 3 + 3
    assert space_size(1) == 4 * 4 * 4 * 3 and space_size(2) == (4 * 4 * 4 * 3) ** 2 * 2
    assert space_size(2, strides=False) == (4 * 4 * 4) ** 2 * 2


def test_masks_never_allow_an_invalid_choice_over_many_random_episodes():
    rng = np.random.default_rng(0)
    for strides in (True, False):
        env = toy_env(layers=4, strides=strides)
        space = env.unwrapped.space_model
        tokens = schedule(4, strides)
        for _ in range(150):
            observation, _ = env.reset()
            for step, token in enumerate(tokens):
                mask = env.unwrapped.action_masks()
                assert mask.tolist() == [action < len(CHOICES[token.type]) for action in range(4)]
                assert (space.masks(observation) == mask).all() and space.steps(observation) == step
                observation, reward, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(mask))))
                assert info["valid"] and terminated == (step == len(tokens) - 1)
            assert info["rewarded"] and reward == pytest.approx(toy_reward(env.unwrapped.architecture))
            assert space.actions(observation) == env.unwrapped.architecture.actions
            assert space.masks(observation).all()  # ended: everything, so a masked softmax keeps support


def test_an_unmasked_invalid_choice_ends_the_episode_with_reward_zero():
    env = toy_env()
    env.reset()
    for action in (0, 0, 0):
        env.step(action)
    _, reward, terminated, _, info = env.step(3)  # a fourth stride does not exist
    assert terminated and reward == 0.0 and not info["valid"] and not info["rewarded"]
    assert info["accuracy"] == -1.0 and info["architecture"] == "1x1x24s?3"


def test_info_has_the_same_keys_and_types_every_step():
    env = toy_env(layers=2)
    env.reset()
    shapes = []
    for _ in range(len(schedule(2))):
        *_, info = env.step(1)
        shapes.append({key: type(value) for key, value in info.items()})
    assert all(shape == shapes[0] for shape in shapes)


def test_a_gymnasium_vector_env_stacks_the_infos():
    envs = gym.make_vec(
        "NAS-ZophLe-v0", num_envs=2, evaluator=FunctionEvaluator(toy_reward, image_size=16), layers=2, image_size=16
    )
    envs.reset(seed=0)
    for _ in range(len(schedule(2))):
        _, rewards, terminated, _, info = envs.step(np.array([0, 1]))
    assert terminated.all() and list(info["architecture"]) == ["1x1x24s1-1x1x24s1:0", "3x3x36s2-3x3x36s2:1"]
    assert np.allclose(rewards, info["accuracy"]) and info["accuracy"].dtype == np.float64


def test_architecture_text_round_trips_and_bad_text_is_one_clear_error():
    architecture = ZophLeArchitecture.parse("3x3x24s1-5x1x36s2:1-7x7x64s3:01")
    assert str(architecture) == "3x3x24s1-5x1x36s2:1-7x7x64s3:01"
    assert [layer.inputs for layer in architecture.layers] == [(), (0,), (1,)]
    assert str(ZophLeArchitecture.parse("1x3x48-3x5x64:1", strides=False)) == "1x3x48-3x5x64:1"
    with pytest.raises(ArchitectureError, match="filter_height 4 is not one of"):
        ZophLeArchitecture.parse("4x3x24s1")
    with pytest.raises(ArchitectureError, match="needs 1 anchor bits"):
        ZophLeArchitecture.parse("3x3x24s1-3x3x24s1")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"observation": "onehot"}, "NAS-ZophLe-v0 has no 'observation' keyword"),
        ({"reward": "per_step"}, "rewards only the finished network"),
        ({"layers": 0}, "layers must be at least 1"),
        ({"layer": 3}, "did you mean 'layers'"),
        ({"reward_source": "weight_sharing"}, "weight sharing serves NAS-v0's chain space only"),
    ],
)
def test_bad_keywords_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        toy_env(**options)


def test_the_depth_changes_between_episodes_only():
    env = toy_env(layers=3)
    env.reset()
    env.unwrapped.set_depth(1)
    env.reset()
    for _ in range(4):
        *_, terminated, _, info = env.step(0)
    assert terminated and info["depth"] == 1 and info["architecture"] == "1x1x24s1"
    env.unwrapped.set_depth(3)
    env.reset()
    env.step(0)
    with pytest.raises(ConfigError, match="between episodes"):
        env.unwrapped.set_depth(2)


# -- the child network ---------------------------------------------------------------------------------------------
def test_network_concatenates_skips_of_different_sizes_zero_padded_and_feeds_unused_outputs_to_the_classifier():
    # layer 0: 16 px; layer 1 (stride 2) reads 0: 8 px; layer 2 (stride 3) reads 0 and 1, 8 px padded to 16: 6 px;
    # layer 3 reads 1 only: 8 px. Nobody reads 2 or 3, so the classifier gets 48 + 64 channels at 8 px.
    architecture = ZophLeArchitecture.parse("3x3x24s1-5x5x36s2:1-1x1x48s3:11-3x5x64s1:010")
    layers = architecture.layers
    assert output_sides(layers, 16) == [16, 8, 6, 8]
    model = ZophLeNetwork(layers, n_classes=10, image_size=16)
    assert [conv[0].in_channels for conv in model.convs] == [3, 24, 24 + 36, 36]
    assert [conv[0].stride for conv in model.convs] == [(1, 1), (2, 2), (3, 3), (1, 1)]
    assert model.outputs == [2, 3]
    outputs: list[torch.Tensor] = []
    for conv in model.convs:
        conv.register_forward_hook(lambda _module, _inputs, output: outputs.append(output))
    model.eval()
    images = torch.rand(2, 3, 16, 16)
    features = model.features(images)
    assert [tuple(o.shape) for o in outputs] == [(2, 24, 16, 16), (2, 36, 8, 8), (2, 48, 6, 6), (2, 64, 8, 8)]
    assert features.shape == (2, 48 + 64, 8, 8)
    # layer 2's 6x6 map sits in the middle of its 8x8 slot, zeros around it; layer 3's fills its slot.
    assert torch.equal(features[:, :48, 1:7, 1:7], outputs[2])
    assert features[:, :48, 0].abs().sum() == 0 and features[:, :48, 7].abs().sum() == 0
    assert torch.equal(features[:, 48:], outputs[3])
    assert model(images).shape == (2, 10)
    assert parameter_count(layers, 10) == sum(p.numel() for p in model.parameters())


def test_a_layer_without_inputs_reads_the_image():
    layers = ZophLeArchitecture.parse("3x3x24s2-1x1x36s1:0").layers
    model = ZophLeNetwork(layers, n_classes=5, image_size=9)
    assert [conv[0].in_channels for conv in model.convs] == [3, 3]
    assert model.outputs == [0, 1] and model.features(torch.rand(1, 3, 9, 9)).shape == (1, 60, 9, 9)


def test_real_training_gives_an_accuracy_and_the_reward_cache_key_names_the_space(tmp_path):
    env = gym.make(
        "NAS-ZophLe-v0", dataset="digits", layers=2, max_samples=200, cache_path=str(tmp_path / "r.sqlite"),
        epochs=1, image_size=16, device="cpu",
    )  # fmt: skip
    env.reset()
    for action in (1, 1, 0, 1, 1, 1, 0, 0, 1):
        *_, reward, terminated, _, info = env.step(action)
    assert terminated and info["rewarded"] and 0 <= reward <= 1 and info["parameters"] > 0
    evaluator = env.unwrapped.evaluator
    network = env.unwrapped.architecture
    payload = {
        "dataset": evaluator.data.fingerprint,
        "nsc": network.encoding(),
        "settings": evaluator.settings,
        "reward_code_version": REWARD_CODE_VERSION,
        "space": "zophle",
    }
    assert evaluator.key(network) == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    # NAS-v0's keys are what they were before a second space existed, so old caches still answer.
    old = {key: value for key, value in payload.items() if key != "space"}
    assert (
        reward_key(old["dataset"], old["nsc"], old["settings"])
        == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()
    )
    again = gym.make(
        "NAS-ZophLe-v0", dataset="digits", layers=2, max_samples=200, cache_path=str(tmp_path / "r.sqlite"),
        epochs=1, image_size=16, device="cpu",
    )  # fmt: skip
    again.reset()
    for action in (1, 1, 0, 1, 1, 1, 0, 0, 1):
        *_, info = again.step(action)
    assert info["from_cache"] and info["accuracy"] == reward


# -- agents --------------------------------------------------------------------------------------------------------
def test_reinforce_uses_zoph_and_les_controller_and_learns_a_toy_reward():
    env = toy_env(layers=3)
    agent = agents.make("reinforce", env, architectures_per_update=8, learning_rate=0.01)
    assert type(agent.controller).__name__ == "ZophLeController"
    rewards: list[float] = []
    steps = len(schedule(3)) * 8 * 25
    agent.learn(steps, callback=lambda event: rewards.append(event["reward"]) if event["terminated"] else None)
    assert np.mean(rewards[-40:]) > np.mean(rewards[:40]) + 0.1


def test_the_controller_gives_the_same_logits_step_by_step_as_on_the_whole_sequence():
    env = toy_env(layers=3)
    controller = agents.make("reinforce", env).controller
    previous = torch.tensor([[controller.start, 1, 2, 3, 0, 1, 2, 0, 1, 3, 0, 2, 1, 1]])
    whole, _ = controller(previous)
    state, parts = None, []
    for t in range(previous.shape[1]):
        logits, state = controller(previous[:, t : t + 1], state)
        parts.append(logits)
    assert torch.allclose(whole, torch.cat(parts, dim=1), atol=1e-6)
    # An anchor decision is the paper's sigmoid: logits [0, v^T tanh(W_prev h_j + W_curr h_i)].
    anchor = next(t for t, token in enumerate(schedule(3)) if token.type == ANCHOR)
    assert whole[0, anchor, 0] == 0 and whole[0, anchor, 1] != 0


@pytest.mark.parametrize(("name", "options"), [("random", {}), ("dqn", {"learning_starts": 10}), ("meta_a2c", {})])
def test_generic_agents_search_through_the_masks(name, options):
    env = toy_env(layers=2)
    agent = agents.make(name, env, **options)
    infos: list[dict] = []
    agent.learn(len(schedule(2)) * 12, callback=lambda event: infos.append(event["info"]))
    assert all(info["valid"] for info in infos) and sum(info["rewarded"] for info in infos) == 12


# -- the command line ----------------------------------------------------------------------------------------------
def test_reinforce_search_runs_end_to_end_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["search", "--env", "NAS-ZophLe-v0", "--agent", "reinforce", "--layers", "2", "--dataset", "digits"]
    argv += ["--set", "architectures_per_update=2", "--out", str(out), "--no-progress", *TINY_FLAGS]
    assert main([*argv, "--steps", str(9 * 4)]) == 0
    assert "best architecture: " in capsys.readouterr().out
    rows = read_rows(out / "episodes.csv")
    assert len(rows) == 36 and sum(row["terminated"] == "True" for row in rows) == 4
    final = [row for row in rows if row["terminated"] == "True"]
    assert all(row["accuracy"] != "" and ZophLeArchitecture.parse(row["architecture"]) for row in final)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 4 and summary["best"][0]["architecture"] in {row["architecture"] for row in final}
    settings = json.loads((out / "run.json").read_text())
    assert settings["env"] == "NAS-ZophLe-v0" and settings["env_options"]["layers"] == 2
    assert "observation" not in settings["env_options"]
    # --resume with more steps continues the same search
    assert main([*argv, "--steps", str(9 * 6), "--resume"]) == 0
    assert len(read_rows(out / "episodes.csv")) == 54


def test_the_curriculum_deepens_the_networks_during_the_search(tmp_path):
    out = tmp_path / "run"
    argv = ["search", "--env", "NAS-ZophLe-v0", "--agent", "random", "--layers", "3", "--curriculum", "1:1:2"]
    assert main([*argv, "--steps", str(4 * 2 + 9 * 2 + 15), "--out", str(out), "--no-progress", *TINY_FLAGS]) == 0
    lengths: dict[str, int] = {}
    for row in read_rows(out / "episodes.csv"):
        lengths[row["episode"]] = int(row["episode_step"])
    assert list(lengths.values()) == [4, 4, 9, 9, 15]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--reward", "per_step"], "rewards only the finished network"),
        (["--curriculum", "1:1:3", "--agent", "reinforce"], "must be a multiple of architectures_per_update"),
        (["--curriculum", "1:x:3"], "--curriculum takes START:STEP:EVERY"),
    ],
)
def test_bad_zophle_options_are_one_line_without_traceback(tmp_path, extra, message, capsys):
    argv = ["search", "--env", "NAS-ZophLe-v0", "--steps", "3", "--out", str(tmp_path / "run"), *extra, *TINY_FLAGS]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1


def test_a_curriculum_on_nas_v0_is_refused(tmp_path, capsys):
    argv = ["search", "--curriculum", "1:1:2", "--steps", "3", "--out", str(tmp_path / "run"), *TINY_FLAGS]
    assert main(argv) == 2
    assert "has none" in capsys.readouterr().err


def test_bench_agents_and_transfer_take_the_env_by_name(tmp_path, capsys):
    flags = ["--env", "NAS-ZophLe-v0", "--layers", "1", "--no-progress", *TINY_FLAGS]
    bench = tmp_path / "bench"
    argv = ["bench", "agents", "--datasets", "digits", "--agents", "random,reinforce", "--steps", "8", "--seeds", "1"]
    assert main([*argv, "--out", str(bench), *flags]) == 0
    for agent in ("random", "reinforce"):
        run = json.loads((bench / "runs" / "digits" / agent / "seed0" / "run.json").read_text())
        assert run["env"] == "NAS-ZophLe-v0" and run["env_options"]["layers"] == 1
    report = (bench / "report.md").read_text()
    assert "environment `NAS-ZophLe-v0`" in report and "Share of each action" not in report
    # NasGym's protocol names NAS-v0 keywords (its observation encoding): they are left out, the rest applies.
    transfer = tmp_path / "transfer"
    held_out = f"folder:{colour_folder(tmp_path / 'colours')}"
    argv = ["transfer", "--agent", "meta_a2c", "--train", "digits", "--eval", held_out, "--protocol", "nasgym2019"]
    assert main([*argv, "--steps-train", "8", "--steps-eval", "4", "--out", str(transfer), *flags]) == 0
    phases = sorted(transfer.glob("seed0/**/run.json"))
    assert phases and all(json.loads(path.read_text())["env"] == "NAS-ZophLe-v0" for path in phases)
    options = json.loads(phases[0].read_text())["env_options"]
    assert "observation" not in options and options["init"] == "glorot"


def test_a_search_stopped_mid_episode_resumes(tmp_path):
    """A partial network of this space has no text to parse: the resumed log reads the episode's actions instead."""
    out = tmp_path / "run"
    argv = ["search", "--env", "NAS-ZophLe-v0", "--agent", "random", "--dataset", "digits", "--layers", "2",
            "--out", str(out), "--no-progress", *TINY_FLAGS]  # fmt: skip
    assert main([*argv, "--steps", "5"]) == 0  # two layers are 10 tokens: the episode is half written
    rows = read_rows(out / "episodes.csv")
    assert len(rows) == 5 and rows[-1]["terminated"] == "False"
    assert main([*argv, "--steps", "9", "--resume"]) == 0
    rows = read_rows(out / "episodes.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, 10))
    assert int(rows[5]["episode"]) == 1 and rows[5]["episode_step"] == "1"  # one env starts a new episode
