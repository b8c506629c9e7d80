"""Zoph & Le's curriculum: the networks get deeper as the search goes on (``nasgym search --curriculum``).

The schedule ``START:STEP:EVERY`` gives the first ``EVERY`` episodes ``START`` layers, the next ``EVERY`` episodes
``START + STEP``, and so on up to the environment's ``layers``. Zoph & Le's CIFAR-10 search grew the depth by 2
every 1,600 sampled networks; ``--curriculum 6:2:1600`` on ``--layers 14`` (say) follows that rule. A resumed
search recomputes the depth from the episodes it has finished, so it continues on the same schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasgym.core.errors import ConfigError


@dataclass(frozen=True)
class Curriculum:
    start: int
    step: int
    every: int

    @classmethod
    def parse(cls, text: str) -> Curriculum:
        parts = text.split(":")
        try:
            start, step, every = (int(part) for part in parts)
        except ValueError:
            raise ConfigError(f"--curriculum takes START:STEP:EVERY (three whole numbers), got {text!r}") from None
        return cls.of([start, step, every])

    @classmethod
    def of(cls, values: list[int] | tuple[int, ...]) -> Curriculum:
        start, step, every = values
        if start < 1 or step < 1 or every < 1:  # a STEP of 0 never deepens: that is no curriculum
            raise ConfigError(f"curriculum START, STEP and EVERY must be >= 1, got {start}:{step}:{every}")
        return cls(start, step, every)

    def depth(self, finished_episodes: int, max_layers: int) -> int:
        """Layers of the next episode after ``finished_episodes`` episodes."""
        return min(max_layers, self.start + self.step * (finished_episodes // self.every))

    def check(self, max_layers: int, batch: int | None) -> None:
        """The start fits the environment; with an agent that samples ``batch`` networks at once (REINFORCE's m),
        the depth changes only between batches."""
        if self.start > max_layers:
            raise ConfigError(f"the curriculum starts at {self.start} layers, more than the env's layers={max_layers}")
        if batch is not None and self.every % batch:
            raise ConfigError(
                f"the curriculum's EVERY ({self.every}) must be a multiple of architectures_per_update ({batch}), "
                "so that no batch mixes depths"
            )
