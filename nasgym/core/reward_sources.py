"""Where ``NAS-v0``'s rewards come from: one evaluator factory per ``reward_source``, found by name.

A new reward source is one module with an evaluator (``nasgym.core.evaluator.Evaluator``) and a line here: rewards
worth caching are ``CachedEvaluator``, the reward layer, over an executor of the module's own
(``nasgym.core.executors.Executor``: ``RayEvaluator`` is one); others implement the protocol on ``EvaluatorBase``
(weight sharing, table, surrogate). The factories sit above the evaluators they build, so a reward source's module
imports only the evaluator base and executors, never another source's.
"""

from __future__ import annotations

from collections.abc import Callable

from nasgym.core.config import EnvConfig
from nasgym.core.datasets import ImageData
from nasgym.core.evaluator import Evaluator, TrainingEvaluator
from nasgym.core.lookup.source import TableEvaluator
from nasgym.core.lookup.surrogate import SurrogateEvaluator
from nasgym.core.ray_backend import RayEvaluator
from nasgym.core.training import TrainConfig
from nasgym.core.weight_sharing.evaluator import WeightSharingEvaluator

Factory = Callable[[EnvConfig, TrainConfig, "ImageData | None"], Evaluator]


def _trained(config: EnvConfig, train_config: TrainConfig, data: ImageData | None) -> Evaluator:
    """This process trains, or Ray tasks do (``backend``)."""
    if config.compute.backend == "ray":
        return RayEvaluator.from_config(config, train_config, data=data)
    return TrainingEvaluator.from_config(config, train_config, data=data)


REWARD_SOURCES: dict[str, Factory] = {
    "trained": _trained,
    "weight_sharing": WeightSharingEvaluator.from_config,
    "table": TableEvaluator.from_config,
    "surrogate": SurrogateEvaluator.from_config,
}


def build_evaluator(config: EnvConfig, train_config: TrainConfig, data: ImageData | None = None) -> Evaluator:
    """The evaluator ``NAS-v0`` builds for these settings (``data``: the dataset when already loaded)."""
    return REWARD_SOURCES[config.reward_source](config, train_config, data)
