"""A Gymnasium vector env of ``NAS-v0`` copies as stable-baselines3's ``VecEnv``, so DQN steps them as one batch.

SB3's own ``DummyVecEnv`` steps its environments one after another, so a batch-evaluating vector env
(``NASVectorEnv``) would lose its point behind it. This adapter hands SB3's actions to the vector env in one call. The
vector env must reset a copy in the step that ends its episode (``AutoresetMode.SAME_STEP``), as SB3's vector envs do;
the final observation goes into the copy's info as ``terminal_observation``, where SB3 looks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from nasgym.core.vector_env import copy_info


class GymnasiumVecEnv(VecEnv):
    """SB3's ``VecEnv`` over a Gymnasium vector env (its copies' attributes through ``env.unwrapped``)."""

    def __init__(self, env: gym.vector.VectorEnv):
        self.env = env  # before SB3's constructor, which asks the copies for their render mode
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        observations, _ = self.env.reset()
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, terminated, truncated, infos = self.env.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        copies = []
        for index in range(self.num_envs):
            info = copy_info(infos, index)
            if dones[index]:
                info["terminal_observation"] = infos["final_obs"][index]
                info["TimeLimit.truncated"] = bool(truncated[index] and not terminated[index])
            copies.append(info)
        return observations, np.asarray(rewards, dtype=np.float32), dones, copies

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        values = self.env.unwrapped.get_attr(attr_name)
        return [values[index] for index in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        values = list(self.env.unwrapped.get_attr(attr_name))
        for index in self._get_indices(indices):
            values[index] = value
        self.env.unwrapped.set_attr(attr_name, values)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list:
        envs = self.env.unwrapped.envs
        return [getattr(envs[index], method_name)(*method_args, **kwargs) for index in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> Sequence[bool]:
        return [False for _ in self._get_indices(indices)]
