"""No network trained twice at the same time: who trains which network now, and who waits for it.

The reward layer (``evaluator.CachedEvaluator``), before handing networks to its executor, asks ``InFlight.take``
which of them it may have computed. A network that another thread of this process is training (another environment,
another evaluator) is waited for through this module's registry; one that another process sharing the reward cache
is training, through the cache's claims (``RewardCache.claim``). Waiting ends with that training's reward, or, when
the other side gave up or died (its claim expired), with the network handed to the waiter to train.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from nasgym.core.evaluation import Evaluation
from nasgym.core.reward_cache import RewardCache

POLL_SECONDS = 0.2
"""How often a waiter looks again for a reward that another thread or process is training."""


class _Flight:
    """One training in this process: done when its reward is known (None: it stopped without one)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.evaluation: Evaluation | None = None


_LOCK = threading.Lock()
_FLIGHTS: dict[str, _Flight] = {}
"""Reward key -> the training of it running in this process (keys cover dataset, settings and network)."""


class InFlight:
    """The trainings one ``evaluate`` call holds and the ones it waits for; ``release`` when done."""

    def __init__(self, cache: RewardCache | None):
        self.cache = cache if cache is not None and not cache.read_only else None
        self._mine: set[str] = set()
        self._watching: dict[str, _Flight] = {}

    def take(self, keys: Iterable[str]) -> tuple[set[str], dict[str, Evaluation]]:
        """``(mine, answered)``: the keys this caller is to train now, and rewards that others finished. Keys in
        neither are being trained elsewhere: ``wait``, then ``take`` them again."""
        local, answered = [], {}
        with _LOCK:
            for key in keys:
                flight = self._watching.get(key)
                if flight is not None and flight.done.is_set():
                    del self._watching[key]
                    if flight.evaluation is not None:
                        answered[key] = flight.evaluation.cached()
                        continue
                current = _FLIGHTS.get(key)
                if current is None:
                    _FLIGHTS[key] = _Flight()
                    local.append(key)
                else:
                    self._watching[key] = current
        mine = set(local)
        if self.cache is not None and local:
            try:
                mine, stored = self.cache.claim(local)
            except BaseException:
                self._end(local, None)
                raise
            answered.update(stored)
            for key in local:
                if key not in mine:  # stored, or trained by another process: local waiters follow this answer
                    self._end([key], stored.get(key))
        self._mine |= mine
        return mine, answered

    def finish(self, key: str, evaluation: Evaluation) -> None:
        """This caller's training of ``key`` is done (its reward already stored): wake whoever waits for it."""
        self._mine.discard(key)
        self._end([key], evaluation)

    def wait(self) -> None:
        time.sleep(POLL_SECONDS)

    def release(self) -> None:
        """Give up every training taken and not finished (an error or an interruption), so others may take it."""
        unfinished, self._mine = list(self._mine), set()
        self._end(unfinished, None)
        if self.cache is not None and unfinished:
            self.cache.release(unfinished)

    @staticmethod
    def _end(keys: Iterable[str], evaluation: Evaluation | None) -> None:
        with _LOCK:
            for key in keys:
                flight = _FLIGHTS.pop(key, None)
                if flight is not None:
                    flight.evaluation = evaluation
                    flight.done.set()
