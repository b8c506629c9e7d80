"""``NAS-v0`` as a Gymnasium vector environment whose copies are rewarded as one batch.

``gym.make_vec("NAS-v0", num_envs=N)`` builds ``N`` environments that share one evaluator (one dataset in
memory, one reward cache). Each ``step`` first collects the networks the ``N`` actions will be rewarded for and
hands them to the evaluator in one call, then steps the copies, which answer from the evaluator's memory. A
concurrent or remote evaluator (``TrainingEvaluator(concurrency=...)``, a Ray backend) therefore trains the ``N``
networks side by side. Apart from that it is gymnasium's ``SyncVectorEnv``: same autoreset modes, same
stacked ``info`` (NAS-v0's info has fixed keys and types, so it stacks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import iterate

from nasgym.core.env import NASEnv
from nasgym.core.errors import ConfigError


class NASVectorEnv(SyncVectorEnv):
    """``num_envs`` copies of ``NAS-v0`` built from the same keywords, sharing one evaluator."""

    def __init__(
        self,
        num_envs: int,
        *,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        copy: bool = True,
        **options: Any,
    ):
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ConfigError(f"num_envs must be a positive int, got {num_envs!r}")
        first = NASEnv(**options)
        shared = {**options, "evaluator": first.evaluator}
        makers = [lambda: first] + [lambda: NASEnv(**shared) for _ in range(num_envs - 1)]
        super().__init__(makers, copy=copy, autoreset_mode=autoreset_mode)
        self.evaluator = first.evaluator

    def step(self, actions: Any):
        networks = []
        for index, action in enumerate(iterate(self.action_space, actions)):
            if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[index]:
                continue  # this copy resets instead of stepping
            network = self.envs[index].rewarded_network(int(action))
            if network is not None:
                networks.append(network)
        if networks and getattr(self.evaluator, "stationary", True):  # shared weights: each copy's step trains them
            self.evaluator.evaluate(networks)
        return super().step(actions)

    def action_masks(self) -> np.ndarray:
        """``(num_envs, 8)``: each copy's valid actions (a copy about to reset is offered every action)."""
        return np.stack([env.action_masks() for env in self.envs])
