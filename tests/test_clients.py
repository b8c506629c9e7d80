"""NAS-v0 driven by the RL libraries people bring their agents in, each for real with a tiny training budget.

Every client here trains real child networks (support.TINY on 100 digits, no persistent cache unless a test is
about it): the env checkers, stable-baselines3, sb3-contrib, Gymnasium's vector envs in every start mode,
pickling, a CleanRL-style PPO loop and RLlib. README's "Using NAS-v0 from other libraries" shows these snippets.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from pathlib import Path

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from PIL import Image
from sb3_contrib import MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env
from support import TINY
from torch import nn

import nasgym  # noqa: F401  (registers NAS-v0)

BUDGET = {**TINY, "dataset": "digits", "max_samples": 100, "cache": False}
"""Under 0.2 s per network on two CPU cores."""


def make_env(**options) -> gym.Env:
    return gym.make("NAS-v0", **{**BUDGET, **options})


class StepInfos(BaseCallback):
    """Collects every step's info (SB3 callback)."""

    def __init__(self):
        super().__init__()
        self.infos: list[dict] = []

    def _on_step(self) -> bool:
        self.infos.extend(self.locals["infos"])
        return True


# -- env checkers --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("observation", ["nsc", "onehot"])
def test_both_env_checkers_accept_nas_v0(observation: str):
    env = make_env(observation=observation)
    gymnasium_check_env(env.unwrapped)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        sb3_check_env(env.unwrapped, warn=True)
    # SB3's only remark: it recommends flat observations, and the NSC matrix is 2-D on purpose.
    expected = 1 if observation == "nsc" else 0
    assert [str(w.message) for w in warned if "unconventional shape" not in str(w.message)] == []
    assert sum("unconventional shape" in str(w.message) for w in warned) == expected


# -- stable-baselines3 and sb3-contrib ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("algorithm", "options"),
    [
        (PPO, {"n_steps": 16, "batch_size": 16, "n_epochs": 1}),
        (A2C, {"n_steps": 8}),
        (DQN, {"learning_starts": 8, "train_freq": 4, "buffer_size": 64, "batch_size": 8}),
    ],
    ids=["PPO", "A2C", "DQN"],
)
def test_stable_baselines3_learns_on_nas_v0(algorithm, options: dict):
    env = make_env()
    seen = StepInfos()
    model = algorithm("MlpPolicy", env, seed=0, device="cpu", **options).learn(16, callback=seen)
    assert model.num_timesteps == 16
    rewarded = [info for info in seen.infos if info["rewarded"]]
    assert rewarded and all(0.0 <= info["accuracy"] <= 1.0 for info in rewarded)
    assert env.unwrapped.evaluator.stats.trained > 0


def test_maskable_ppo_on_a_vector_env_builds_no_invalid_network():
    # 8-pixel images: a few pooling or 5x5 layers empty the image, so unmasked choices would often be invalid.
    envs = make_vec_env(lambda: make_env(image_size=8), n_envs=2, seed=0)
    masks = get_action_masks(envs)  # sb3-contrib finds NASEnv.action_masks through every wrapper
    assert masks.shape == (2, 8) and masks.all()

    class InfosAndMasks(StepInfos):
        forbidden = 0

        def _on_step(self) -> bool:
            self.forbidden += int((~get_action_masks(self.training_env)).sum())
            return super()._on_step()

    seen = InfosAndMasks()
    MaskablePPO("MlpPolicy", envs, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu").learn(32, callback=seen)
    assert len(seen.infos) == 32
    assert seen.forbidden > 0  # the masks did forbid actions ...
    assert all(info["valid"] for info in seen.infos)  # ... and no network was invalid


def test_recurrent_ppo_learns_on_nas_v0():
    env = make_env()
    seen = StepInfos()
    RecurrentPPO("MlpLstmPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu").learn(
        16, callback=seen
    )
    assert len(seen.infos) == 16 and any(info["rewarded"] for info in seen.infos)


# -- Gymnasium vector envs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "context"), [("sync", None), ("async", "fork"), ("async", "spawn")], ids=["sync", "fork", "spawn"]
)
def test_vector_envs_step_two_copies_through_invalid_networks(mode: str, context: str | None):
    if context == "fork":
        # A parent that has trained has OpenMP's thread pool running, which a fork cannot take along.
        parent = make_env()
        parent.reset()
        assert parent.step(1)[4]["rewarded"]
    vector_kwargs = {"context": context} if context else {}
    envs = gym.make_vec("NAS-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs, **BUDGET)
    try:
        envs.reset(seed=0)
        envs.action_space.seed(0)
        assert all(mask.all() for mask in envs.call("action_masks"))
        invalid = rewarded = 0
        for _ in range(20):
            actions = envs.action_space.sample()  # random and unmasked: some networks end invalid
            if mode == "async":  # a deadlocked worker fails the test instead of hanging it
                envs.step_async(actions)
                _, reward, _, _, info = envs.step_wait(timeout=120)
            else:
                _, reward, _, _, info = envs.step(actions)
            assert info["nsc"].shape == (2, 10, 5) and info["accuracy"].dtype == np.float64
            assert ((reward == 0) | info["valid"]).all()
            invalid += int((info["_valid"] & ~info["valid"]).sum())
            rewarded += int(info["rewarded"][info["_rewarded"]].sum())
        assert invalid > 0 and rewarded > 0
    finally:
        envs.close(terminate=mode == "async")


# -- pickling ------------------------------------------------------------------------------------------------------
ROUND_TRIPS = {
    "pickle": lambda env: pickle.loads(pickle.dumps(env)),
    "deepcopy": copy.deepcopy,
    "cloudpickle": lambda env: cloudpickle.loads(cloudpickle.dumps(env)),
}


@pytest.mark.parametrize("round_trip", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_a_copied_env_works_and_shares_the_reward_cache_file(round_trip, tmp_path: Path):
    env = make_env(cache=True, cache_path=str(tmp_path / "rewards.sqlite"))
    env.reset(seed=0)
    first = env.step(1)
    twin = round_trip(env)
    twin.reset()
    again = twin.step(1)  # a repeat: answered by the copied memo, unchanged
    assert again[1] == first[1] and again[4]["train_seconds"] == first[4]["train_seconds"]
    trained = twin.step(3)  # a new network: the copy trains it ...
    assert not trained[4]["from_cache"] and twin.unwrapped.evaluator.stats.trained == 2
    answered = env.step(3)  # ... and the original finds it in the shared cache file
    assert answered[4]["from_cache"] and answered[1] == trained[1]
    assert env.unwrapped.evaluator.stats.trained == 1  # the copy's memo and counters are its own

    fresh = make_env()
    fresh.reset()
    fresh.step(1)
    assert fresh.step(3)[1] == trained[1]  # the copy trains exactly as a new env does


def test_a_memory_mapped_dataset_pickles_as_its_cache_not_its_pixels(tmp_path: Path):
    rng = np.random.default_rng(0)
    for label in range(3):
        (tmp_path / "images" / f"class{label}").mkdir(parents=True)
        for index in range(10):
            pixels = rng.integers(0, 60, (24, 24, 3)) + 90 * label
            Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "images" / f"class{label}" / f"{index}.png")
    env = make_env(dataset=f"folder:{tmp_path / 'images'}", max_samples=None, image_size=48, data_dir=str(tmp_path))
    images = env.unwrapped.evaluator.data.images
    assert isinstance(images, np.memmap)
    env.reset()
    env.step(3)  # trains: the trainer holds its own copy of the split
    blob = pickle.dumps(env)
    assert len(blob) < images.nbytes / 4  # neither the images nor the trainer's copy of them
    twin = pickle.loads(blob)
    assert isinstance(twin.unwrapped.evaluator.data.images, np.memmap)
    assert twin.unwrapped.evaluator.data.fingerprint == env.unwrapped.evaluator.data.fingerprint
    assert twin.step(5)[1] == env.step(5)[1]  # both train m3-a2 on the same images


# -- CleanRL-style PPO ---------------------------------------------------------------------------------------------
def test_cleanrl_style_ppo_with_two_envs():
    """CleanRL's single-file PPO, shortened: a vector env of 2 copies, GAE, clipped surrogate, no wrappers on
    NAS-v0 beyond episode statistics (the one-hot observation is what an MLP takes)."""
    num_envs, num_steps, gamma, gae_lambda, clip = 2, 8, 0.99, 0.95, 0.2
    envs = gym.make_vec(
        "NAS-v0",
        num_envs=num_envs,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        observation="onehot",
        **BUDGET,
    )
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    n_obs, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    torch.manual_seed(0)
    actor = nn.Sequential(nn.Linear(n_obs, 64), nn.Tanh(), nn.Linear(64, n_actions))
    critic = nn.Sequential(nn.Linear(n_obs, 64), nn.Tanh(), nn.Linear(64, 1))
    optimizer = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=2.5e-4)
    before = [p.detach().clone() for p in actor.parameters()]

    obs_buf = torch.zeros((num_steps, num_envs, n_obs))
    actions, logprobs, rewards, dones, values = (torch.zeros((num_steps, num_envs)) for _ in range(5))
    next_obs, _ = envs.reset(seed=0)
    next_obs, next_done = torch.as_tensor(next_obs), torch.zeros(num_envs)
    episode_returns = []
    for _iteration in range(2):
        for step in range(num_steps):
            obs_buf[step], dones[step] = next_obs, next_done
            with torch.no_grad():
                dist = torch.distributions.Categorical(logits=actor(next_obs))
                action = dist.sample()
                logprobs[step], values[step], actions[step] = dist.log_prob(action), critic(next_obs).flatten(), action
            next_obs, reward, terminations, truncations, infos = envs.step(action.numpy())
            rewards[step] = torch.as_tensor(reward, dtype=torch.float32)
            next_obs, next_done = torch.as_tensor(next_obs), torch.as_tensor(terminations | truncations).float()
            if "episode" in infos:
                episode_returns.extend(infos["episode"]["r"][infos["_episode"]])
        with torch.no_grad():  # generalised advantage estimation
            next_value, advantages, last = critic(next_obs).flatten(), torch.zeros_like(rewards), 0
            for t in reversed(range(num_steps)):
                not_done = 1.0 - (next_done if t == num_steps - 1 else dones[t + 1])
                following = next_value if t == num_steps - 1 else values[t + 1]
                delta = rewards[t] + gamma * following * not_done - values[t]
                advantages[t] = last = delta + gamma * gae_lambda * not_done * last
            returns = advantages + values
        b_obs, b_actions, b_logprobs = obs_buf.reshape(-1, n_obs), actions.reshape(-1), logprobs.reshape(-1)
        b_advantages, b_returns = advantages.reshape(-1), returns.reshape(-1)
        for _epoch in range(2):
            for batch in torch.randperm(num_steps * num_envs).split(8):
                dist = torch.distributions.Categorical(logits=actor(b_obs[batch]))
                ratio = (dist.log_prob(b_actions[batch]) - b_logprobs[batch]).exp()
                adv = b_advantages[batch]
                policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
                value_loss = 0.5 * (critic(b_obs[batch]).flatten() - b_returns[batch]).pow(2).mean()
                loss = policy_loss + 0.5 * value_loss - 0.01 * dist.entropy().mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                assert torch.isfinite(loss)
    envs.close()
    assert episode_returns and all(0.0 <= float(r) <= 10.0 for r in episode_returns)
    assert any(not torch.equal(a, b) for a, b in zip(before, actor.parameters(), strict=True))


# -- RLlib ---------------------------------------------------------------------------------------------------------
RLLIB_SKIP = (
    "ray[rllib] is not installed: ray 2.60.0 pins gymnasium 1.2.2, and installing it would downgrade the "
    "gymnasium 1.4.0 nasgym is tested with (install it in its own environment to use RLlib)"
)


def test_rllib_ppo_runs_one_iteration():
    pytest.importorskip("ray.rllib", reason=RLLIB_SKIP, exc_type=ImportError)  # core Ray without RLlib's deps
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    ray.init(num_cpus=2, include_dashboard=False)
    try:
        config = (
            PPOConfig()
            # "module:id" makes gymnasium import nasgym, which registers NAS-v0, in RLlib's worker processes
            .environment("nasgym:NAS-v0", env_config={**BUDGET, "observation": "onehot"})
            .env_runners(num_env_runners=1, num_envs_per_env_runner=2)  # the envs live in a Ray worker
            .training(train_batch_size_per_learner=32, minibatch_size=16, num_epochs=1)
        )
        algo = config.build_algo()
        result = algo.train()
        algo.stop()
    finally:
        ray.shutdown()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 32
