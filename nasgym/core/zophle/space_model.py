"""What agents read of Zoph & Le's space: the flat observation, masks and progress computed from observations alone.

The observation is one float32 vector in four parts, so that SB3, CleanRL or RLlib take it without wrappers:

1. the token sequence so far: one row of ``N_ACTIONS`` per token of the longest episode, the chosen action one-hot
   (all zeros for tokens not chosen yet);
2. the current token's type, one-hot over the five types and "ended";
3. the current token's layer, one-hot over ``max_layers`` (zeros once the episode has ended);
4. the episode's number of layers, one-hot over ``max_layers`` (the curriculum changes it between episodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from nasgym.core.space_model import SpaceModel
from nasgym.core.zophle.space import N_ACTIONS, TOKEN_TYPES, ZophLeArchitecture, schedule

ENDED = len(TOKEN_TYPES)
"""The token type of an episode that has ended."""


class ZophLeSpaceModel(SpaceModel):
    """Zoph & Le's space for ``max_layers`` layers at most; ``layers`` is the current episode's depth.

    The environment owns this object and changes ``layers`` between episodes (the curriculum), so agents holding it
    see the change.
    """

    name = "zophle"

    def __init__(self, layers: int, max_layers: int, strides: bool = True):
        self.strides = strides
        self.max_layers = max_layers
        self.layers = layers
        self.tokens = schedule(max_layers, strides)
        self.n_actions = N_ACTIONS
        self.max_steps = len(self.tokens)
        self._sequence = self.max_steps * N_ACTIONS
        self.feature_size = self._sequence + ENDED + 1 + 2 * max_layers
        self.observation_space = spaces.Box(0.0, 1.0, (self.feature_size,), dtype=np.float32)
        # _mask[depth - 1, step]: the valid actions at token ``step`` of a ``depth``-layer episode (all once ended).
        self._mask = np.ones((max_layers, self.max_steps + 1, N_ACTIONS), dtype=bool)
        for depth in range(1, max_layers + 1):
            for step, token in enumerate(schedule(depth, strides)):
                self._mask[depth - 1, step] = np.arange(N_ACTIONS) < token.choices

    def episode_steps(self, layers: int | None = None) -> int:
        """Tokens in an episode of ``layers`` layers (the current depth by default)."""
        return len(schedule(self.layers if layers is None else layers, self.strides))

    # -- observations ---------------------------------------------------------------------------------------------
    def observe(self, actions: Sequence[int], layers: int | None = None) -> np.ndarray:
        layers = self.layers if layers is None else layers
        observation = np.zeros(self.feature_size, dtype=np.float32)
        for step, action in enumerate(actions):
            observation[step * N_ACTIONS + int(action)] = 1.0
        ended = self.done(actions, layers)
        token_type = ENDED if ended else self.tokens[len(actions)].type
        observation[self._sequence + token_type] = 1.0
        if not ended:
            observation[self._sequence + ENDED + 1 + self.tokens[len(actions)].layer] = 1.0
        observation[self._sequence + ENDED + 1 + self.max_layers + layers - 1] = 1.0
        return observation

    def _rows(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations, dtype=np.float32)
        return observations[..., : self._sequence].reshape(*observations.shape[:-1], self.max_steps, N_ACTIONS)

    def actions(self, observation: np.ndarray) -> tuple[int, ...]:
        rows = self._rows(observation)
        used = rows.max(-1) > 0.5
        return tuple(int(action) for action in rows.argmax(-1)[used])

    def depths(self, observations: np.ndarray) -> np.ndarray:
        """``(...,)`` int: each observation's episode depth (its number of layers)."""
        start = self._sequence + ENDED + 1 + self.max_layers
        return np.asarray(observations)[..., start : start + self.max_layers].argmax(-1) + 1

    def steps(self, observations: np.ndarray) -> np.ndarray:
        return (self._rows(observations).max(-1) > 0.5).sum(-1)

    def masks(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations)
        mask = self._mask[self.depths(observations) - 1, self.steps(observations)]
        ended = np.asarray(observations)[..., self._sequence + ENDED] > 0.5
        return mask | ended[..., None]

    def features(self, observations: np.ndarray) -> np.ndarray:
        return np.asarray(observations, dtype=np.float32)

    def done(self, actions: Sequence[int], layers: int | None = None) -> bool:
        """Ended: every token of the episode's layers chosen, or a choice outside its token's choices."""
        layers = self.layers if layers is None else layers
        if len(actions) >= self.episode_steps(layers):
            return True
        return any(int(action) >= token.choices for action, token in zip(actions, self.tokens, strict=False))

    def architecture(self, actions: Sequence[int]) -> ZophLeArchitecture:
        return ZophLeArchitecture(tuple(int(action) for action in actions), self.strides)
