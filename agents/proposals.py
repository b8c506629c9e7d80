"""What regularized evolution and local search share: they propose whole networks and play each as one episode.

An agent of this kind plays a proposed network's layers, then the terminal action unless the network already has
``max_layers`` layers; the reward of the episode's last step is the network's fitness (its accuracy under either
reward mode). Every env step counts as a timestep, as for the other agents. With a vector env each copy plays its
own proposal; an agent with nothing to propose until a result comes back holds the copy (``HOLD``).

How far a proposal has been played is read from the observation, so a checkpoint needs only the proposals in
flight: a loaded agent continues each copy where the env stands (a resumed search puts unfinished episodes back)
and plays a proposal again from its first layer where the env starts afresh (a plain env after a load, or after
``play``). Either way the search sees the same networks with the same fitness in the same order.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np

from agents.base import Agent, StepCallback
from nasgym.core.errors import ConfigError
from nasgym.core.search_space import TERMINAL_ACTION, Architecture, action_mask
from nasgym.core.space_model import ChainSpaceModel
from nasgym.core.vector_env import HOLD

Network = tuple[int, ...]
"""A network as its layer actions (0..6), without the terminal action."""
LAYERS = tuple(range(TERMINAL_ACTION))


def episode(network: Network, max_layers: int) -> list[int]:
    """The actions that build ``network``: its layers, then the terminal action unless the layers fill the episode."""
    return list(network) if len(network) >= max_layers else [*network, TERMINAL_ACTION]


def is_network(network: Network, image_size: int, max_layers: int) -> bool:
    """One layer at least, no more than ``max_layers``, every spatial side >= 1."""
    return (
        1 <= len(network) <= max_layers
        and TERMINAL_ACTION not in network
        and Architecture(network).is_valid(image_size, max_layers)
    )


def edits(network: Network, image_size: int, max_layers: int) -> dict[str, list[Network]]:
    """The valid networks one edit away, per kind: ``change`` one layer to another layer, ``add`` one layer at any
    position, ``remove`` one layer. Each kind's list is in a fixed order and without repeats."""
    found: dict[str, list[Network]] = {"change": [], "add": [], "remove": []}
    for i, old in enumerate(network):
        found["change"] += [(*network[:i], layer, *network[i + 1 :]) for layer in LAYERS if layer != old]
        found["remove"].append(network[:i] + network[i + 1 :])
    for i in range(len(network) + 1):
        found["add"] += [(*network[:i], layer, *network[i:]) for layer in LAYERS]
    return {
        kind: list(dict.fromkeys(n for n in networks if is_network(n, image_size, max_layers)))
        for kind, networks in found.items()
    }


def neighbours(network: Network, image_size: int, max_layers: int) -> list[Network]:
    """Every distinct valid network one edit away from ``network`` (never ``network`` itself)."""
    return list(dict.fromkeys(n for networks in edits(network, image_size, max_layers).values() for n in networks))


def mutate(network: Network, rng: np.random.Generator, image_size: int, max_layers: int) -> Network:
    """One random edit: a kind drawn uniformly among those with a valid result, then one of its results. A network
    with no valid neighbour (one ``c1`` layer at ``max_layers=1``, image side 1) is returned unchanged."""
    kinds = [networks for networks in edits(network, image_size, max_layers).values() if networks]
    if not kinds:
        return network
    networks = kinds[int(rng.integers(len(kinds)))]
    return networks[int(rng.integers(len(networks)))]


def random_network(rng: np.random.Generator, image_size: int, max_layers: int) -> Network:
    """Uniform over the valid actions step by step, as random search plays, except that the first action is a layer
    (an empty network has nothing to edit)."""
    actions: list[int] = []
    while len(actions) < max_layers and (not actions or actions[-1] != TERMINAL_ACTION):
        allowed = action_mask(Architecture(tuple(actions)), image_size, max_layers)
        allowed[TERMINAL_ACTION] = bool(actions)
        actions.append(int(rng.choice(np.flatnonzero(allowed))))
    return tuple(action for action in actions if action != TERMINAL_ACTION)


class ProposalAgent(Agent):
    """An agent that proposes whole networks (``_propose``) and learns their fitness (``_tell``)."""

    def __init__(self, env, config: Any = None, **hyperparameters: Any):
        super().__init__(env, config, **hyperparameters)
        if not isinstance(self.space, ChainSpaceModel):
            raise ConfigError(
                f"{self.name} edits NAS-v0's chain networks; this environment's space is a {type(self.space).__name__}"
            )
        self.image_size, self.max_layers = self.space.image_size, self.space.max_steps
        self.rng = np.random.default_rng(self.config.seed)
        self._playing: list[Network | None] = [None] * self.num_envs  # each copy's proposal in flight
        self._waiting: list[Network] = []  # proposals in flight that lost their copy (loaded with fewer copies)

    # -- what each search defines ---------------------------------------------------------------------------
    @abstractmethod
    def _propose(self) -> Network | None:
        """The next network to evaluate; None: nothing until a result in flight comes back (the copy holds)."""

    @abstractmethod
    def _tell(self, network: Network, fitness: float) -> None:
        """The fitness of a network this agent proposed."""

    @abstractmethod
    def _known(self) -> Iterable[tuple[Network, float]]:
        """Networks with their fitness that ``predict`` may replay."""

    @abstractmethod
    def _search_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load_search_state(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def _forget(self) -> None:
        """Drop everything learned about fitness (a new trial)."""

    # -- the API --------------------------------------------------------------------------------------------
    def predict(self, observation: np.ndarray, state: Any = None, deterministic: bool = False) -> tuple[int, Any]:
        """The next action of the fittest known network that the observed layers begin, so ``play`` replays the best
        network found. Where no known network continues them: the terminal action if ``deterministic``, else a
        random valid action."""
        played = self.space.actions(observation)
        best: tuple[list[int], float] | None = None
        for network, fitness in self._known():
            actions = episode(network, self.max_layers)
            continues = len(actions) > len(played) and tuple(actions[: len(played)]) == played
            if continues and (best is None or fitness > best[1]):
                best = (actions, fitness)
        if best is not None:
            return best[0][len(played)], state
        if deterministic:
            return TERMINAL_ACTION, state
        return int(self.rng.choice(np.flatnonzero(self._mask(observation)))), state

    def _learn(self, total_steps: int, callback: StepCallback | None) -> ProposalAgent:
        target = self.num_timesteps + total_steps
        while self.num_timesteps < target:
            observations = self._observations("learn")
            plans = [self._next_action(copy, observations[copy]) for copy in range(self.num_envs)]
            if all(action == HOLD for action, _, _ in plans):
                raise RuntimeError(f"{self.name} has no network for any copy to play")
            self._prefetch([starts for _, _, starts in plans if starts])
            rewards, dones, infos = self._env_step([action for action, _, _ in plans])
            events = []
            for copy, (action, last, _) in enumerate(plans):
                if action == HOLD:
                    continue
                self.num_timesteps += 1
                self._stepped(copy, float(rewards[copy]), bool(dones[copy]), last)
                events.append((self.num_timesteps, float(rewards[copy]), bool(dones[copy]), infos[copy], copy))
            if not all(self._notify(callback, *event) for event in events):
                break
        return self

    def reset_trial(self) -> None:
        """Start the search over (another dataset's fitness differs); the random generator goes on."""
        super().reset_trial()
        self._playing, self._waiting = [None] * self.num_envs, []
        self._forget()

    # -- playing proposals ----------------------------------------------------------------------------------
    def in_flight(self) -> list[Network]:
        """Proposals handed out whose fitness has not come back."""
        return [network for network in self._playing if network is not None] + self._waiting

    def _next_action(self, copy: int, observation: np.ndarray) -> tuple[int, bool, list[int] | None]:
        """The copy's next action (``HOLD``: none), whether it ends the episode, and the episode if it starts now."""
        played = self.space.actions(observation)
        network = self._playing[copy]
        if network is None:
            if played:
                raise RuntimeError(f"copy {copy} stands at {list(played)} but {self.name} gave it no network")
            network = self._playing[copy] = self._waiting.pop(0) if self._waiting else self._propose()
            if network is None:
                return HOLD, False, None
        actions = episode(network, self.max_layers)
        if tuple(actions[: len(played)]) != played or len(played) >= len(actions):
            raise RuntimeError(f"copy {copy} stands at {list(played)}, not on the way to {actions}")
        return actions[len(played)], len(played) + 1 == len(actions), None if played else actions

    def _stepped(self, copy: int, reward: float, done: bool, last: bool) -> None:
        network = self._playing[copy]
        assert network is not None, "a copy that stepped plays a network"
        if done != last:
            raise RuntimeError(f"the environment ended episode {episode(network, self.max_layers)} at another step")
        if done:
            self._playing[copy] = None
            self._tell(network, reward)

    def _fits(self, network: Network) -> bool:
        return is_network(network, self.image_size, self.max_layers)

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": self.rng.bit_generator.state,
            "playing": [None if network is None else list(network) for network in self._playing],
            "waiting": [list(network) for network in self._waiting],
            "search": self._search_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        playing = [None if network is None else tuple(network) for network in state["playing"]]
        waiting = [tuple(network) for network in state["waiting"]]
        if len(playing) == self.num_envs:
            self._playing, self._waiting = playing, waiting
        else:  # saved with another number of copies: the proposals in flight are played first, from the start
            self._playing = [None] * self.num_envs
            self._waiting = [network for network in playing if network is not None] + waiting
        self._load_search_state(state["search"])
        if not all(self._fits(network) for network in self._stored()):
            self.reset_trial()  # loaded into an env with smaller images or fewer layers: the search starts over

    def _stored(self) -> Iterable[Network]:
        """Every network the state holds."""
        return [*self.in_flight(), *(network for network, _ in self._known())]
