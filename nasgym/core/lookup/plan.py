"""Which trainings a look-up table holds: every valid network up to a depth, a sample of deeper ones stratified by
depth (uniform among the valid networks of each depth), and a subset trained with further seeds for the seed noise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache

import numpy as np

from nasgym.core import settings
from nasgym.core.errors import ConfigError
from nasgym.core.search_space import ACTIONS, TERMINAL_ACTION, Architecture, output_size

LAYER_ACTIONS = tuple(a for a in range(len(ACTIONS)) if a != TERMINAL_ACTION)
MAX_PLANNED_NETWORKS = 100_000
"""A plan larger than this is refused: at seconds per training it would take days even on a GPU."""


@dataclass(frozen=True)
class TablePlan:
    """The networks and training seeds of a table; part of its header, so a build resumes only the same plan."""

    depth: int = 4
    """Every valid network of at most this many layers is trained (the empty network, the head alone, included)."""
    deep_per_depth: int = 50
    """Networks drawn uniformly among the valid ones of each deeper depth, up to `max_layers`."""
    seeds: tuple[int, ...] = (0, 1)
    """Training seeds; the first trains every planned network, the others the subset `seed_subset`."""
    seed_subset: int = 200
    """Planned networks, drawn at random, that the further seeds train too (the seed noise is measured on them)."""
    plan_seed: int = 0
    """Seeds the draws of the deeper networks and of the subset."""

    def __post_init__(self) -> None:
        settings.check_fields(self)
        if self.depth < 0 or self.deep_per_depth < 0 or self.seed_subset < 0:
            raise ConfigError("depth, deep_per_depth and seed_subset must be >= 0")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ConfigError(f"seeds must be distinct training seeds >= 0, got {self.seeds}")

    def header(self) -> dict:
        return {**dataclasses.asdict(self), "seeds": list(self.seeds)}

    def networks(self, image_size: int, max_layers: int) -> list[Architecture]:
        """Every network of the plan once: the exhaustive part by depth, then the deeper samples by depth."""
        if self.depth > max_layers:
            raise ConfigError(f"depth {self.depth} is deeper than max_layers={max_layers}")
        if (total := exhaustive_count(image_size, self.depth)) > MAX_PLANNED_NETWORKS:
            raise ConfigError(
                f"every network up to depth {self.depth} at {image_size} px is {total:,} trainings, more than the "
                f"{MAX_PLANNED_NETWORKS:,} a table may plan; choose a smaller depth"
            )
        rng = np.random.default_rng(self.plan_seed)
        planned = exhaustive(image_size, self.depth)
        for depth in range(self.depth + 1, max_layers + 1):
            planned += sample_depth(image_size, depth, self.deep_per_depth, rng)
        return planned

    def jobs(self, image_size: int, max_layers: int) -> list[tuple[Architecture, int]]:
        """(network, training seed) in build order: every network with the first seed, then the subset with the
        others, so a table that is still growing is already a table of one seed."""
        planned = self.networks(image_size, max_layers)
        rng = np.random.default_rng([self.plan_seed, 1])
        subset_rows = np.sort(rng.choice(len(planned), min(self.seed_subset, len(planned)), replace=False))
        subset = [planned[i] for i in subset_rows]
        return [(n, self.seeds[0]) for n in planned] + [(n, s) for s in self.seeds[1:] for n in subset]


def _valid(image_size: int):
    """Layer actions that fit a side, and the side after each."""

    def fits(side: int) -> list[tuple[int, int]]:
        return [(a, out) for a in LAYER_ACTIONS if (out := output_size(ACTIONS[a], side)) >= 1]

    return fits


@cache
def _completions(side: int, layers: int) -> int:
    """Valid sequences of ``layers`` layers from a side of ``side``."""
    if layers == 0:
        return 1
    return sum(_completions(out, layers - 1) for _, out in _valid(side)(side))


def exhaustive_count(image_size: int, depth: int) -> int:
    return sum(_completions(image_size, d) for d in range(depth + 1))


def exhaustive(image_size: int, depth: int) -> list[Architecture]:
    """Every valid network of 0..``depth`` layers, shallow first, each depth in action order."""
    return [network for d in range(depth + 1) for network in of_depth(image_size, d)]


def of_depth(image_size: int, depth: int) -> list[Architecture]:
    """Every valid network of exactly ``depth`` layers, in action order."""
    fits = _valid(image_size)
    level: list[tuple[tuple[int, ...], int]] = [((), image_size)]
    for _ in range(depth):
        level = [((*actions, a), out) for actions, side in level for a, out in fits(side)]
    return [Architecture(actions) for actions, _ in level]


def sample_depth(image_size: int, depth: int, count: int, rng: np.random.Generator) -> list[Architecture]:
    """``count`` distinct networks drawn uniformly among the valid ones of exactly ``depth`` layers (all of them when
    there are no more)."""
    if _completions(image_size, depth) <= count:
        return of_depth(image_size, depth)
    fits = _valid(image_size)
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < count:
        actions, side = [], image_size
        for remaining in range(depth, 0, -1):
            options = fits(side)
            weights = np.array([_completions(out, remaining - 1) for _, out in options], dtype=float)
            action, side = options[rng.choice(len(options), p=weights / weights.sum())]
            actions.append(action)
        chosen.setdefault(tuple(actions))
    return [Architecture(actions) for actions in chosen]
