"""``Evaluation``: the one record of a network's reward, from the trainer through the reward cache to ``info``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

REWARD_SOURCES = ("trained", "weight_sharing", "table", "surrogate", "function", "none")
"""Where a reward came from: a child trained from scratch, shared weights (never cached), a look-up table of
recorded trainings, a surrogate model fitted on one, a user's reward function, or no reward this step."""
NO_ACCURACY = -1.0
"""``accuracy`` of a step without a reward: a finite sentinel, not NaN, so that infos compare equal to themselves
(Gymnasium's determinism check, clients that validate what they store); ``rewarded`` is the flag to test."""


@dataclass(frozen=True)
class Evaluation:
    """The reward of one network and where it came from."""

    architecture: str
    """The network (computing layers only), e.g. 'c3-m2'."""
    accuracy: float
    """Top-1 accuracy on the reward split, in [0, 1]; 0 when training failed, ``NO_ACCURACY`` (-1.0) when nothing
    was evaluated."""
    train_seconds: float
    """What training this network took, whenever that was (also when the answer came from the cache)."""
    parameters: int
    """Trainable parameters of the child network; -1 when nothing was evaluated."""
    failure: str = ""
    """Why training failed (non-finite loss, out of memory); empty when it succeeded."""
    from_cache: bool = False
    """Answered by the persistent reward cache: trained by an earlier run or another process."""
    source: str = "trained"
    """One of ``REWARD_SOURCES``."""
    execution: str = ""
    """How the training ran, e.g. 'cpu: eager, fp32, channels_last, 2 threads'."""
    node: str = ""
    """Where it was trained: the Ray node's id with the Ray backend, the host's name otherwise (kept by the cache)."""

    @classmethod
    def none(cls, architecture: str = "") -> Evaluation:
        """The record of a step without a reward: every field present, with its 'no value' value."""
        return cls(architecture, NO_ACCURACY, 0.0, -1, source="none")

    @property
    def rewarded(self) -> bool:
        return self.source != "none"

    def cached(self) -> Evaluation:
        return replace(self, from_cache=True)

    def info(self) -> dict[str, Any]:
        """The fields an environment step reports, with fixed types whether or not the step was rewarded."""
        return {
            "rewarded": self.rewarded,
            "accuracy": float(self.accuracy),
            "from_cache": bool(self.from_cache),
            "train_seconds": float(self.train_seconds),
            "parameters": int(self.parameters),
            "failure": self.failure,
            "reward_source": self.source,
        }


@dataclass
class EvaluationStats:
    """What an evaluator has spent: networks trained, answers from the persistent cache, repeats."""

    trained: int = 0
    """Networks this evaluator trained."""
    cache_hits: int = 0
    """Answered by the cache or by another's training of the same network (waited for, not repeated)."""
    repeats: int = 0
    train_seconds: float = 0.0
