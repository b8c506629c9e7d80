"""Observations as tensors, vectorised over a batch: the one-hot NSC the learning agents read and the mask of
valid actions (the same rule as ``nasgym.core.search_space.action_mask``, computed from the observation alone so
that a replay buffer, a saved policy or ``predict`` needs no live environment).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from nasgym.core.search_space import ACTIONS, AVG_POOL, CONV, MAX_POOL, N_ACTIONS, TERMINAL_ACTION

LAYER_CLASSES = N_ACTIONS + 1
"""What one NSC row can hold: empty, or one of the actions."""

_LAYER_OF = np.zeros((8, 6), dtype=np.int64)  # [type, kernel] -> action + 1; 0 = empty row
for _action, _layer in enumerate(ACTIONS):
    _LAYER_OF[_layer.type, _layer.kernel] = _action + 1
# A layer maps spatial side s to s // DIVISOR - SHRINK: conv k (stride 1, no padding) to s - k + 1, pooling k
# (stride k) to s // k, which is (s - k) // k + 1 when s >= k and 0 below. Index 0 is the empty row.
_DIVISOR = np.array([1] + [layer.kernel if layer.type in (MAX_POOL, AVG_POOL) else 1 for layer in ACTIONS])
_SHRINK = np.array([0] + [layer.kernel - 1 if layer.type == CONV else 0 for layer in ACTIONS])
_KERNEL = np.array([layer.kernel for layer in ACTIONS])


def _as_numpy(observation: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(observation, torch.Tensor):
        observation = observation.detach().cpu().numpy()
    return np.rint(observation).astype(np.int64)


def layer_indices(nsc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Per row: 0 for an empty row, ``action + 1`` otherwise. Shape ``nsc.shape[:-1]``."""
    nsc = _as_numpy(nsc)
    return torch.from_numpy(_LAYER_OF[nsc[..., 1], nsc[..., 2]])


def encode_nsc(nsc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One-hot of each row's layer, rows concatenated: ``(..., max_layers * LAYER_CLASSES)`` float.

    In a chain the index and predecessor columns follow from the row position, so the layer is all there is.
    """
    one_hot = torch.nn.functional.one_hot(layer_indices(nsc), LAYER_CLASSES).float()
    return one_hot.flatten(-2)


def episode_length(nsc: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Rows used so far (the time step within the episode)."""
    return (layer_indices(nsc) > 0).sum(-1)


def valid_action_mask(nsc: np.ndarray | torch.Tensor, image_size: int) -> torch.Tensor:
    """Actions that keep the network valid, ``(..., N_ACTIONS)`` bool; everything once the episode has ended.

    Conv k and pooling k both fit exactly when the spatial side is >= k, so one running side per observation
    decides the whole mask. The terminal action is always allowed.
    """
    nsc = _as_numpy(nsc)
    layers = _LAYER_OF[nsc[..., 1], nsc[..., 2]]
    side = np.full(layers.shape[:-1], image_size, dtype=np.int64)
    for row in range(layers.shape[-1]):
        side = side // _DIVISOR[layers[..., row]] - _SHRINK[layers[..., row]]
    mask = side[..., None] >= _KERNEL
    mask[..., TERMINAL_ACTION] = True
    ended = (layers == TERMINAL_ACTION + 1).any(-1) | ((layers > 0).sum(-1) >= layers.shape[-1])
    return torch.from_numpy(mask | ended[..., None])


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logits with invalid actions pushed to the lowest finite value (probability 0, no NaN in the entropy)."""
    return logits.masked_fill(~mask, torch.finfo(logits.dtype).min)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the agents' tiny networks on one thread (also usable as a decorator).

    Intra-op threads only add synchronisation to work this small: an LSTM step took 13 ms on two threads
    and 0.5 ms on one on a busy 2-core machine. Child training, outside this block, keeps every thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
