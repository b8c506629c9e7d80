"""What an agent may know about a search space without a live environment.

Pure functions of observations and action sequences: which actions are valid, the features a network reads,
how far an episode has come. Replay buffers, saved policies and a controller that samples whole architectures
before stepping them need nothing else, and an agent written against ``SpaceModel`` searches any environment of
this package (``env.get_wrapper_attr("space_model")``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from nasgym.core import observation as encodings
from nasgym.core.search_space import N_ACTIONS, Architecture, layer_indices, nsc_action_mask


class SpaceModel(ABC):
    """A search space as agents see it. Observations may carry any leading batch dimensions."""

    name: str
    """The space's registry name (``nasgym.core.spaces``): an agent with a controller of its own for one space keys
    on it instead of on a class."""
    n_actions: int
    """Size of the ``Discrete`` action space."""
    max_steps: int
    """The longest episode."""
    feature_size: int
    """Length of ``features``."""
    observation_space: spaces.Space

    @abstractmethod
    def observe(self, actions: Sequence[int]) -> np.ndarray:
        """The observation after ``actions`` from a reset."""

    @abstractmethod
    def actions(self, observation: np.ndarray) -> tuple[int, ...]:
        """The actions one observation records, in order (the inverse of ``observe``)."""

    @abstractmethod
    def masks(self, observations: np.ndarray) -> np.ndarray:
        """``(..., n_actions)`` bool: the valid actions; all of them once the episode has ended, so that a masked
        distribution never has zero support."""

    @abstractmethod
    def features(self, observations: np.ndarray) -> np.ndarray:
        """``(..., feature_size)`` float32: what a learning agent's network reads."""

    @abstractmethod
    def steps(self, observations: np.ndarray) -> np.ndarray:
        """``(...,)`` int: steps taken in the episode so far."""

    @abstractmethod
    def done(self, actions: Sequence[int]) -> bool:
        """Whether the episode ends after ``actions`` (finished, full or invalid)."""

    def valid(self, actions: Sequence[int]) -> bool:
        """Whether ``actions`` could be taken in this space (a saved batch may come from another space)."""
        return all(self.masks(self.observe(actions[:step]))[action] for step, action in enumerate(actions))


class ChainSpaceModel(SpaceModel):
    """``NAS-v0``'s chain space for an image size, a layer budget and an observation encoding."""

    name = "chain"

    def __init__(self, image_size: int, max_layers: int, observation: str = "nsc"):
        self.image_size = image_size
        self.max_steps = max_layers
        self.kind = observation
        self.n_actions = N_ACTIONS
        # NasGym's agents read its own encoding; the other encodings feed the one-hot NSC.
        row = encodings.nasgym_row_size(max_layers) if observation == "nasgym" else encodings.LAYER_CLASSES
        self.feature_size = max_layers * row
        self.observation_space = encodings.observation_space(observation, max_layers)

    def _nsc(self, observations: np.ndarray) -> np.ndarray:
        return encodings.to_nsc(self.kind, observations, self.max_steps)

    def observe(self, actions: Sequence[int]) -> np.ndarray:
        return encodings.encode(self.kind, Architecture(tuple(actions)).nsc(self.max_steps))

    def actions(self, observation: np.ndarray) -> tuple[int, ...]:
        rows = layer_indices(self._nsc(observation))
        return tuple(int(row) - 1 for row in rows[rows > 0])

    def masks(self, observations: np.ndarray) -> np.ndarray:
        return nsc_action_mask(self._nsc(observations), self.image_size)

    def features(self, observations: np.ndarray) -> np.ndarray:
        nsc = self._nsc(observations)
        if self.kind == "nasgym":
            matrix = encodings.nasgym_matrix(nsc)
            return matrix.reshape(*matrix.shape[:-2], -1)
        return encodings.one_hot_nsc(nsc)

    def steps(self, observations: np.ndarray) -> np.ndarray:
        return encodings.episode_length(self._nsc(observations))

    def done(self, actions: Sequence[int]) -> bool:
        architecture = Architecture(tuple(actions))
        return (
            architecture.is_terminated
            or len(architecture) >= self.max_steps
            or not architecture.is_valid(self.image_size, self.max_steps)
        )
