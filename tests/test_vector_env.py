"""``gym.make_vec("NAS-v0", num_envs=N)``: N copies sharing one evaluator, their networks evaluated as one batch."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from support import TINY, toy_reward

import nasgym  # noqa: F401  (registers NAS-v0)
from nasgym.core.env import NASEnv
from nasgym.core.errors import ConfigError
from nasgym.core.evaluator import FunctionEvaluator
from nasgym.core.vector_env import NASVectorEnv


class RecordingEvaluator(FunctionEvaluator):
    """The toy reward; remembers the size of every batch it was asked for."""

    def __init__(self):
        super().__init__(toy_reward, image_size=16)
        self.batches: list[int] = []

    def evaluate(self, architectures):
        self.batches.append(len(architectures))
        return super().evaluate(architectures)


def test_make_vec_builds_the_batched_env_with_one_shared_evaluator():
    envs = gym.make_vec("NAS-v0", num_envs=3, dataset="digits", max_samples=150, **TINY)
    assert isinstance(envs, NASVectorEnv)
    assert len({id(env.evaluator) for env in envs.envs}) == 1
    assert envs.action_masks().shape == (3, 8)


def test_each_step_evaluates_the_copies_networks_in_one_call():
    evaluator = RecordingEvaluator()
    envs = NASVectorEnv(3, evaluator=evaluator, image_size=16)
    envs.reset(seed=0)
    _, rewards, _, _, info = envs.step(np.array([1, 0, 3]))
    assert evaluator.batches[0] == 3 and info["rewarded"].all() and rewards.shape == (3,)
    assert list(info["architecture"]) == ["c3", "c1", "m2"]


def test_rewards_equal_those_of_single_envs_and_copies_reset_on_their_own():
    actions = np.array([[1, 7], [3, 1], [7, 7], [0, 1], [7, 2]])  # copy 0 ends at step 3, copy 1 at step 3
    evaluator = RecordingEvaluator()
    envs = NASVectorEnv(2, evaluator=evaluator, image_size=16)
    envs.reset(seed=0)
    steps = [envs.step(a) for a in actions]
    single = gym.make("NAS-v0", evaluator=FunctionEvaluator(toy_reward, image_size=16), image_size=16)
    for copy in range(2):
        single.reset()
        expected = []
        for t, (_, rewards, terminated, _, _) in enumerate(steps):
            if t > 0 and steps[t - 1][2][copy]:  # the step after an episode end resets this copy
                single.reset()
                assert rewards[copy] == 0.0 and not terminated[copy]
                continue
            _, reward, done, _, _ = single.step(int(actions[t][copy]))
            expected.append((reward, done))
            assert (rewards[copy], terminated[copy]) == (reward, done)
        assert expected


def test_the_number_of_copies_is_checked():
    with pytest.raises(ConfigError, match="num_envs must be a positive int"):
        NASVectorEnv(0, evaluator=RecordingEvaluator())


def same(a, b) -> bool:
    """Equal step results or infos: arrays by dtype, shape and values, dicts key by key, object arrays item by item."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, np.ndarray) and a.dtype == object:
        return isinstance(b, np.ndarray) and a.shape == b.shape and all(map(same, a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("mode", list(gym.vector.AutoresetMode))
def test_without_holds_it_steps_and_resets_as_gymnasiums_sync_vector_env(mode):
    """The autoreset modes, reset_mask and the stacked infos are Gymnasium's own, step for step."""
    evaluator = FunctionEvaluator(toy_reward, image_size=16)
    options = {"evaluator": evaluator, "image_size": 16, "max_layers": 4, "reward": "per_step"}
    ours = NASVectorEnv(3, autoreset_mode=mode, **options)
    theirs = gym.vector.SyncVectorEnv([lambda: NASEnv(**options)] * 3, autoreset_mode=mode)
    assert ours.metadata["autoreset_mode"] == theirs.metadata["autoreset_mode"] == mode
    assert same(ours.reset(seed=1), theirs.reset(seed=1))
    rng = np.random.default_rng(0)
    ended = np.zeros(3, dtype=np.bool_)
    for step in range(40):
        if step % 9 == 8:
            ended[:] = True  # every copy, mid-episode or not
        if ended.any() and (step % 9 == 8 or mode == gym.vector.AutoresetMode.DISABLED):
            assert same(ours.reset(options={"reset_mask": ended.copy()}), theirs.reset(options={"reset_mask": ended}))
        actions = rng.integers(0, 8, 3)
        result = ours.step(actions)
        assert same(result, theirs.step(actions)), step
        ended = result[2] | result[3]
