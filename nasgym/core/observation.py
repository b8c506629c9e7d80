"""Encodings of NSC observations that learning agents read, vectorised over any leading batch dimensions."""

from __future__ import annotations

import numpy as np

from nasgym.core.search_space import N_ACTIONS, layer_indices

LAYER_CLASSES = N_ACTIONS + 1
"""What one NSC row can hold: empty, or one of the actions."""


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
