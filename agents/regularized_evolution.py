"""Regularized (aging) evolution, Real et al. 2019 ("Regularized Evolution for Image Classifier Architecture Search").

The first P networks are random. Each later network is a child: S members are drawn from the population at random
(with replacement, as Real et al.'s and NATS-Bench's code draw them), the fittest is the parent, and the child is
the parent with one random edit (change one layer to another layer, add one layer, or remove one layer; the kind
drawn uniformly among those that keep the network valid). Each evaluated network joins the population and, once it
holds more than P, the OLDEST member dies, however fit: aging is the regularisation, since a network survives only
by passing its architecture on to children that score well too.

The defaults, P=10 and S=3, are NATS-Bench's regularized-evolution script on NAS-Bench-201 (Dong et al. 2021,
``exps/NATS-algos/regularized_ea.py --ea_population 10 --ea_sample_size 3``), a space of NAS-v0's scale; Real et
al. used P=100, S=25 on their far larger cell space. With a vector env each copy plays its own child, drawn from the
population as it stands when the copy is free (Real et al.'s asynchronous workers); the first P are random.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from agents.hyperparameters import PositiveInt, Seed, validate
from agents.proposals import Network, ProposalAgent, mutate, random_network
from nasgym.core.errors import ConfigError


@dataclass
class RegularizedEvolutionConfig:
    population_size: PositiveInt = 10
    """P: networks alive at once; a new one retires the oldest (NATS-Bench on NAS-Bench-201: 10; Real et al.: 100)."""
    sample_size: PositiveInt = 3
    """S: members drawn per tournament, the fittest becoming the parent; at most P (NATS-Bench: 3; Real et al.: 25)."""
    seed: Seed = 0
    """Seeds the random networks, the tournaments and the mutations."""

    def __post_init__(self) -> None:
        validate(self)
        if self.sample_size > self.population_size:
            raise ConfigError(
                f"sample_size must be <= population_size ({self.population_size}), got {self.sample_size}"
            )


class Member(NamedTuple):
    network: Network
    fitness: float
    birth: int
    """How many networks joined before it: its age is ``born - birth``."""


class RegularizedEvolution(ProposalAgent):
    name = "regularized_evolution"
    Config = RegularizedEvolutionConfig

    def __init__(self, env, config: RegularizedEvolutionConfig | None = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        self._forget()

    def _forget(self) -> None:
        self.population: list[Member] = []
        """Oldest first."""
        self.born = 0
        """Networks evaluated in this trial (each joined the population)."""
        self.best: Member | None = None
        """The fittest network evaluated, alive or not (the earliest of equals)."""
        self._random_proposed = 0

    def _propose(self) -> Network:
        cfg = self.config
        if self._random_proposed < cfg.population_size or not self.population:
            self._random_proposed += 1
            return random_network(self.rng, self.image_size, self.max_layers)
        drawn = self.rng.integers(len(self.population), size=cfg.sample_size)
        parent = max((self.population[int(i)] for i in drawn), key=lambda member: member.fitness)
        return mutate(parent.network, self.rng, self.image_size, self.max_layers)

    def _tell(self, network: Network, fitness: float) -> None:
        member = Member(network, fitness, self.born)
        self.population.append(member)
        self.born += 1
        while len(self.population) > self.config.population_size:
            self.population.pop(0)  # aging: the oldest dies, not the worst
        if self.best is None or fitness > self.best.fitness:
            self.best = member
        fitnesses = [m.fitness for m in self.population]
        self._report({"population_best": max(fitnesses), "population_mean": sum(fitnesses) / len(fitnesses)})

    def _known(self) -> Iterable[tuple[Network, float]]:
        members = self.population if self.best is None else [self.best, *self.population]
        return [(member.network, member.fitness) for member in members]

    def _search_state(self) -> dict[str, Any]:
        def plain(member: Member) -> list:
            return [list(member.network), member.fitness, member.birth]

        return {
            "population": [plain(member) for member in self.population],
            "best": None if self.best is None else plain(self.best),
            "born": self.born,
            "random_proposed": self._random_proposed,
        }

    def _load_search_state(self, state: dict[str, Any]) -> None:
        def member(saved: list) -> Member:
            network, fitness, birth = saved
            return Member(tuple(network), float(fitness), int(birth))

        self.population = [member(saved) for saved in state["population"]]
        self.best = None if state["best"] is None else member(state["best"])
        self.born, self._random_proposed = int(state["born"]), int(state["random_proposed"])
