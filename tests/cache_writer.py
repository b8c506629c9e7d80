"""A reward-cache writer for the multi-process test: kept apart so spawned processes import little."""

from nasgym.core.evaluation import Evaluation
from nasgym.core.reward_cache import RewardCache


def write_many(path: str, worker: int, n: int) -> None:
    cache = RewardCache(path, timeout=60)
    for i in range(n):
        cache.put(f"key-{worker}-{i}", Evaluation(f"arch-{i}", i / n, 0.1, i), "digits", {"w": worker})
        cache.put("shared-key", Evaluation("c3", 0.25, 0.1, 1), "digits", {})
        assert cache.get(f"key-{worker}-{i}").accuracy == i / n
