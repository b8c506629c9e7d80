"""The chain-structured search space of NasGym: actions, NSC rows, validity and architecture strings.

Everything an agent, the environment or a user needs to know about which networks exist lives here:

* the action table (``Discrete(8)``),
* Network Structure Code rows ``[index, type, kernel, pred1, pred2]`` (BlockQNN, Zhong et al. 2018),
* the spatial-size rule that decides validity (no padding, pooling stride = window),
* action masks (one rule, vectorised over NSC observations, so agents and replay buffers need no live env), and
* the short architecture string used on the command line and in logs (``"c3-c5-m2-a3-t"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from nasgym.core.errors import ArchitectureError

# NSC layer types. 4-6 are reserved for a multi-branch space and never produced by this chain space.
EMPTY, CONV, MAX_POOL, AVG_POOL, IDENTITY, ADD, CONCAT, TERMINAL = range(8)

DEFAULT_MAX_LAYERS = 10
DEFAULT_IMAGE_SIZE = 84


@dataclass(frozen=True)
class Layer:
    """One layer of a chain network: its NSC type and kernel (window) size."""

    type: int
    kernel: int

    @property
    def token(self) -> str:
        return _TOKEN_OF[(self.type, self.kernel)]


# Action a appends ACTIONS[a]. The order is NasGym's and is part of the public API.
ACTIONS: tuple[Layer, ...] = (
    Layer(CONV, 1),
    Layer(CONV, 3),
    Layer(CONV, 5),
    Layer(MAX_POOL, 2),
    Layer(MAX_POOL, 3),
    Layer(AVG_POOL, 2),
    Layer(AVG_POOL, 3),
    Layer(TERMINAL, 0),
)
N_ACTIONS = len(ACTIONS)
TERMINAL_ACTION = 7

_TOKEN_OF = {
    (CONV, 1): "c1",
    (CONV, 3): "c3",
    (CONV, 5): "c5",
    (MAX_POOL, 2): "m2",
    (MAX_POOL, 3): "m3",
    (AVG_POOL, 2): "a2",
    (AVG_POOL, 3): "a3",
    (TERMINAL, 0): "t",
}
_ACTION_OF_TOKEN = {layer.token: action for action, layer in enumerate(ACTIONS)}
ACTION_TOKENS = tuple(layer.token for layer in ACTIONS)


def shorten(text: str, limit: int = 60) -> str:
    """Long input echoed in an error message, shortened to stay one readable line."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def output_size(layer: Layer, size: int) -> int:
    """Spatial side after ``layer`` on a ``size`` x ``size`` input; < 1 means the layer cannot be applied."""
    if layer.type == CONV:  # stride 1, no padding
        return size - layer.kernel + 1
    if layer.type in (MAX_POOL, AVG_POOL):  # window k, stride k, no padding
        return (size - layer.kernel) // layer.kernel + 1 if size >= layer.kernel else 0
    return size


@dataclass(frozen=True)
class Architecture:
    """A chain network as the sequence of actions that built it (the terminal action included if taken)."""

    actions: tuple[int, ...]
    space: ClassVar[str] = "chain"
    """The search space this network is of (``nasgym.core.spaces``), which the evaluator and trainer look up."""

    def __post_init__(self) -> None:
        for position, action in enumerate(self.actions):
            if not (isinstance(action, (int, np.integer)) and 0 <= action < N_ACTIONS):
                raise ArchitectureError(f"action {action!r} at position {position} is not in 0..{N_ACTIONS - 1}")
            if action == TERMINAL_ACTION and position != len(self.actions) - 1:
                raise ArchitectureError(f"the terminal layer 't' must be last, found at position {position}")
        object.__setattr__(self, "actions", tuple(int(a) for a in self.actions))

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Architecture:
        """Read ``"c3-c5-m2-a3-t"`` (tokens c1 c3 c5 m2 m3 a2 a3 t, joined by '-', ',' or spaces)."""
        tokens = [t for t in text.replace(",", "-").replace(" ", "-").lower().split("-") if t]
        actions = []
        for token in tokens:
            if token not in _ACTION_OF_TOKEN:
                raise ArchitectureError(
                    f"unknown layer {shorten(token)!r} in architecture {shorten(text)!r}; "
                    f"use tokens {' '.join(ACTION_TOKENS)} joined by '-', e.g. 'c3-m2-c5-t'"
                )
            actions.append(_ACTION_OF_TOKEN[token])
        return cls(tuple(actions))

    @classmethod
    def from_nsc(cls, nsc: np.ndarray | Sequence[Sequence[int]]) -> Architecture:
        """Read an NSC matrix (empty rows ignored), checking that it is a well-formed chain."""
        rows = [tuple(int(v) for v in row) for row in np.asarray(nsc).reshape(-1, 5) if row[1] != EMPTY]
        actions = []
        for i, (index, type_, kernel, pred1, pred2) in enumerate(rows):
            if index != i + 1 or pred1 != i or pred2 != 0:
                raise ArchitectureError(
                    f"NSC row {i} {list(rows[i])} is not a chain row; expected [{i + 1}, type, kernel, {i}, 0]"
                )
            kernel = 0 if type_ == TERMINAL else kernel
            if (type_, kernel) not in _TOKEN_OF:
                raise ArchitectureError(f"NSC row {i} has an unsupported layer type/kernel ({type_}, {kernel})")
            actions.append(_ACTION_OF_TOKEN[_TOKEN_OF[(type_, kernel)]])
        return cls(tuple(actions))

    # -- views ------------------------------------------------------------------------------------
    @property
    def layers(self) -> tuple[Layer, ...]:
        """The layers that compute something (terminal excluded)."""
        return tuple(ACTIONS[a] for a in self.actions if a != TERMINAL_ACTION)

    @property
    def network(self) -> Architecture:
        """The computing layers only: 'c3-m2' and 'c3-m2-t' are the same network and share one reward."""
        return Architecture(tuple(a for a in self.actions if a != TERMINAL_ACTION))

    @property
    def is_terminated(self) -> bool:
        return bool(self.actions) and self.actions[-1] == TERMINAL_ACTION

    def __len__(self) -> int:
        return len(self.actions)

    def __str__(self) -> str:
        return "-".join(ACTION_TOKENS[a] for a in self.actions)

    def nsc(self, max_layers: int | None = None) -> np.ndarray:
        """NSC matrix, one row per action, zero-padded to ``max_layers`` rows when given."""
        n_rows = len(self.actions) if max_layers is None else max_layers
        if n_rows < len(self.actions):
            raise ArchitectureError(f"{self} has {len(self.actions)} rows, more than max_layers={max_layers}")
        matrix = np.zeros((n_rows, 5), dtype=np.int64)
        for i, action in enumerate(self.actions):
            layer = ACTIONS[action]
            matrix[i] = (i + 1, layer.type, layer.kernel, i, 0)
        return matrix

    def spatial_sizes(self, image_size: int = DEFAULT_IMAGE_SIZE) -> list[int]:
        """Side length after each computing layer, starting from the input side."""
        sizes = [image_size]
        for layer in self.layers:
            sizes.append(output_size(layer, sizes[-1]))
        return sizes

    def is_valid(self, image_size: int = DEFAULT_IMAGE_SIZE, max_layers: int = DEFAULT_MAX_LAYERS) -> bool:
        return len(self.actions) <= max_layers and min(self.spatial_sizes(image_size)) >= 1

    def append(self, action: int) -> Architecture:
        return Architecture((*self.actions, int(action)))


# A layer maps spatial side s to s // DIVISOR - SHRINK: conv k (stride 1, no padding) to s - k + 1, pooling k
# (stride k) to s // k, which is (s - k) // k + 1 when s >= k and 0 below. Index 0 is an empty NSC row.
_LAYER_OF = np.zeros((TERMINAL + 1, 6), dtype=np.int64)  # [type, kernel] -> action + 1; 0 = empty row
for _action, _layer in enumerate(ACTIONS):
    _LAYER_OF[_layer.type, _layer.kernel] = _action + 1
_DIVISOR = np.array([1] + [layer.kernel if layer.type in (MAX_POOL, AVG_POOL) else 1 for layer in ACTIONS])
_SHRINK = np.array([0] + [layer.kernel - 1 if layer.type == CONV else 0 for layer in ACTIONS])
_KERNEL = np.array([layer.kernel for layer in ACTIONS])


def layer_indices(nsc: np.ndarray) -> np.ndarray:
    """Per NSC row: 0 for an empty row, ``action + 1`` otherwise; shape ``nsc.shape[:-1]``. Any leading batch
    dimensions; float observations (from a replay buffer or a tensor) are rounded."""
    nsc = np.rint(np.asarray(nsc)).astype(np.int64)
    return _LAYER_OF[nsc[..., 1], nsc[..., 2]]


def nsc_action_mask(nsc: np.ndarray, image_size: int = DEFAULT_IMAGE_SIZE) -> np.ndarray:
    """Which actions keep the network valid, ``(..., N_ACTIONS)`` bool, from padded NSC observations alone.

    Conv k and pooling k both fit exactly when the spatial side is >= k, so one running side per observation
    decides the whole mask. The terminal action is always allowed, and so is everything once the episode has
    ended (terminal row, or every row used), so that a masked distribution never has zero support.
    """
    layers = layer_indices(nsc)
    side = np.full(layers.shape[:-1], image_size, dtype=np.int64)
    for row in range(layers.shape[-1]):
        side = side // _DIVISOR[layers[..., row]] - _SHRINK[layers[..., row]]
    mask = side[..., None] >= _KERNEL
    mask[..., TERMINAL_ACTION] = True
    ended = (layers == TERMINAL_ACTION + 1).any(-1) | ((layers > 0).sum(-1) >= layers.shape[-1])
    return mask | ended[..., None]


def action_mask(
    architecture: Architecture,
    image_size: int = DEFAULT_IMAGE_SIZE,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> np.ndarray:
    """Which actions keep ``architecture`` a valid network (sb3-contrib's ``action_masks`` convention)."""
    if len(architecture) >= max_layers:
        return np.ones(N_ACTIONS, dtype=bool)
    return nsc_action_mask(architecture.nsc(max_layers), image_size)
