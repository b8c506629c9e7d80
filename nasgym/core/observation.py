"""What an agent observes: the NSC matrix itself, or encodings of it that learning code reads directly.

``observation="nsc"`` (the default) is BlockQNN's Network Structure Code, an int64 ``(max_layers, 5)`` matrix.
``observation="onehot"`` is a flat float32 vector, each row's layer one-hot: every RL library (SB3's MLP
policies, RLlib, CleanRL) takes it without wrappers. ``observation="nasgym"`` is what NasGym's agents read: a
float32 ``(max_layers, 8 + 6 + max_layers + 1)`` matrix, per NSC row the one-hot of its type (0-7), kernel (0-5)
and first predecessor (0-max_layers), rows sorted by index so that empty rows come first and the newest layer is
the last row, and the terminal row's predecessor 0. All encode the same architecture, and ``to_nsc`` reads any of
them back, so masks can always be computed from an observation alone.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from nasgym.core.errors import ConfigError
from nasgym.core.search_space import ACTIONS, N_ACTIONS, TERMINAL, layer_indices

LAYER_CLASSES = N_ACTIONS + 1
"""What one NSC row can hold: empty, or one of the actions."""
OBSERVATIONS = ("nsc", "onehot", "nasgym")
NASGYM_TYPES, NASGYM_KERNELS = TERMINAL + 1, 6
"""One-hot widths of NasGym's type and kernel columns (types 0-7, kernels 0-5)."""


def one_hot_nsc(nsc: np.ndarray) -> np.ndarray:
    """One-hot of each row's layer, rows concatenated: ``(..., max_layers * LAYER_CLASSES)`` float32.

    In a chain the index and predecessor columns follow from the row position, so the layer is all there is.
    """
    indices = layer_indices(nsc)
    one_hot = np.eye(LAYER_CLASSES, dtype=np.float32)[indices]
    return one_hot.reshape(*indices.shape[:-1], -1)


def episode_length(nsc: np.ndarray) -> np.ndarray:
    """Rows used so far (the time step within the episode)."""
    return (layer_indices(nsc) > 0).sum(-1)


def observation_space(kind: str, max_layers: int) -> spaces.Box:
    if kind == "nsc":
        return spaces.Box(0, max(max_layers, TERMINAL), (max_layers, 5), dtype=np.int64)
    if kind == "onehot":
        return spaces.Box(0.0, 1.0, (max_layers * LAYER_CLASSES,), dtype=np.float32)
    if kind == "nasgym":
        return spaces.Box(0.0, 1.0, (max_layers, nasgym_row_size(max_layers)), dtype=np.float32)
    raise ConfigError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {kind!r}")


def nasgym_row_size(max_layers: int) -> int:
    """Width of a row of NasGym's encoding: one-hot type, kernel and first predecessor."""
    return NASGYM_TYPES + NASGYM_KERNELS + max_layers + 1


def nasgym_matrix(nsc: np.ndarray) -> np.ndarray:
    """NasGym's encoding of padded NSC matrices ``(..., max_layers, 5)``: ``(..., max_layers, row)`` float32.

    NasGym sorted its rows by index (empty rows, index 0, first) and gave the terminal row predecessor 0.
    """
    nsc = np.rint(np.asarray(nsc)).astype(np.int64)
    max_layers = nsc.shape[-2]
    used = layer_indices(nsc) > 0
    # Bottom-align: row r of the result is row r - (max_layers - used rows) of the top-aligned NSC.
    shift = max_layers - used.sum(-1, keepdims=True)
    source = np.arange(max_layers) - shift
    take = np.clip(source, 0, max_layers - 1)
    rows = np.take_along_axis(nsc, take[..., None], axis=-2) * (source >= 0)[..., None]
    predecessor = np.where(rows[..., 1] == TERMINAL, 0, rows[..., 3])
    types, kernels = np.eye(NASGYM_TYPES, dtype=np.float32), np.eye(NASGYM_KERNELS, dtype=np.float32)
    predecessors = np.eye(max_layers + 1, dtype=np.float32)
    return np.concatenate([types[rows[..., 1]], kernels[rows[..., 2]], predecessors[predecessor]], axis=-1)


def encode(kind: str, nsc: np.ndarray) -> np.ndarray:
    """The observation of kind ``kind`` for padded NSC matrices ``(..., max_layers, 5)``."""
    if kind == "nasgym":
        return nasgym_matrix(nsc)
    return nsc if kind == "nsc" else one_hot_nsc(nsc)


_ROW_OF_ACTION = np.array([[0, 0, 0]] + [[layer.type, layer.kernel, 0] for layer in ACTIONS], dtype=np.int64)


def to_nsc(kind: str, observation: np.ndarray, max_layers: int) -> np.ndarray:
    """The padded NSC matrices ``(..., max_layers, 5)`` an observation of kind ``kind`` encodes."""
    observation = np.asarray(observation)
    if kind == "nsc":
        return np.rint(observation).astype(np.int64)
    if kind == "nasgym":
        return _nsc_of_nasgym(observation, max_layers)
    rows = observation.reshape(*observation.shape[:-1], max_layers, LAYER_CLASSES).argmax(-1)  # action + 1, 0 empty
    nsc = np.zeros((*rows.shape, 5), dtype=np.int64)
    used = rows > 0
    position = np.broadcast_to(np.arange(max_layers), rows.shape)
    nsc[..., 0] = np.where(used, position + 1, 0)
    nsc[..., 1:3] = _ROW_OF_ACTION[rows][..., :2]
    nsc[..., 3] = np.where(used, position, 0)
    return nsc


def _nsc_of_nasgym(observation: np.ndarray, max_layers: int) -> np.ndarray:
    """Top-aligned NSC rows from NasGym's bottom-aligned one-hot matrix."""
    kinds = observation[..., :NASGYM_TYPES].argmax(-1)
    kernels = observation[..., NASGYM_TYPES : NASGYM_TYPES + NASGYM_KERNELS].argmax(-1)
    used = kinds > 0
    # Move the used rows to the top, keeping their order (a stable sort on "empty").
    order = np.argsort(~used, axis=-1, kind="stable")
    kinds, kernels = np.take_along_axis(kinds, order, -1), np.take_along_axis(kernels, order, -1)
    used = np.take_along_axis(used, order, -1)
    nsc = np.zeros((*kinds.shape, 5), dtype=np.int64)
    position = np.broadcast_to(np.arange(max_layers), kinds.shape)
    nsc[..., 0] = np.where(used, position + 1, 0)
    nsc[..., 1] = np.where(used, kinds, 0)
    nsc[..., 2] = np.where(used, kernels, 0)
    nsc[..., 3] = np.where(used, position, 0)
    return nsc
