"""Local search, White, Nolen & Savani 2020 ("Local search is state of the art for NAS benchmarks").

The climb starts at a random network. Its neighbours, the valid networks one edit away (change one layer to another
layer, add one layer, remove one layer), are evaluated in random order, and the search moves to the first one that
is fitter: first improvement, the default of the authors' code (naszilla's ``local_search``,
``query_full_nbhd=False``). ``full_neighbourhood=True`` is the paper's Algorithm 1 instead: evaluate every neighbour,
then move to the fittest. Only a strictly fitter network is a move, so plateaus end a climb. When no neighbour is
fitter (a local optimum) the search restarts at a new random network, as naszilla's loop does until the budget is
spent; ``num_init`` random networks may start each climb from the fittest of them (naszilla's ``num_init``).

Every fitness is remembered for the whole trial: a neighbour evaluated before is not evaluated again (a known fitter
one is moved to at once), and restarts draw networks not evaluated yet. With a vector env the copies evaluate
different neighbours of the current network at once; a copy with nothing left to try holds until the others'
results decide between a move and a restart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.hyperparameters import PositiveInt, Seed, validate
from agents.proposals import Network, ProposalAgent, neighbours, random_network

FRESH_DRAWS = 100
"""Random draws a restart makes to find a network not evaluated yet, before it takes a known one."""


@dataclass
class LocalSearchConfig:
    num_init: PositiveInt = 1
    """Random networks evaluated at each (re)start; the climb begins at the fittest (White et al.'s Algorithm 1: 1;
    naszilla's code: 10)."""
    full_neighbourhood: bool = False
    """False: move to the first fitter neighbour (first improvement, naszilla's default). True: evaluate the whole
    neighbourhood, then move to its fittest (the paper's Algorithm 1)."""
    seed: Seed = 0
    """Seeds the random starts and the order in which neighbours are tried."""

    def __post_init__(self) -> None:
        validate(self)


class LocalSearch(ProposalAgent):
    name = "local_search"
    Config = LocalSearchConfig

    def __init__(self, env, config: LocalSearchConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        self._forget()

    def _forget(self) -> None:
        self.evaluated: dict[Network, float] = {}
        """Every network evaluated in this trial, with its fitness, in the order they came back."""
        self.current: Network | None = None
        """Where the climb stands (None: choosing a start)."""
        self.restarts = 0
        """Local optima reached."""
        self._starts: list[Network] = []  # this climb's random starts
        self._neighbours: list[Network] = []  # of current, in a fixed order
        self._neighbour_set: set[Network] = set()
        self._queue: list[Network] = []  # neighbours not tried yet, in random order

    # -- the climb ------------------------------------------------------------------------------------------
    def _move(self, network: Network) -> None:
        self.current = network
        self._set_neighbours()
        self._queue = [self._neighbours[int(i)] for i in self.rng.permutation(len(self._neighbours))]

    def _set_neighbours(self) -> None:
        self._neighbours = neighbours(self.current, self.image_size, self.max_layers) if self.current else []
        self._neighbour_set = set(self._neighbours)

    def _restart(self) -> None:
        assert self.current is not None, "a restart leaves a local optimum"
        self.restarts += 1
        self._report({"local_optimum": self.evaluated[self.current], "restarts": self.restarts})
        self.current, self._starts, self._queue = None, [], []
        self._set_neighbours()

    def _fresh_random(self) -> Network:
        """A random network neither evaluated nor in flight, if one turns up within ``FRESH_DRAWS`` draws."""
        busy = set(self.in_flight())
        for _ in range(FRESH_DRAWS):
            network = random_network(self.rng, self.image_size, self.max_layers)
            if network not in self.evaluated and network not in busy:
                break
        return network

    def _propose(self) -> Network | None:
        while True:  # each pass proposes, holds, moves uphill (finitely often) or restarts (then proposes)
            if self.current is None:
                if len(self._starts) < self.config.num_init:
                    self._starts.append(self._fresh_random())
                    return self._starts[-1]
                pending = [start for start in self._starts if start not in self.evaluated]
                if pending:
                    lost = [start for start in pending if start not in self.in_flight()]
                    return lost[0] if lost else None
                self._move(max(self._starts, key=self.evaluated.__getitem__))
                continue
            fitness, busy, moved = self.evaluated[self.current], set(self.in_flight()), False
            while self._queue and not moved:
                network = self._queue.pop(0)
                if network not in self.evaluated:
                    if network not in busy:
                        return network
                elif not self.config.full_neighbourhood and self.evaluated[network] > fitness:
                    self._move(network)  # known to be fitter: no need to evaluate it again
                    moved = True
            if moved:
                continue
            if busy & self._neighbour_set:
                return None  # the rest of the neighbourhood is being evaluated by other copies
            best = max(self._neighbours, key=lambda n: self.evaluated.get(n, -math.inf), default=None)
            if self.config.full_neighbourhood and best is not None and self.evaluated.get(best, -math.inf) > fitness:
                self._move(best)
            else:
                self._restart()

    def _tell(self, network: Network, fitness: float) -> None:
        self.evaluated[network] = fitness
        if (
            not self.config.full_neighbourhood
            and self.current is not None  # else there are no neighbours
            and network in self._neighbour_set
            and fitness > self.evaluated[self.current]
        ):
            self._move(network)

    def _known(self) -> Iterable[tuple[Network, float]]:
        return self.evaluated.items()

    def _stored(self) -> Iterable[Network]:
        return [*super()._stored(), *self._starts, *self._queue]

    # -- state ----------------------------------------------------------------------------------------------
    def _search_state(self) -> dict[str, Any]:
        return {
            "evaluated": [[list(network), fitness] for network, fitness in self.evaluated.items()],
            "current": None if self.current is None else list(self.current),
            "starts": [list(network) for network in self._starts],
            "queue": [list(network) for network in self._queue],
            "restarts": self.restarts,
        }

    def _load_search_state(self, state: dict[str, Any]) -> None:
        self.evaluated = {tuple(network): float(fitness) for network, fitness in state["evaluated"]}
        self.current = None if state["current"] is None else tuple(state["current"])
        self._starts = [tuple(network) for network in state["starts"]]
        self._queue = [tuple(network) for network in state["queue"]]
        self.restarts = int(state["restarts"])
        self._set_neighbours()
