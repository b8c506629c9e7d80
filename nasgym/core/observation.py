"""What an agent observes: the NSC matrix itself, or encodings of it that learning code reads directly.

``observation="nsc"`` (the default) is BlockQNN's Network Structure Code, an int64 ``(max_layers, 5)`` matrix.
``observation="onehot"`` is a flat float32 vector, each row's layer one-hot: every RL library (SB3's MLP
policies, RLlib, CleanRL) takes it without wrappers. Both encode the same architecture, and ``to_nsc`` reads
either back, so masks can always be computed from an observation alone.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from nasgym.core.errors import ConfigError
from nasgym.core.search_space import ACTIONS, N_ACTIONS, TERMINAL, layer_indices

LAYER_CLASSES = N_ACTIONS + 1
"""What one NSC row can hold: empty, or one of the actions."""
OBSERVATIONS = ("nsc", "onehot")


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
    raise ConfigError(f"observation must be one of {', '.join(OBSERVATIONS)}, got {kind!r}")


def encode(kind: str, nsc: np.ndarray) -> np.ndarray:
    """The observation of kind ``kind`` for padded NSC matrices ``(..., max_layers, 5)``."""
    return nsc if kind == "nsc" else one_hot_nsc(nsc)


_ROW_OF_ACTION = np.array([[0, 0, 0]] + [[layer.type, layer.kernel, 0] for layer in ACTIONS], dtype=np.int64)


def to_nsc(kind: str, observation: np.ndarray, max_layers: int) -> np.ndarray:
    """The padded NSC matrices ``(..., max_layers, 5)`` an observation of kind ``kind`` encodes."""
    observation = np.asarray(observation)
    if kind == "nsc":
        return np.rint(observation).astype(np.int64)
    rows = observation.reshape(*observation.shape[:-1], max_layers, LAYER_CLASSES).argmax(-1)  # action + 1, 0 empty
    nsc = np.zeros((*rows.shape, 5), dtype=np.int64)
    used = rows > 0
    position = np.broadcast_to(np.arange(max_layers), rows.shape)
    nsc[..., 0] = np.where(used, position + 1, 0)
    nsc[..., 1:3] = _ROW_OF_ACTION[rows][..., :2]
    nsc[..., 3] = np.where(used, position, 0)
    return nsc
