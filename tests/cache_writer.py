"""A reward-cache writer for the multi-process test: kept apart so spawned processes import little."""

from nasgym.core.reward_cache import CachedReward, RewardCache


def write_many(path: str, worker: int, n: int) -> None:
    cache = RewardCache(path, timeout=60)
    for i in range(n):
        cache.put(f"key-{worker}-{i}", f"arch-{i}", "digits", CachedReward(i / n, 0.1, i, None), {"w": worker})
        cache.put("shared-key", "c3", "digits", CachedReward(0.25, 0.1, 1, None), {})
        assert cache.get(f"key-{worker}-{i}").accuracy == i / n
