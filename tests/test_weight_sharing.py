"""``reward_source="weight_sharing"``: the env checkers, rewards that move as the shared weights train, nothing in
the reward cache, and a state that continues exactly where it was saved."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from support import OMNIGLOT_DIR, needs_omniglot

import nasgym
from agents.checkpoint import check_plain
from nasgym.core.datasets.prepare import prepare
from nasgym.core.reward_cache import RewardCache
from nasgym.core.search_space import Architecture
from nasgym.core.weight_sharing.evaluator import WeightSharingEvaluator

WS = {"dataset": "digits", "image_size": 16, "batch_size": 32, "device": "cpu", "max_samples": 300}
WS = {**WS, "reward_source": "weight_sharing", "ws_steps": 2, "ws_valid_samples": 64, "ws_warmup": 0, "ws_head": "gap"}


def ws_env(**options) -> gym.Env:
    return gym.make("NAS-v0", **{**WS, **options})


@pytest.mark.parametrize("observation", ["nsc", "onehot"])
def test_both_env_checkers_accept_the_weight_sharing_env(observation: str) -> None:
    env = ws_env(observation=observation, ws_warmup=2)
    assert env.unwrapped.spec.nondeterministic  # rewards move between steps; the spec says so
    gymnasium_check_env(env.unwrapped)
    sb3_check_env(env.unwrapped, warn=False)


def test_rewards_move_as_the_shared_weights_train_and_never_reach_the_cache(tmp_path: Path) -> None:
    cache_path = tmp_path / "rewards.sqlite"
    trained = gym.make("NAS-v0", **{**WS, "reward_source": "trained", "epochs": 1}, cache_path=str(cache_path))
    trained.reset()
    cached_reward = trained.step(1)[1]  # c3, trained and stored
    trained.close()
    stored = len(RewardCache(cache_path))
    assert stored == 1

    env = ws_env(cache_path=str(cache_path), ws_learning_rate=3e-3)
    rewards, infos = [], []
    for _ in range(12):
        env.reset()
        _, reward, _, _, info = env.step(1)  # the same network, c3, every time
        rewards.append(reward)
        infos.append(info)
    assert all(info["reward_source"] == "weight_sharing" and not info["from_cache"] for info in infos)
    assert len(set(rewards)) > 3  # not memoised: each answer comes from weights trained further
    assert sum(rewards[-4:]) > sum(rewards[:4])  # and they learn (chance is 0.1 on ten digits)
    assert rewards != [cached_reward] * 12
    assert len(RewardCache(cache_path)) == stored  # nothing was written
    assert env.unwrapped.evaluator.stats.trained == 12


def test_prefetch_does_not_evaluate_ahead_of_the_steps() -> None:
    env = ws_env()
    env.unwrapped.prefetch([[1, 3, 2, 7]])
    assert env.unwrapped.evaluator.stats.trained == 0


@pytest.mark.parametrize("options", [{"ws_head": "gap"}, {"ws_head": "per_shape", "ws_optimizer": "sgd"}])
def test_a_loaded_state_continues_exactly(options: dict, tmp_path: Path) -> None:
    """Two evaluators, one continuing from the other's saved state, give identical rewards from then on."""
    env = ws_env(ws_warmup=3, **options)
    first = env.unwrapped.evaluator
    networks = [Architecture.parse(text) for text in ("c3", "c3-m2", "c5-a2-c1", "m2", "c1-c1-c1")]
    first.evaluate(networks[:3])
    path = tmp_path / "state.pt"
    state = first.state_dict()
    check_plain(state)
    torch.save(state, path)

    second = ws_env(ws_warmup=3, **options).unwrapped.evaluator
    second.load_state_dict(torch.load(path, weights_only=True))
    assert second.supernet.head_order == first.supernet.head_order
    later = networks[2:] + networks[:2]
    assert [e.accuracy for e in second.evaluate(later)] == [e.accuracy for e in first.evaluate(later)]
    for name, tensor in first.supernet.state_dict().items():
        assert torch.equal(tensor, second.supernet.state_dict()[name]), name


def test_the_two_heads_share_differently() -> None:
    """gap: one head per final channel count; per_shape: one per (channels, side)."""
    networks = [Architecture.parse(text) for text in ("c3", "c3-m2", "c1-c1", "m2")]
    gap = ws_env(ws_head="gap").unwrapped.evaluator
    shape = ws_env(ws_head="per_shape").unwrapped.evaluator
    gap.evaluate(networks)
    shape.evaluate(networks)
    assert gap.supernet.head_order == ["c32", "c3"]
    assert shape.supernet.head_order == ["c32_s14", "c32_s7", "c32_s16", "c3_s8"]


def test_the_warm_up_trains_before_the_first_reward() -> None:
    """W sampled networks train many paths first; without it only the scored network's own layers moved."""

    def moved(evaluator: WeightSharingEvaluator, initial: dict) -> int:
        now = evaluator.supernet.convs.state_dict()
        return sum(not torch.equal(now[name], initial[name]) for name in initial if name.endswith("0.weight"))

    cold, warm = ws_env().unwrapped.evaluator, ws_env(ws_warmup=30).unwrapped.evaluator
    initial = {k: v.clone() for k, v in cold.supernet.convs.state_dict().items()}
    assert all(torch.equal(v, warm.supernet.convs.state_dict()[k]) for k, v in initial.items())  # same seed
    network = Architecture.parse("c3-m2")
    assert not warm.warmed_up
    cold.evaluate([network])
    warm.evaluate([network])
    assert warm.warmed_up
    assert moved(cold, initial) == 1 and moved(warm, initial) > 5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ws_steps": -1}, "ws_steps and ws_warmup must be >= 0"),
        ({"ws_head": "mlp"}, "ws_head must be one of 'gap', 'per_shape'"),
        ({"reward_source": "shared"}, "reward_source must be one of"),
        ({"backend": "ray"}, "use backend='local'"),
    ],
)
def test_bad_weight_sharing_settings_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(nasgym.ConfigError, match=message):
        ws_env(**options)


def test_evaluator_is_what_reward_source_builds() -> None:
    assert isinstance(ws_env().unwrapped.evaluator, WeightSharingEvaluator)


@needs_omniglot
def test_weight_sharing_on_the_real_omniglot_small1(tmp_path: Path) -> None:
    prepare("omniglot_small1", tmp_path, manual_dir=OMNIGLOT_DIR, download=False)
    env = gym.make("NAS-v0", dataset="omniglot_small1", data_dir=str(tmp_path), image_size=28, device="cpu",
                   reward_source="weight_sharing", ws_head="per_shape", ws_warmup=20)  # fmt: skip
    env.reset()
    steps = [env.step(action) for action in (1, 3, 2)]
    assert all(info["reward_source"] == "weight_sharing" and 0 <= reward <= 1 for _, reward, _, _, info in steps)
    evaluator = env.unwrapped.evaluator
    assert all(head.out_features == 136 for head in evaluator.supernet.heads.values())
    assert evaluator.stats.trained == 3 and evaluator.warmed_up
